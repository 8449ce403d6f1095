// The real controller (src/main.ts) in its own process, so a test can send it signals mid-call and see
// how it exits. Its JSON log lines are collected; the start line gives its HTTP and outbound-socket ports.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

export interface ControllerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Date.now() when the process was seen to exit. */
  readonly at: number;
}

export interface ControllerProcess {
  readonly child: ChildProcess;
  readonly httpPort: number;
  readonly outboundAddress: { host: string; port: number };
  /** Every JSON log line so far. */
  readonly logs: ReadonlyArray<Record<string, unknown>>;
  readonly exited: Promise<ControllerExit>;
  /** Resolves with the first log line whose msg is `msg` (already logged or to come). */
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** stderr and non-JSON output, for failure messages. */
  output(): string;
  /** SIGKILL if still running. */
  kill(): Promise<void>;
}

export async function startControllerProcess(env: Record<string, string>, timeoutMs = 30_000): Promise<ControllerProcess> {
  // One process (no tsx CLI wrapper), so the signals reach the controller itself.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    // At least info: the start line (its ports) and the shutdown steps are read from the log.
    env: { ...process.env, ...env, LOG_LEVEL: env.LOG_LEVEL === 'debug' || env.LOG_LEVEL === 'trace' ? env.LOG_LEVEL : 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let other = '';
  const waiters = new Set<{ msg: string; resolve: (line: Record<string, unknown>) => void }>();
  let partial = '';
  child.stdout.on('data', (d: Buffer) => {
    partial += d.toString('utf8');
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const text of lines) {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        other += `${text}\n`;
        continue;
      }
      logs.push(line);
      for (const w of [...waiters]) {
        if (line.msg === w.msg) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    other += d.toString('utf8');
  });
  const exited = new Promise<ControllerExit>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );

  const waitForLog = (msg: string, ms = 30_000): Promise<Record<string, unknown>> => {
    const seen = logs.find((l) => l.msg === msg);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        msg,
        resolve: (line: Record<string, unknown>) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`controller never logged "${msg}"; output:\n${other}`));
      }, ms);
      waiters.add(waiter);
    });
  };

  const started = await Promise.race([
    waitForLog('controller started', timeoutMs),
    exited.then((e) => {
      throw new Error(`controller exited (${e.code ?? e.signal}) before it started:\n${other}`);
    }),
  ]);
  const http = started.http as { port: number };
  const outbound = started.outboundSocket as { host: string; port: number };
  return {
    child,
    httpPort: http.port,
    outboundAddress: outbound,
    logs,
    exited,
    waitForLog,
    output: () => other,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      child.stdout?.destroy();
      child.stderr?.destroy();
    },
  };
}
