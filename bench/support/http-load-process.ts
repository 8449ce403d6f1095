/**
 * A closed-loop HTTP load generator in a process of its own: `concurrency` POSTs kept in flight
 * over keep-alive connections, for a number of requests or a number of seconds. Being another
 * process, its CPU is not counted as the controller's (process.cpuUsage of the bench measures
 * the controller alone) and it never shares the controller's event loop.
 */
import { spawn } from 'node:child_process';

export interface ProcessLoad {
  readonly baseUrl: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly concurrency: number;
  /** Stop after this many requests, or after `seconds`, whichever comes first. */
  readonly requests?: number;
  readonly seconds?: number;
  /** The body of request i: `bodyTemplate` with every `{i}` replaced by i zero-padded to 8 digits. */
  readonly bodyTemplate: string;
  /** Added to i, so that successive runs use fresh numbers. */
  readonly offset: number;
}

export interface ProcessLoadResult {
  readonly elapsedMs: number;
  readonly sent: number;
  /** Latencies of every answered request, ms, in completion order. */
  readonly latenciesMs: number[];
  /** Count of each status (0: no answer). */
  readonly statuses: Record<string, number>;
  /** Requests completed in each whole second of the run. */
  readonly perSecond: number[];
  /** The generator's own CPU time. */
  readonly cpuMs: number;
}

const SOURCE = `
const http = require('node:http');
const cfg = JSON.parse(process.argv[1]);
const url = new URL(cfg.baseUrl + cfg.path);
const agent = new http.Agent({ keepAlive: true, maxSockets: cfg.concurrency });
const latenciesMs = [];
const statuses = {};
const perSecond = [];
let next = 0;
const t0 = performance.now();
const deadline = cfg.seconds ? t0 + cfg.seconds * 1000 : Infinity;
const limit = cfg.requests ?? Infinity;
function post(body) {
  return new Promise((resolve) => {
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent,
      headers: { ...cfg.headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}
async function client() {
  while (next < limit && performance.now() < deadline) {
    const i = cfg.offset + next++;
    const body = cfg.bodyTemplate.split('{i}').join(String(i).padStart(8, '0'));
    const start = performance.now();
    const status = await post(body);
    const end = performance.now();
    latenciesMs.push(end - start);
    statuses[status] = (statuses[status] ?? 0) + 1;
    const s = Math.floor((end - t0) / 1000);
    perSecond[s] = (perSecond[s] ?? 0) + 1;
  }
}
Promise.all(Array.from({ length: cfg.concurrency }, client)).then(() => {
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ elapsedMs, sent: next, latenciesMs, statuses, perSecond: Array.from(perSecond, (v) => v ?? 0),
    cpuMs: (cpu.user + cpu.system) / 1000 }));
  agent.destroy();
});
`;

export function loadFromProcess(load: ProcessLoad): Promise<ProcessLoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', SOURCE, JSON.stringify(load)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (out += chunk));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) {
        reject(new Error(`load generator exited with ${String(code)}`));
        return;
      }
      try {
        resolve(JSON.parse(out) as ProcessLoadResult);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}
