/**
 * Routing decision time for calls to X: from the switch connecting to the outbound socket to
 * the bridge command arriving back (goal p99 <= 2 ms at 1,000 new calls/s). A minimal fake
 * switch plays trace 13a's protocol: it answers `connect` with a CHANNEL_DATA reply, acks
 * myevents/linger/sendmsg, and stamps the time when `execute-app-name: bridge` arrives.
 *
 * The floor, measured first in the same run by the same fake switch at the same rate: a bare
 * outbound-socket server that sends connect, myevents and linger in one write and the bridge as
 * soon as the linger reply is in, with no lookup and no other work: what the protocol itself costs
 * on this machine. The figure that matters is numguard's p99 against the floor's p99.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import net from 'node:net';
import { numberHasher } from '../src/domain/number-hash';
import { Worker } from 'node:worker_threads';
import { EslOutboundServer } from '../src/esl/outbound-server';
import { CALL_TO_X_EVENTS, handleCallToX } from '../src/flows/call-to-x';
import { durableCallsToX } from '../src/flows/call-to-x-handover';
import { CallsToXOwners } from '../src/stores/calls-to-x-owners';
import { benchLogger } from './support/bench-logger';
import { RouteIndex, type IndexableBinding, type RouteRead } from '../src/stores/route-index';
import { joinRouteCache, RouteReadCache, RouteWriteBarrier } from '../src/stores/route-cache';
import { RouteLookup } from '../src/stores/route-lookup';
import { createRedis } from '../src/stores/redis';
import { deletePrefixKeys } from '../test/support/redis';
import { countCommands, takeCounts } from './support/command-counter';
import { processCpuMs, threadCpuMs } from './support/proc-cpu';

const X = '700100000000001';
/** The measured calls come from 138…; the warm-up's from 137…, bound too, so the measured calls find the route cache as cold as without a warm-up. */
const MEASURED_CALLER_PREFIX = '138';
const WARM_CALLER_PREFIX = '137';

/**
 * The switch side runs in a worker thread, as a real switch runs on another host: its own event
 * loop, so its load does not sit in the controller's latency figures. Plain JS (no loader needed).
 */
const FAKE_SWITCH = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const { randomUUID } = require('node:crypto');
const { port, x, rate, seconds, callers, callerPrefix } = workerData;
const { readFileSync } = require('node:fs');
// This thread's own CPU (utime + stime, 10 ms ticks), so the controller's share can be told apart from the fake switch's.
function ownCpuMs() {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch { return null; }
}
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
        else if (msg.includes('execute-app-name: bridge')) { done = true; resolve(performance.now() - start); sock.destroy(); return; }
        else if (msg.startsWith('api ')) sock.write('Content-Type: api/response\\nContent-Length: 4\\n\\n+OK\\n');
        else sock.write('Content-Type: command/reply\\nReply-Text: +OK\\n\\n');
      }
    });
    let done = false;
    // A connection the controller dropped (e.g. its handshake timed out on an overloaded host) counts as a failed call, not a hang.
    sock.on('close', () => { if (!done) resolve(null); });
    sock.on('error', () => undefined);
  });
}
(async () => {
  const latencies = [];
  let failed = 0;
  const pending = [];
  const cpu0 = ownCpuMs();
  const t0 = performance.now();
  for (let i = 0; i < rate * seconds; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(fakeCall(callerPrefix + String(i % callers).padStart(8, '0')).then((ms) => { if (ms === null) failed++; else latencies.push(ms); }));
  }
  await Promise.all(pending);
  const cpu1 = ownCpuMs();
  parentPort.postMessage({ latencies, failed, elapsedMs: performance.now() - t0, switchCpuMs: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0 });
})().catch((err) => parentPort.postMessage({ error: String(err) }));
`;

/** The fake switch at `rate` calls/s for `seconds` against the outbound socket at `port`: connect-to-bridge latencies. */
interface OfferedCalls {
  latencies: number[];
  failed: number;
  elapsedMs: number;
  /** The fake switch thread's own CPU over the run (null off Linux). */
  switchCpuMs: number | null;
}

function offerCalls(port: number, rate: number, seconds: number, callers: number, callerPrefix = MEASURED_CALLER_PREFIX): Promise<OfferedCalls> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(FAKE_SWITCH, { eval: true, workerData: { port, x: X, rate, seconds, callers, callerPrefix } });
    worker.once('message', (m: OfferedCalls | { error: string }) => ('error' in m ? reject(new Error(m.error)) : resolve(m)));
    worker.once('error', reject);
  });
}

/** The floor: an outbound-socket server that does nothing but the protocol (one write out, the bridge after the linger reply). */
async function bareOutboundServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    sock.setNoDelay(true);
    sock.on('error', () => undefined);
    let replies = 0;
    let buf = '';
    sock.write('connect\n\nmyevents\n\nlinger\n\n');
    sock.on('data', (d) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        buf = buf.slice(i + 2);
        if (++replies === 3) sock.write('sendmsg\ncall-command: execute\nexecute-app-name: bridge\nexecute-app-arg: sofia/gateway/carrier/13900000001\n\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** CPU ms per call over an interval, less what another thread spent in it; null when /proc was unreadable. */
function perCall(before: number | null, after: number | null, otherThreadMs: number | null, calls: number): number | null {
  if (before === null || after === null || otherThreadMs === null) return null;
  return Number(((after - before - otherThreadMs) / Math.max(1, calls)).toFixed(3));
}

export async function run(): Promise<Record<string, unknown>> {
  countCommands();
  const prefix = `ngbench${randomBytes(4).toString('hex')}`;
  const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  // As in production (app.ts): lookups go through the local cache fed by the route-changes channel.
  // BENCH_ROUTE_CACHE_MS=0 measures without it (every lookup a Redis round trip).
  const cache = new RouteReadCache<RouteRead>({ ttlMs: Number(process.env.BENCH_ROUTE_CACHE_MS ?? 10_000), maxEntries: 100_000 });
  const stopCache = cache.enabled
    ? await joinRouteCache(cache, { subscriber: createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'), redis, prefix, leaseMs: 1000 })
    : async () => undefined;
  const barrier = await RouteWriteBarrier.start({ subscriber: createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'), redis, prefix, ackTimeoutMs: 200 });
  const routes = new RouteIndex(redis, prefix, numberHasher('bench-number-hash-key-0123456789abcdef'), cache, barrier);
  // Each caller calls again every `callers` calls (BENCH_CALLERS, default 1000): what a route cache can serve.
  const callers = Number(process.env.BENCH_CALLERS ?? 1000);
  const bindings: IndexableBinding[] = [];
  for (const prefix of [MEASURED_CALLER_PREFIX, WARM_CALLER_PREFIX]) {
    for (let i = 0; i < callers; i++) {
      bindings.push({
        id: randomUUID(), tenantId: 't', kind: 'axb', x: X, a: `${prefix}${String(i).padStart(8, '0')}`, b: `139${String(i).padStart(8, '0')}`,
        expiresAt: Date.now() + 3600_000, restriction: 'both', record: false, maxDurationSeconds: null, announcement: null, allowList: [], userData: null,
      });
    }
  }
  const { logger, logLevel } = benchLogger();
  // As in production: the lookup reads the index's completeness marker with the routes (one MGET); built here from the bindings above.
  const lookup = new RouteLookup({ index: routes, listActive: async () => bindings, activeFor: async () => [], logger });
  await lookup.ensureComplete();
  const controllerSide: number[] = [];
  // The lookup alone (Redis MGET and the decision), timed inside the controller: how much of the decision is the store.
  const lookupSide: number[] = [];
  const timedLookup = {
    lookup: async (x: string, caller: string, now?: number) => {
      const t = performance.now();
      const decision = await lookup.lookup(x, caller, now);
      lookupSide.push(performance.now() - t);
      return decision;
    },
    lookupExtension: (x: string, extension: string, now?: number) => lookup.lookupExtension(x, extension, now),
  };
  // As in production: each call is prepared to outlive the controller (two switch commands, a Redis record), none of it awaited.
  const owners = new CallsToXOwners(redis, prefix, 'bench', 60_000);
  await owners.heartbeat();
  const durable = durableCallsToX({ owners, switchOf: () => null, logger });
  const server = new EslOutboundServer({ host: '127.0.0.1', port: 0, logger, commandTimeoutMs: 5000, lingerExitMs: 10, events: CALL_TO_X_EVENTS });
  server.on('session', (s) => {
    void handleCallToX(
      {
        routes: timedLookup, extensions: { prompt: 'tone_stream://x', timeoutMs: 5000, digitTimeoutMs: 3000 }, dialString: (n) => `sofia/gateway/carrier/${n}`, ringbackTone: '%(2000,4000,440,480)', notInServicePrompt: 'tone_stream://x',
        unavailablePrompt: 'tone_stream://x', routingTimeoutMs: 3000,
        bFailedPrompt: 'tone_stream://x', announcementOf: async () => null, ringTimeoutSeconds: 30, maxDurationSeconds: 600, recordingPath: () => '/tmp/r.wav',
        finished: async () => undefined, logger, routed: (ms) => void controllerSide.push(ms), durable,
      },
      s,
    ).catch(() => undefined);
  });
  const { port } = await server.listen();

  const rate = Number(process.env.BENCH_RATE ?? 1000);
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  // Each side first takes calls unmeasured, at the same rate: a controller in service runs compiled code, not V8's first tiers.
  const warmSeconds = Number(process.env.BENCH_WARM_SECONDS ?? 3);
  const bare = await bareOutboundServer();
  if (warmSeconds > 0) await offerCalls(bare.port, rate, warmSeconds, callers, WARM_CALLER_PREFIX);
  const floorCpuBefore = processCpuMs(process.pid);
  const floorMainThreadCpuBefore = threadCpuMs(process.pid);
  const floorRun = await offerCalls(bare.port, rate, seconds, callers);
  const floorCpuAfter = processCpuMs(process.pid);
  const floorMainThreadCpuAfter = threadCpuMs(process.pid);
  await bare.close();
  if (warmSeconds > 0) await offerCalls(port, rate, warmSeconds, callers, WARM_CALLER_PREFIX);
  controllerSide.length = 0;
  lookupSide.length = 0;
  takeCounts();
  const processCpuBefore = processCpuMs(process.pid);
  const mainThreadCpuBefore = threadCpuMs(process.pid);
  const result = await offerCalls(port, rate, seconds, callers);
  const processCpuAfter = processCpuMs(process.pid);
  const mainThreadCpuAfter = threadCpuMs(process.pid);
  const commands = takeCounts();

  const latencies = result.latencies;
  const achieved = (latencies.length / result.elapsedMs) * 1000;
  const floor = [...floorRun.latencies].sort((a, b) => a - b);
  latencies.sort((a, b) => a - b);
  controllerSide.sort((a, b) => a - b);
  lookupSide.sort((a, b) => a - b);
  const at = (list: number[], p: number) => Number(list[Math.min(list.length - 1, Math.floor((p / 100) * list.length))]!.toFixed(2));
  const summary = (list: number[]) => ({ p50: at(list, 50), p90: at(list, 90), p99: at(list, 99), max: at(list, 100) });
  await server.close();
  await stopCache();
  await barrier.stop();
  await deletePrefixKeys(redis, prefix);
  await redis.quit();
  return {
    calls: latencies.length,
    failedCalls: result.failed,
    offeredPerSecond: rate,
    achievedPerSecond: Math.round(achieved),
    connectToBridgeMs: summary(latencies),
    floorConnectToBridgeMs: {
      ...summary(floor),
      achievedPerSecond: Math.round((floor.length / floorRun.elapsedMs) * 1000),
      failedCalls: floorRun.failed,
      // What the bare protocol server costs per call, measured as controllerCpuMsPerCall is.
      serverCpuMsPerCall: perCall(floorCpuBefore, floorCpuAfter, floorRun.switchCpuMs, floor.length),
      serverMainThreadCpuMsPerCall: perCall(floorMainThreadCpuBefore, floorMainThreadCpuAfter, 0, floor.length),
    },
    p50OverFloor: Number((at(latencies, 50) / at(floor, 50)).toFixed(2)),
    p99OverFloor: Number((at(latencies, 99) / at(floor, 99)).toFixed(2)),
    // The same interval as the controller sees it (accept to bridge written), without the fake switch's own scheduling.
    controllerAcceptToBridgeMs: summary(controllerSide),
    lookupMs: summary(lookupSide),
    // Independent of the host's load: what each decided call cost in Redis round trips (MGET and GET of the marker when not cached).
    redisCommandsPerCall: Object.fromEntries(
      Object.entries(commands)
        .filter(([name]) => name.startsWith('redis '))
        .map(([name, n]) => [name, Number((n / Math.max(1, latencies.length)).toFixed(3))]),
    ),
    // CPU per decided call on the controller side, from /proc (10 ms ticks): the whole process minus the fake switch's thread
    // (so it includes GC and libuv helper threads), and the main thread alone (the controller's JavaScript).
    controllerCpuMsPerCall: perCall(processCpuBefore, processCpuAfter, result.switchCpuMs, latencies.length),
    controllerMainThreadCpuMsPerCall: perCall(mainThreadCpuBefore, mainThreadCpuAfter, 0, latencies.length),
    switchCpuMsPerCall: result.switchCpuMs === null ? null : Number((result.switchCpuMs / Math.max(1, latencies.length)).toFixed(3)),
    routeCacheMs: cache.enabled ? Number(process.env.BENCH_ROUTE_CACHE_MS ?? 10_000) : 0,
    warmSeconds,
    logLevel,
    note: 'connectToBridgeMs is measured by the fake switch (a worker thread sharing the 2 cores): TCP connect to the bridge command received, including the round trips of connect and myevents+linger and the Redis lookup; floorConnectToBridgeMs is the same fake switch against a bare outbound server that only speaks the protocol (measured first, same rate); controllerAcceptToBridgeMs is the numguard_routing_decision_seconds histogram\'s measure',
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
