/**
 * Click-to-dial dispatch: jobs taken from the callback queue and originated on the switch
 * simulator, through the real EslClient, Redis claims and BullMQ. Counts originates per second
 * and any uuid originated more than once (must be zero).
 *
 * Phone A answers busy, so each job is one originate and a settled result: the figure is the
 * dispatch rate, not the rate of connected calls (CDR persistence is bench/cdr-persist.ts).
 * Jobs are queued the way a backend queues them directly, so the worker also records each call in MySQL.
 *
 * Two switches: two simulators, each in its own process as a real switch would be, each with the
 * callback worker of a controller connected to it (one event socket each). Both workers take jobs
 * from the one queue, so the calls spread over both switches by whichever worker is free: the bench
 * harness does the spreading, the fleet's placement (src/fleet) is not on this path.
 * Duplicates are counted over both switches together.
 *
 * On a shared machine originates/s follows the load; controllerCpuMsPerOriginate (this process, both
 * workers) and simulatorCpuMsPerOriginate (each simulator's own process) are the cost per call.
 * BENCH_SIM_CPU_PROF=<dir> writes a CPU profile of each simulator.
 *
 * The ceiling, measured in the same run: the same kind of signed jobs through a BullMQ worker of the
 * same total concurrency whose processor does nothing (BullMQ's own rate on this machine).
 */
import { randomBytes } from 'node:crypto';
import { Worker } from 'bullmq';
import { callIdFor } from '../src/calls/click-to-dial-request';
import { SUBSCRIBED_EVENTS } from '../src/flows/switch';
import { EslClient } from '../src/esl/client';
import { legUuid } from '../src/flows/click-to-dial';
import { createLogger } from '../src/logger';
import { CallbackQueue, startCallbackWorker } from '../src/calls/callback-queue';
import { CLICK_TO_DIAL_JOB_NAME, CLICK_TO_DIAL_JOB_VERSION, signClickToDialJob, type ClickToDialJobData } from '../src/calls/click-to-dial-job';
import { BindingService } from '../src/bindings/binding-service';
import { LiveCallStore } from '../src/stores/live-calls';
import { cachedSigningKeys, cachedTenantLookup } from '../src/stores/cached-tenants';
import { CallStore } from '../src/stores/call-store';
import { migrate } from '../src/stores/migrate';
import { createMysqlPool, ensureDatabase } from '../src/stores/mysql';
import { createPipelinedRedis, createRedis } from '../src/stores/redis';
import { TenantStore } from '../src/stores/tenant-store';
import { dropDatabase, testDatabaseUrl } from '../test/support/mysql';
import { deletePrefixKeys } from '../test/support/redis';
import { processCpuMs } from './support/proc-cpu';
import { RemoteSimulator } from './support/remote-simulator';

const X = '700100000000001';

const SWITCHES = 2;
const CONCURRENCY_PER_WORKER = Number(process.env.BENCH_CONCURRENCY ?? 200);

export async function run(): Promise<Record<string, unknown>> {
  const viaApi = await runScenario({ callsRecordedFirst: true });
  const queuedDirectly = await runScenario({ callsRecordedFirst: false });
  const calls = Number(process.env.BENCH_CALLS ?? 3000);
  const ceiling = await noopQueueCeiling(calls, CONCURRENCY_PER_WORKER * SWITCHES);
  const ratio = (figure: unknown): number => Math.round((Number(figure) / ceiling) * 100) / 100;
  return {
    switches: SWITCHES,
    concurrencyPerWorker: CONCURRENCY_PER_WORKER,
    viaApi,
    queuedDirectly,
    noopQueueCeilingPerSec: ceiling,
    viaApiRatio: ratio(viaApi.originatesPerSecond),
    queuedDirectlyRatio: ratio(queuedDirectly.originatesPerSecond),
    goal: '>= 1000 originates/s, 0 duplicates, spread over both switches',
  };
}

/** BullMQ alone: the same kind of signed jobs through a worker that does nothing, at the same concurrency. */
async function noopQueueCeiling(calls: number, concurrency: number): Promise<number> {
  const prefix = `ngbench${randomBytes(4).toString('hex')}`;
  const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const queue = new CallbackQueue(redis, prefix, 'bench');
  const jobs = Array.from({ length: calls }, (_, i) =>
    signClickToDialJob(
      { v: CLICK_TO_DIAL_JOB_VERSION, tenantId: 'tenant', requestId: `r${i}`, a: `138${String(i).padStart(8, '0')}`, b: `139${String(i).padStart(8, '0')}` },
      { keyId: 'key', apiKey: 'k'.repeat(32) },
    ),
  );
  await queue.queue.addBulk(jobs.map((data) => ({ name: CLICK_TO_DIAL_JOB_NAME, data, opts: { jobId: callIdFor('tenant', data.requestId) } })));
  let done = 0;
  let resolveAll!: () => void;
  const allDone = new Promise<void>((r) => (resolveAll = r));
  const started = performance.now();
  const worker = new Worker(
    queue.queue.name,
    async () => {
      if (++done === calls) resolveAll();
    },
    { connection: redis, prefix, concurrency },
  );
  await allDone;
  const perSecond = Math.round((calls / (performance.now() - started)) * 1000);
  await worker.close();
  await queue.queue.obliterate({ force: true });
  await queue.close();
  await deletePrefixKeys(redis, prefix);
  await redis.quit();
  return perSecond;
}

/**
 * callsRecordedFirst: the API path (the call row exists, the worker only reads it);
 * otherwise the direct path (a backend queued the job; the worker records the call).
 */
export async function runScenario(opts: { callsRecordedFirst: boolean; calls?: number }): Promise<Record<string, unknown>> {
  const calls = opts.calls ?? Number(process.env.BENCH_CALLS ?? 3000);
  const logger = createLogger('silent');
  const sims = await Promise.all(Array.from({ length: SWITCHES }, () => RemoteSimulator.start(0)));
  const prefix = `ngbench${randomBytes(4).toString('hex')}`;
  const dbName = `ng_bench_${randomBytes(6).toString('hex')}`;
  const dbUrl = testDatabaseUrl(dbName);
  await ensureDatabase(dbUrl);
  const pool = createMysqlPool(dbUrl);
  await migrate(pool);
  const tenants = new TenantStore(pool);
  const tenant = await tenants.create({ name: 'bench', defaultX: X });
  const numbers = new BindingService(pool);
  await numbers.importNumbers(tenant.id, [{ x: X, area: '010' }]);
  const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const esls = sims.map(
    (sim) =>
      new EslClient({
        host: sim.address.host,
        port: sim.address.port,
        password: 'ClueCon',
        events: SUBSCRIBED_EVENTS,
        commandTimeoutMs: 30_000,
        reconnectMinMs: 100,
        reconnectMaxMs: 1000,
        logger,
      }),
  );
  await Promise.all(esls.map((esl) => esl.start()));
  const queue = new CallbackQueue(redis, prefix, 'bench');
  let finished = 0;
  let resolveAll!: () => void;
  const allDone = new Promise<void>((r) => (resolveAll = r));

  // Jobs queued straight into BullMQ are signed with one of the tenant's API keys, as a backend's are.
  const key = await tenants.createApiKey(tenant.id, 'bench');
  const jobs: ClickToDialJobData[] = Array.from({ length: calls }, (_, i) =>
    signClickToDialJob(
      { v: CLICK_TO_DIAL_JOB_VERSION, tenantId: tenant.id, requestId: `r${i}`, a: `138${String(i).padStart(8, '0')}`, b: `139${String(i).padStart(8, '0')}` },
      { keyId: key.id, apiKey: key.key },
    ),
  );
  await Promise.all(sims.map((sim) => sim.setPhones(jobs.map((j) => j.a), { answer: 'busy' })));
  const callStore = new CallStore(pool);
  if (opts.callsRecordedFirst) {
    for (const job of jobs) {
      await callStore.insert({
        id: callIdFor(tenant.id, job.requestId),
        kind: 'click_to_dial',
        tenantId: tenant.id,
        requestId: job.requestId,
        a: job.a,
        b: job.b,
        x: X,
        displayMode: 'fixed',
        ringTimeoutASeconds: 30,
        ringTimeoutBSeconds: 30,
        maxDurationSeconds: 1800,
        record: false,
        userData: null,
      });
    }
  }
  await queue.queue.addBulk(
    jobs.map((data) => ({ name: CLICK_TO_DIAL_JOB_NAME, data, opts: { jobId: callIdFor(tenant.id, data.requestId) } })),
  );

  const started = Date.now();
  const cpuAtStart = process.cpuUsage();
  const simCpuAtStart = sims.map((sim) => (sim.pid === null ? null : processCpuMs(sim.pid)));
  // One worker per switch, as one controller per switch would run it, each on its own Redis connection.
  const workerRedis = esls.map(() => createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'));
  // As the app wires it: the flows' live-call state on a connection of its own, auto-pipelined.
  const flowRedis = esls.map(() => createPipelinedRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'));
  const tenantLookup = cachedTenantLookup(tenants, 5000);
  const workers = esls.map((esl, i) =>
    startCallbackWorker({
      connection: workerRedis[i] ?? redis,
      prefix,
      gateway: 'bench',
      concurrency: CONCURRENCY_PER_WORKER,
      callsPerSecond: 100_000,
      tenants: tenantLookup,
      calls: callStore,
      keys: cachedSigningKeys(tenants, 5000),
      numbers,
      defaults: { ringTimeoutASeconds: 30, ringTimeoutBSeconds: 30, maxDurationSeconds: 1800, passthroughAllowed: true },
      flow: {
        switch: esl,
        live: new LiveCallStore(flowRedis[i] ?? redis, prefix),
        dialString: (n) => `sofia/gateway/carrier/${n}`,
        ringbackTone: '%(2000,4000,440,480)',
        bFailedPrompt: 'tone_stream://%(500,500,480,620)',
        recordingPath: (id) => `/tmp/${id}.wav`,
        logger,
      },
      finished: async () => {
        if (++finished === calls) resolveAll();
      },
      callbackBindingTtlSeconds: 3600,
      logger,
    }),
  );
  await allDone;
  const elapsedMs = Date.now() - started;
  const cpu = process.cpuUsage(cpuAtStart);
  const controllerCpuMs = (cpu.user + cpu.system) / 1000;
  const simulatorCpuMs = sims.map((sim, i) => {
    const now = sim.pid === null ? null : processCpuMs(sim.pid);
    const before = simCpuAtStart[i];
    return now === null || before === null || before === undefined ? null : now - before;
  });

  const uuids = jobs.map((job) => legUuid(callIdFor(tenant.id, job.requestId), 'a', 1));
  const perSwitch = await Promise.all(sims.map((sim) => sim.originateCounts(uuids)));
  const duplicates = uuids.reduce((sum, _, i) => sum + Math.abs(perSwitch.reduce((n, s) => n + (s.counts[i] ?? 0), 0) - 1), 0);
  await Promise.all(workers.map((w) => w.close()));
  await queue.queue.obliterate({ force: true });
  await queue.close();
  await Promise.all(esls.map((esl) => esl.stop()));
  await Promise.all(sims.map((sim) => sim.stop()));
  for (const r of [...workerRedis, ...flowRedis]) r.disconnect();
  await deletePrefixKeys(redis, prefix);
  await redis.quit();
  await pool.end();
  await dropDatabase(dbName);
  return {
    calls,
    originates: perSwitch.reduce((n, s) => n + s.total, 0),
    originatesPerSwitch: perSwitch.map((s) => s.total),
    elapsedMs,
    originatesPerSecond: Math.round((calls / elapsedMs) * 1000),
    duplicateOriginates: duplicates,
    // What each originate costs, whatever else the machine runs: the controllers (both workers, this
    // process) and each simulated switch (its own process).
    controllerCpuMsPerOriginate: Math.round((controllerCpuMs / calls) * 1000) / 1000,
    simulatorCpuMsPerOriginate: simulatorCpuMs.map((ms, i) => (ms === null ? null : Math.round((ms / Math.max(1, perSwitch[i]?.total ?? 0)) * 1000) / 1000)),
  };
}

if (require.main === module) {
  run().then(
    (r: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
}
