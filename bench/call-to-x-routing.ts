/**
 * Routing decision time for calls to X: from the switch connecting to the outbound socket to
 * the bridge command arriving back (goal p99 <= 2 ms at 1,000 new calls/s). A minimal fake
 * switch plays trace 13a's protocol: it answers `connect` with a CHANNEL_DATA reply, acks
 * myevents/linger/sendmsg, and stamps the time when `execute-app-name: bridge` arrives.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { numberHasher } from '../src/domain/number-hash';
import { Worker } from 'node:worker_threads';
import { EslOutboundServer } from '../src/esl/outbound-server';
import { handleCallToX } from '../src/flows/call-to-x';
import { createLogger } from '../src/logger';
import { RouteIndex } from '../src/stores/route-index';
import { createRedis } from '../src/stores/redis';
import { deletePrefixKeys } from '../test/support/redis';

const X = '700100000000001';

/**
 * The switch side runs in a worker thread, as a real switch runs on another host: its own event
 * loop, so its load does not sit in the controller's latency figures. Plain JS (no loader needed).
 */
const FAKE_SWITCH = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const { randomUUID } = require('node:crypto');
const { port, x, rate, seconds, callers } = workerData;
function channelData(uuid, caller) {
  const h = [
    ['Event-Name', 'CHANNEL_DATA'], ['Unique-ID', uuid], ['Channel-Name', 'sofia/external/' + caller + '@127.0.0.1:5090'],
    ['Caller-Caller-ID-Number', caller], ['Caller-Destination-Number', x], ['Content-Type', 'command/reply'],
    ['Reply-Text', '%2BOK%0A'], ['Socket-Mode', 'async'], ['Control', 'full'],
  ];
  return h.map(([k, v]) => k + ': ' + v).join('\\n') + '\\n\\n';
}
function fakeCall(caller) {
  return new Promise((resolve, reject) => {
    const uuid = randomUUID();
    const start = performance.now();
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      for (let i = buf.indexOf('\\n\\n'); i >= 0; i = buf.indexOf('\\n\\n')) {
        const msg = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (msg.startsWith('connect')) sock.write(channelData(uuid, caller));
        else if (msg.includes('execute-app-name: bridge')) { resolve(performance.now() - start); sock.destroy(); return; }
        else sock.write('Content-Type: command/reply\\nReply-Text: +OK\\n\\n');
      }
    });
    sock.on('error', reject);
  });
}
(async () => {
  const latencies = [];
  const pending = [];
  const t0 = performance.now();
  for (let i = 0; i < rate * seconds; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(fakeCall('138' + String(i % callers).padStart(8, '0')).then((ms) => { latencies.push(ms); }));
  }
  await Promise.all(pending);
  parentPort.postMessage({ latencies, elapsedMs: performance.now() - t0 });
})().catch((err) => parentPort.postMessage({ error: String(err) }));
`;

export async function run(): Promise<Record<string, unknown>> {
  const prefix = `ngbench${randomBytes(4).toString('hex')}`;
  const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const routes = new RouteIndex(redis, prefix, numberHasher('bench-number-hash-key-0123456789abcdef'));
  const callers = 1000;
  for (let i = 0; i < callers; i++) {
    await routes.put({
      id: randomUUID(), tenantId: 't', kind: 'axb', x: X, a: `138${String(i).padStart(8, '0')}`, b: `139${String(i).padStart(8, '0')}`,
      expiresAt: Date.now() + 3600_000, restriction: 'both', record: false, maxDurationSeconds: null, announcement: null, allowList: [], userData: null,
    });
  }
  const logger = createLogger('silent');
  const controllerSide: number[] = [];
  const server = new EslOutboundServer({ host: '127.0.0.1', port: 0, logger, commandTimeoutMs: 5000, lingerExitMs: 10 });
  server.on('session', (s) => {
    void handleCallToX(
      {
        routes, dialString: (n) => `sofia/gateway/carrier/${n}`, ringbackTone: '%(2000,4000,440,480)', notInServicePrompt: 'tone_stream://x', unavailablePrompt: 'tone_stream://x', routingTimeoutMs: 3000,
        bFailedPrompt: 'tone_stream://x', announcementOf: async () => null, ringTimeoutSeconds: 30, maxDurationSeconds: 600, recordingPath: () => '/tmp/r.wav',
        finished: async () => undefined, logger, routed: (ms) => void controllerSide.push(ms),
      },
      s,
    ).catch(() => undefined);
  });
  const { port } = await server.listen();

  const rate = Number(process.env.BENCH_RATE ?? 1000);
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  const result = await new Promise<{ latencies: number[]; elapsedMs: number }>((resolve, reject) => {
    const worker = new Worker(FAKE_SWITCH, { eval: true, workerData: { port, x: X, rate, seconds, callers } });
    worker.once('message', (m: { latencies: number[]; elapsedMs: number } | { error: string }) =>
      'error' in m ? reject(new Error(m.error)) : resolve(m),
    );
    worker.once('error', reject);
  });
  const latencies = result.latencies;
  const t0 = performance.now() - result.elapsedMs;
  const achieved = (latencies.length / (performance.now() - t0)) * 1000;
  latencies.sort((a, b) => a - b);
  controllerSide.sort((a, b) => a - b);
  const at = (list: number[], p: number) => Number(list[Math.min(list.length - 1, Math.floor((p / 100) * list.length))]!.toFixed(2));
  const pct = (p: number) => at(latencies, p);
  await server.close();
  await deletePrefixKeys(redis, prefix);
  await redis.quit();
  return {
    calls: latencies.length,
    offeredPerSecond: rate,
    achievedPerSecond: Math.round(achieved),
    connectToBridgeMs: { p50: pct(50), p90: pct(90), p99: pct(99), max: pct(100) },
    // The same interval as the controller sees it (accept to bridge written), without the fake switch's own scheduling.
    controllerAcceptToBridgeMs: { p50: at(controllerSide, 50), p90: at(controllerSide, 90), p99: at(controllerSide, 99), max: at(controllerSide, 100) },
    note: 'connectToBridgeMs is measured by the fake switch (a worker thread sharing the 2 cores): TCP connect to the bridge command received, including the round trips of connect and myevents+linger and the Redis lookup; controllerAcceptToBridgeMs is the numguard_routing_decision_seconds histogram\'s measure',
    goal: 'p99 <= 2 ms at 1,000 new calls/s',
  };
}

if (require.main === module) {
  run().then(
    (r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
}
