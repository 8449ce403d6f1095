/**
 * Click-to-dial dispatch: jobs taken from the callback queue and originated on the switch
 * simulator, through the real EslClient, Redis claims and BullMQ. Counts originates per second
 * and any uuid originated more than once (must be zero).
 *
 * Phone A answers busy, so each job is one originate and a settled result: the figure is the
 * dispatch rate, not the rate of connected calls (CDR persistence is bench/cdr-persist.ts).
 * The simulator runs in its own process, as a real switch would. Jobs are queued the way a
 * backend queues them directly, so the worker also records each call in MySQL.
 */
import { randomBytes } from 'node:crypto';
import { callIdFor } from '../src/calls/click-to-dial-request';
import { SUBSCRIBED_EVENTS } from '../src/flows/switch';
import { EslClient } from '../src/esl/client';
import { legUuid } from '../src/flows/click-to-dial';
import { createLogger } from '../src/logger';
import { CallbackQueue, startCallbackWorker } from '../src/calls/callback-queue';
import { CLICK_TO_DIAL_JOB_NAME, CLICK_TO_DIAL_JOB_VERSION, signClickToDialJob, type ClickToDialJobData } from '../src/calls/click-to-dial-job';
import { BindingService } from '../src/bindings/binding-service';
import { LiveCallStore } from '../src/stores/live-calls';
import { cachedTenantLookup } from '../src/stores/cached-tenants';
import { CallStore } from '../src/stores/call-store';
import { migrate } from '../src/stores/migrate';
import { createMysqlPool, ensureDatabase } from '../src/stores/mysql';
import { createRedis } from '../src/stores/redis';
import { TenantStore } from '../src/stores/tenant-store';
import { dropDatabase, testDatabaseUrl } from '../test/support/mysql';
import { deletePrefixKeys } from '../test/support/redis';
import { RemoteSimulator } from './support/remote-simulator';

const X = '700100000000001';

export async function run(): Promise<Record<string, unknown>> {
  return {
    viaApi: await runScenario({ callsRecordedFirst: true }),
    queuedDirectly: await runScenario({ callsRecordedFirst: false }),
    goal: '>= 1000 originates/s, 0 duplicates',
  };
}

/**
 * callsRecordedFirst: the API path (the call row exists, the worker only reads it);
 * otherwise the direct path (a backend queued the job; the worker records the call).
 */
async function runScenario(opts: { callsRecordedFirst: boolean; calls?: number }): Promise<Record<string, unknown>> {
  const calls = opts.calls ?? Number(process.env.BENCH_CALLS ?? 3000);
  const logger = createLogger('silent');
  const sim = await RemoteSimulator.start(0);
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
  const esl = new EslClient({
    host: sim.address.host,
    port: sim.address.port,
    password: 'ClueCon',
    events: SUBSCRIBED_EVENTS,
    commandTimeoutMs: 30_000,
    reconnectMinMs: 100,
    reconnectMaxMs: 1000,
    logger,
  });
  await esl.start();
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
  await sim.setPhones(
    jobs.map((j) => j.a),
    { answer: 'busy' },
  );
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
  const worker = startCallbackWorker({
    connection: redis,
    prefix,
    gateway: 'bench',
    concurrency: 400,
    callsPerSecond: 100_000,
    tenants: cachedTenantLookup(tenants, 5000),
    calls: callStore,
    keys: tenants,
    numbers,
    defaults: { ringTimeoutASeconds: 30, ringTimeoutBSeconds: 30, maxDurationSeconds: 1800, passthroughAllowed: true },
    flow: {
      switch: esl,
      live: new LiveCallStore(redis, prefix),
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
  });
  await allDone;
  const elapsedMs = Date.now() - started;

  const { counts, total } = await sim.originateCounts(jobs.map((job) => legUuid(callIdFor(tenant.id, job.requestId), 'a', 1)));
  const duplicates = counts.reduce((sum, n) => sum + Math.abs(n - 1), 0);
  await worker.close();
  await queue.queue.obliterate({ force: true });
  await queue.close();
  await esl.stop();
  await sim.stop();
  await deletePrefixKeys(redis, prefix);
  await redis.quit();
  await pool.end();
  await dropDatabase(dbName);
  return {
    calls,
    originates: total,
    elapsedMs,
    originatesPerSecond: Math.round((calls / elapsedMs) * 1000),
    duplicateOriginates: duplicates,
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
