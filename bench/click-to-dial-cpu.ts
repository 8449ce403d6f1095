/**
 * Click-to-dial controller CPU per call: the whole path (POST /v1/calls → BullMQ → worker →
 * originate → the switch's events → settle → CDR in MySQL) with the whole controller in a process
 * of its own and the switch simulator in another, every call connected as with bench:switch's carrier
 * (each leg answers after 0.2 s; B hangs up BENCH_TALK_MS after answering). CPU time is read from
 * /proc, so the figure stays meaningful on a busy machine, where latency does not.
 *
 * Floor, measured in the same run: a bare Event Socket client placing the same calls as
 * `bgapi originate {vars}A &bridge({vars}B)` (one command, one BACKGROUND_JOB per call) at the same
 * rate through the same simulator; its process's CPU per call. The ratio is numguard / floor.
 *
 * The controller dials at the offered rate (its limiter off, as with bench:switch's raised limits).
 * Environment: BENCH_CALLS [400], BENCH_RATE [40 calls/s], BENCH_TALK_MS [3000],
 * BENCH_SIM_SCALE [1: the simulator's clock; 0.1 runs its delays ten times faster], BENCH_CPU_PROF [a directory: the controller writes
 * a V8 CPU profile there (node --cpu-prof)], BENCH_CONTROLLER_FLAGS [node flags for the controller, e.g. --max-semi-space-size=32], BENCH_COUNT_DETAIL [1: Redis scripts by name,
 * MySQL statements by their SQL, and the switch's events by name with their bytes], REDIS_URL, TEST_MYSQL_URL.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BindingService } from '../src/bindings/binding-service';
import { CALL_ID_VARIABLE } from '../src/flows/switch';
import { migrate } from '../src/stores/migrate';
import { createMysqlPool, ensureDatabase, type Pool } from '../src/stores/mysql';
import { createRedis, type Redis } from '../src/stores/redis';
import { TenantStore } from '../src/stores/tenant-store';
import { dropDatabase, testDatabaseUrl } from '../test/support/mysql';
import { deletePrefixKeys } from '../test/support/redis';
import { BareEsl } from './support/bare-esl';
import { processCpuMs, processSyscalls, threadsCpuMs } from './support/proc-cpu';
import { RemoteSimulator } from './support/remote-simulator';
import { CONTROLLER_NODE_FLAGS } from './support/node-flags';

const X = '700100000000001';
const env = process.env;

export async function run(): Promise<Record<string, unknown>> {
  const calls = Number(env.BENCH_CALLS ?? 400);
  const rate = Number(env.BENCH_RATE ?? 40);
  const talkMs = Number(env.BENCH_TALK_MS ?? 3000);
  const sim = await RemoteSimulator.start(Number(env.BENCH_SIM_SCALE ?? 1));
  const prefix = `ngbench${randomBytes(4).toString('hex')}`;
  const dbName = `ng_bench_${randomBytes(6).toString('hex')}`;
  const dbUrl = testDatabaseUrl(dbName);
  await ensureDatabase(dbUrl);
  const pool = createMysqlPool(dbUrl);
  await migrate(pool);
  const redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const tenants = new TenantStore(pool);
  const tenant = await tenants.create({ name: 'bench', defaultX: X });
  await new BindingService(pool).importNumbers(tenant.id, [{ x: X, area: '010' }]);
  const apiKey = (await tenants.createApiKey(tenant.id, 'bench')).key;
  const redis = createRedis(redisUrl);

  const numbers = (side: string, n: number, from: number): Array<{ a: string; b: string }> =>
    Array.from({ length: n }, (_, i) => ({ a: `13${side}${String(from + i).padStart(8, '0')}`, b: `15${side}${String(from + i).padStart(8, '0')}` }));
  const warmCalls = numbers('7', Number(env.BENCH_WARM_CALLS ?? 40), 0);
  const ngCalls = numbers('8', calls, 0);
  const bareCalls = numbers('9', calls, 0);
  // As bench:switch's carrier: every phone answers after 0.2 s; B hangs up talkMs after answering, A with it (hangup_after_bridge).
  const all = [...warmCalls, ...ngCalls, ...bareCalls];
  await sim.setPhones(all.map((c) => c.a), { answer: 'answer', ringMs: 200 });
  await sim.setPhones(all.map((c) => c.b), { answer: 'answer', ringMs: 200, hangupAfterMs: talkMs });

  const controller = await startController({
    ESL_HOST: sim.address.host,
    ESL_PORT: String(sim.address.port),
    ESL_PASSWORD: 'ClueCon',
    MYSQL_URL: dbUrl,
    REDIS_URL: redisUrl,
    REDIS_PREFIX: prefix,
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: '0',
    OUTBOUND_SOCKET_HOST: '127.0.0.1',
    OUTBOUND_SOCKET_PORT: '0',
    DIAL_STRING_TEMPLATE: 'sofia/gateway/carrier/{number}',
    CALLBACK_CALLS_PER_SECOND: '1000',
    // The simulator reports the shipped sessions-per-second (30), which would hold the queue to 12 calls/s and keep
    // calls waiting as delayed jobs; bare originates are not held back: off, as bench:switch's raised limits.
    CALLBACK_SWITCH_SHARE: '0',
    CALLBACK_CONCURRENCY: '2000',
    CALLBACK_MAX_WAIT_SECONDS: '0',
    CONTROLLER_MAX_LOOP_DELAY_MS: '0',
    CALLS_PER_CALLER_PER_MINUTE: '0',
    BINDINGS_PER_NUMBER_PER_HOUR: '0',
    TENANT_REQUESTS_PER_SECOND: '0',
    AUTH_FAILURES_PER_MINUTE: '0',
    NUMBER_HASH_KEY: randomBytes(24).toString('hex'),
    LOG_LEVEL: 'warn',
    BENCH_COUNT_COMMANDS: '1',
    ...(env.BENCH_COUNT_DETAIL === '1' ? { BENCH_COUNT_DETAIL: '1' } : {}),
    ...(JSON.parse(env.BENCH_CONTROLLER_ENV ?? '{}') as Record<string, string>),
  });
  const pid = controller.process.pid ?? 0;
  const baseUrl = `http://127.0.0.1:${String(controller.ready.port)}`;
  try {
    // A few calls first, so that lazily loaded code and JIT warm-up are not counted as the calls' cost.
    await placeNumguard(baseUrl, apiKey, pool, warmCalls, rate, 'warm');
    const idleMsPerSecond = await idleCpu(pid, 3000);
    const t0 = performance.now();
    const cpu0 = processCpuMs(pid);
    const threads0 = threadsCpuMs(pid);
    const syscalls0 = processSyscalls(pid);
    const redisBefore = await redisCommands(redis);
    await takeCounts(controller);
    const ng = await placeNumguard(baseUrl, apiKey, pool, ngCalls, rate, 'r');
    const cpu1 = processCpuMs(pid);
    const threads1 = threadsCpuMs(pid);
    const syscalls1 = processSyscalls(pid);
    const redisAfter = await redisCommands(redis);
    const sent = await takeCounts(controller);
    const wallSeconds = (performance.now() - t0) / 1000;
    const controllerMs = Math.max(0, (cpu1 ?? 0) - (cpu0 ?? 0) - idleMsPerSecond * wallSeconds);

    const bare = await BareEsl.connect({ ...sim.address, password: 'ClueCon' });
    const bareCpu = await placeBare(bare, bareCalls, rate);
    bare.close();

    const perCall = round(controllerMs / Math.max(1, ng.connected));
    const floorPerCall = round(bareCpu.cpuMs / Math.max(1, bareCpu.completed));
    return {
      calls,
      offeredPerSecond: rate,
      numguard: {
        accepted: ng.accepted,
        connected: ng.connected,
        results: ng.results,
        wallSeconds: round(wallSeconds, 1),
        controllerCpuMs: Math.round(controllerMs),
        controllerIdleMsPerSecond: round(idleMsPerSecond),
        controllerCpuMsPerCall: perCall,
        // Where that CPU went (idle rate not subtracted): the main thread against V8's and libuv's helpers, user against kernel time.
        controllerCpuMsPerCallByThread: cpuByThread(pid, threads0, threads1, Math.max(1, ng.connected)),
        // read and write system calls (sockets, mostly: one write per command or reply sent, one read per batch received)
        controllerSyscallsPerCall:
          syscalls0 && syscalls1
            ? { reads: round((syscalls1.reads - syscalls0.reads) / Math.max(1, ng.connected), 1), writes: round((syscalls1.writes - syscalls0.writes) / Math.max(1, ng.connected), 1) }
            : null,
        // What the controller sent, counted in its process (exact, whatever else runs on the host).
        commandsSentPerCall: perCallCounts(sent, Math.max(1, ng.accepted)),
        // INFO commandstats over the phase (Lua scripts' inner commands included): exact only when nothing else
        // uses this Redis (a private REDIS_URL).
        redisCommandsPerCall: commandsPerCall(redisBefore, redisAfter, Math.max(1, ng.accepted)),
      },
      bare: { completed: bareCpu.completed, cpuMs: Math.round(bareCpu.cpuMs), cpuMsPerCall: floorPerCall },
      ratio: round(perCall / Math.max(0.001, floorPerCall), 1),
      note: 'controller CPU (all of its threads, from /proc, minus its idle rate) per connected call; floor: a bare ESL client placing the same calls',
    };
  } finally {
    await stopController(controller);
    await sim.stop();
    await deletePrefixKeys(redis, prefix);
    await redis.quit();
    await pool.end();
    await dropDatabase(dbName);
  }
}

interface Child {
  readonly process: ChildProcess;
  readonly ready: Record<string, unknown>;
}

function startController(childEnv: Record<string, string>): Promise<Child> {
  const base: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'TZ', 'LANG']) if (env[k] !== undefined) base[k] = env[k];
  const profDir = env.BENCH_CPU_PROF;
  const child = fork(path.join(__dirname, 'support', 'controller-process.ts'), [], {
    execArgv: ['--import', 'tsx', ...CONTROLLER_NODE_FLAGS, ...(env.BENCH_CONTROLLER_FLAGS?.split(' ').filter(Boolean) ?? []), ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])],
    env: { ...base, ...childEnv },
    // The child's lines go to stderr: stdout carries the bench's JSON.
    stdio: ['ignore', 2, 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (msg: Record<string, unknown>) => resolve({ process: child, ready: msg }));
    child.once('exit', (code) => reject(new Error(`controller exited with ${code}`)));
  });
}

async function stopController(c: Child): Promise<void> {
  if (c.process.exitCode !== null) return;
  const gone = new Promise<void>((resolve) => c.process.once('exit', () => resolve()));
  c.process.send({ type: 'stop' });
  const timer = setTimeout(() => c.process.kill('SIGKILL'), 15_000);
  await gone;
  clearTimeout(timer);
}

/** The controller's CPU per second while nothing is offered (timers, heartbeats, BullMQ's polling). */
async function idleCpu(pid: number, ms: number): Promise<number> {
  const a = processCpuMs(pid) ?? 0;
  await sleep(ms);
  return ((processCpuMs(pid) ?? 0) - a) / (ms / 1000);
}

async function placeNumguard(
  baseUrl: string,
  apiKey: string,
  pool: Pool,
  calls: Array<{ a: string; b: string }>,
  rate: number,
  tag: string,
): Promise<{ accepted: number; connected: number; results: Record<string, number> }> {
  const ids: string[] = [];
  const posts: Array<Promise<void>> = [];
  const t0 = performance.now();
  for (const [i, c] of calls.entries()) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    posts.push(
      fetch(`${baseUrl}/v1/calls`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ requestId: `${tag}-${i}`, a: c.a, b: c.b, displayMode: 'fixed' }),
      }).then(async (res) => {
        const body = (await res.json()) as { id?: string };
        if ((res.status === 202 || res.status === 200) && body.id) ids.push(body.id);
      }),
    );
  }
  await Promise.all(posts);
  const results: Record<string, number> = {};
  const deadline = Date.now() + 120_000;
  for (;;) {
    const [rows] = await pool.query('SELECT result, COUNT(*) AS n FROM cdrs WHERE call_id IN (?) GROUP BY result', [ids]);
    let total = 0;
    for (const r of rows as Array<{ result: string; n: number }>) {
      results[r.result] = r.n;
      total += r.n;
    }
    if (total >= ids.length || Date.now() > deadline) break;
    await sleep(200);
  }
  return { accepted: ids.length, connected: results.connected ?? 0, results };
}

/** The floor: the same calls as bare originates; CPU of this process while it places them and reads their results. */
async function placeBare(bare: BareEsl, calls: Array<{ a: string; b: string }>, rate: number): Promise<{ cpuMs: number; completed: number }> {
  await bare.listenForJobs(true);
  const jobs: string[] = [];
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  for (const [i, c] of calls.entries()) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    const tag = `${CALL_ID_VARIABLE}=bare-${i}`;
    const aVars = `origination_caller_id_number=${X},origination_caller_id_name=${X},ignore_display_updates=true,originate_timeout=30,hangup_after_bridge=true,${tag}`;
    const bVars = `origination_caller_id_number=${X},origination_caller_id_name=${X},origination_callee_id_number=${X},origination_callee_id_name=${X},originate_timeout=30,${tag}`;
    jobs.push(bare.originate(`{${aVars}}sofia/gateway/carrier/${c.a} &bridge({${bVars}}sofia/gateway/carrier/${c.b})`));
  }
  const deadline = Date.now() + 60_000;
  while (!jobs.every((j) => bare.results.has(j)) && Date.now() < deadline) await sleep(50);
  const u = process.cpuUsage(u0);
  await bare.listenForJobs(false);
  return { cpuMs: (u.user + u.system) / 1000, completed: jobs.filter((j) => bare.results.get(j)?.startsWith('+OK')).length };
}

function takeCounts(c: Child): Promise<Record<string, number>> {
  return new Promise((resolve) => {
    const onMessage = (msg: { type?: string; counts?: Record<string, number> }): void => {
      if (msg.type !== 'counts' || !msg.counts) return;
      c.process.off('message', onMessage);
      resolve(msg.counts);
    };
    c.process.on('message', onMessage);
    c.process.send({ type: 'counts' });
  });
}

function perCallCounts(counts: Record<string, number>, calls: number): Record<string, number> {
  let redis = 0;
  let mysql = 0;
  for (const [k, n] of Object.entries(counts)) {
    if (k.startsWith('redis ')) redis += n;
    // mysql2 queues a Prepare before every execute; one already prepared on that connection costs no round trip
    else if (k.startsWith('mysql ') && !k.startsWith('mysql Prepare')) mysql += n;
  }
  const per: Record<string, number> = { redis: round(redis / calls, 1), mysqlRoundTrips: round(mysql / calls, 1) };
  for (const [k, n] of Object.entries(counts)) if (n / calls >= 0.05) per[k] = round(n / calls, k.endsWith(' bytes') ? 0 : 2);
  return per;
}

async function redisCommands(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  const counts = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) counts.set(m[1] as string, Number(m[2]));
  return counts;
}

function commandsPerCall(before: Map<string, number>, after: Map<string, number>, calls: number): Record<string, number> {
  const per: Record<string, number> = {};
  let total = 0;
  for (const [name, n] of after) {
    const d = n - (before.get(name) ?? 0);
    if (d <= 0 || name === 'info') continue;
    per[name] = round(d / calls, 1);
    total += d;
  }
  return { total: round(total / calls, 1), ...Object.fromEntries(Object.entries(per).sort(([, x], [, y]) => y - x)) };
}

function cpuByThread(
  pid: number,
  before: ReturnType<typeof threadsCpuMs>,
  after: ReturnType<typeof threadsCpuMs>,
  calls: number,
): Record<string, { user: number; system: number }> {
  const sums: Record<string, { user: number; system: number }> = {};
  for (const [tid, t] of after) {
    const b = before.get(tid) ?? { userMs: 0, systemMs: 0 };
    const key = tid === pid ? 'main' : t.name.replace(/[0-9]+$/, '').trim();
    const s = (sums[key] ??= { user: 0, system: 0 });
    s.user += t.userMs - b.userMs;
    s.system += t.systemMs - b.systemMs;
  }
  return Object.fromEntries(Object.entries(sums).map(([k, s]) => [k, { user: round(s.user / calls), system: round(s.system / calls) }]));
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

if (require.main === module) {
  run().then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
