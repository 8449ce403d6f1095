/**
 * CDR persistence throughput: N call outcomes (each a CDR + callback binding) enqueued with
 * addBulk, then written into MySQL by the CDR writer. Goal (issue #9): >= 10,000 CDRs/s and >= 0.7 of
 * BullMQ's no-op ceiling with one CDR per job, the ceiling the issue measured the writer against. Two job
 * shapes: one call per job, and BENCH_PER_JOB calls per job (what CdrQueue's groupWindowMs makes of calls
 * that end together); each beside its own no-op ceiling, both ratios printed.
 * Per CDR it also counts what is host-independent: MySQL statements, Redis commands (this process),
 * and CPU ms of this process, mysqld and redis-server (from /proc).
 * Uses its own database (ng_bench_<hex>) and Redis prefix, and removes both afterwards.
 *
 *   npx tsx bench/cdr-persist.ts   (env: BENCH_N, BENCH_CONCURRENCY, BENCH_BATCH, BENCH_WORKERS, BENCH_PER_JOB, BENCH_UNBATCHED=0)
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import os from 'node:os';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { CdrQueue, DEFAULT_CONCURRENCY, DEFAULT_MAX_BATCH, startCdrWriter, type CallOutcome, type CdrBatchTiming } from '../src/queues/cdr-queue';
import { refusalAttribution } from '../src/stores/cdr-attribution';
import { createLogger } from '../src/logger';
import { migrate } from '../src/stores/migrate';
import { createMysqlPool, ensureDatabase } from '../src/stores/mysql';
import { dropDatabase, testDatabaseUrl } from '../test/support/mysql';
import { deletePrefixKeys } from '../test/support/redis';
import { countCommands, takeCounts } from './support/command-counter';
import { pidListeningOn, processCpuMs } from './support/proc-cpu';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const MYSQLD = pidListeningOn('127.0.0.1', 3306);
const REDIS_SERVER = pidListeningOn('127.0.0.1', Number(new URL(REDIS_URL).port || 6379));

/** CPU ms so far of this process, mysqld and redis-server (null where /proc does not tell). */
function cpuNow(): { node: number; mysqld: number | null; redis: number | null } {
  const c = process.cpuUsage();
  return { node: (c.user + c.system) / 1000, mysqld: MYSQLD && processCpuMs(MYSQLD), redis: REDIS_SERVER && processCpuMs(REDIS_SERVER) };
}

/** Per CDR: CPU µs of each process since `from`, and the MySQL statements and Redis commands this process sent. */
function costPerCdr(n: number, from: ReturnType<typeof cpuNow>, counts: Record<string, number>): Record<string, number | null> {
  const to = cpuNow();
  const us = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : Math.round(((b - a) * 1000) / n));
  const sum = (prefix: string): number => Object.entries(counts).filter(([k]) => k.startsWith(prefix)).reduce((t, [, v]) => t + v, 0);
  return {
    nodeCpuUsPerCdr: us(from.node, to.node),
    mysqldCpuUsPerCdr: us(from.mysqld, to.mysqld),
    redisServerCpuUsPerCdr: us(from.redis, to.redis),
    mysqlStatementsPerCdr: Math.round((sum('mysql ') / n) * 1000) / 1000,
    redisCommandsPerCdr: Math.round((sum('redis ') / n) * 100) / 100,
  };
}

/**
 * Call i's outcome as the writer meets it in production: one rider (A) calling a different customer (B) each time
 * through the tenant's fixed X, ended just now, so its callback binding is live (a member row, a route to add).
 */
export function outcome(i: number, tenantId: string): CallOutcome {
  const callId = randomUUID();
  const endedAt = Date.now();
  const startedAt = endedAt - 69_000;
  // Customers' numbers in no particular order (i times a prime, modulo 10^8), as real ones come: not each after the last.
  const b = `139${String((i * 7_919_993) % 100_000_000).padStart(8, '0')}`;
  return {
    cdr: {
      callId, tenantId, kind: 'click_to_dial', bindingId: null, x: '700123456789012', a: '13800138000', b,
      startedAt, aRingAt: startedAt + 1000, aAnswerAt: startedAt + 5000, bRingAt: startedAt + 6000, bAnswerAt: startedAt + 9000,
      endedAt, talkSeconds: 60, hangupCause: 'NORMAL_CLEARING', hangupSide: 'a', result: 'connected',
      recordingRef: null, userData: `order-${i}`,
    },
    callbackBinding: {
      id: randomUUID(), tenantId, x: '700123456789012', a: '13800138000', b,
      expiresAt: endedAt + 86_400_000, callId, userData: `order-${i}`,
    },
  };
}

export interface Scenario {
  readonly n: number;
  readonly concurrency: number;
  readonly maxBatch: number;
  readonly workers: number;
  /** Outcomes per job (1: one job per call). */
  readonly perJob: number;
}

export async function runScenario(s: Scenario): Promise<Record<string, unknown>> {
  const dbName = `ng_bench_${randomBytes(6).toString('hex')}`;
  const url = testDatabaseUrl(dbName);
  const prefix = `ngb${randomBytes(6).toString('hex')}`;
  const logger = createLogger('silent');
  await ensureDatabase(url);
  const pool = createMysqlPool(url, { connectionLimit: 20 });
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new CdrQueue({ connection: redis, prefix });
  const writers: Array<{ close(): Promise<void> }> = [];
  try {
    await migrate(pool);
    const outcomes = Array.from({ length: s.n }, (_, i) => outcome(i, `tenant-${i % 10}`));

    const t0 = performance.now();
    for (let i = 0; i < outcomes.length; i += 1000) await queue.enqueueMany(outcomes.slice(i, i + 1000), { perJob: s.perJob });
    const enqueueMs = performance.now() - t0;

    countCommands();
    takeCounts();
    const t1 = performance.now();
    const cpu0 = process.cpuUsage();
    const costFrom = cpuNow();
    const batches: CdrBatchTiming[] = [];
    for (let w = 0; w < s.workers; w++) {
      // each worker its own Redis connection: a shared one serializes every worker's commands
      const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
      const writer = startCdrWriter({
        connection, prefix, pool, logger, concurrency: s.concurrency, maxBatch: s.maxBatch,
        attribute: refusalAttribution(pool), onBatch: (b) => batches.push(b),
      });
      writers.push({ close: async () => { await writer.close(); connection.disconnect(); } });
    }
    const jobs = Math.ceil(s.n / s.perJob);
    for (;;) {
      const c = await queue.queue.getJobCounts('completed', 'failed');
      if ((c.completed ?? 0) + (c.failed ?? 0) >= jobs) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const persistMs = performance.now() - t1;
    const cpu = process.cpuUsage(cpu0);
    const cost = costPerCdr(s.n, costFrom, takeCounts());

    const [[row]] = await pool.query<RowDataPacket[]>('SELECT (SELECT COUNT(*) FROM cdrs) AS cdrs, (SELECT COUNT(*) FROM bindings) AS bindings, (SELECT COUNT(*) FROM binding_members) AS members');
    const failed = (await queue.queue.getJobCounts('failed')).failed ?? 0;
    return {
      ...s,
      enqueueMs: Math.round(enqueueMs),
      enqueuePerSec: Math.round((s.n / enqueueMs) * 1000),
      persistMs: Math.round(persistMs),
      persistPerSec: Math.round((s.n / persistMs) * 1000),
      jobsPerSec: Math.round((jobs / persistMs) * 1000),
      ...cost,
      writerProcessCpuPct: Math.round(((cpu.user + cpu.system) / 1000 / persistMs) * 100),
      ...batchStages(batches, persistMs),
      cdrRows: Number(row?.cdrs),
      bindingRows: Number(row?.bindings),
      /** Callback bindings left routable (one member row each). */
      liveCallbackRows: Number(row?.members),
      failedJobs: failed,
    };
  } finally {
    for (const w of writers) await w.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    await deletePrefixKeys(redis, prefix).catch(() => undefined);
    redis.disconnect();
    await pool.end().catch(() => undefined);
    await dropDatabase(dbName).catch(() => undefined);
  }
}

/** Where a batch's time goes, and how much of the run MySQL was busy with some batch's transaction. */
function batchStages(batches: readonly CdrBatchTiming[], spanMs: number): Record<string, number> {
  const mean = (f: (b: CdrBatchTiming) => number): number => Math.round((batches.reduce((t, b) => t + f(b), 0) / Math.max(batches.length, 1)) * 10) / 10;
  let busy = 0;
  let until = 0;
  for (const b of [...batches].sort((p, q) => p.startedAt - q.startedAt)) {
    const from = Math.max(b.startedAt + b.attributeMs, until);
    const to = b.startedAt + b.attributeMs + b.persistMs;
    if (to > from) busy += to - from;
    until = Math.max(until, to);
  }
  return {
    batches: batches.length,
    meanBatchSize: mean((b) => b.size),
    meanAttributeMs: mean((b) => b.attributeMs),
    meanPersistMs: mean((b) => b.persistMs),
    meanAfterWriteMs: mean((b) => b.afterWriteMs),
    mysqlBusyPct: Math.round((busy / spanMs) * 100),
  };
}

/**
 * The queue's own ceiling on this machine: the same jobs (same options, so the same removeOnComplete) through
 * a BullMQ worker that writes nothing, set up like the writer's: its own Redis connection, the same concurrency.
 */
export async function noopQueueCeiling(n: number, concurrency: number, perJob: number): Promise<Record<string, number | null>> {
  const prefix = `ngb${randomBytes(6).toString('hex')}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new CdrQueue({ connection: redis, prefix });
  let worker: Worker | null = null;
  try {
    const outcomes = Array.from({ length: n }, (_, i) => outcome(i, `tenant-${i % 10}`));
    for (let i = 0; i < n; i += 1000) await queue.enqueueMany(outcomes.slice(i, i + 1000), { perJob });
    const jobs = Math.ceil(n / perJob);
    countCommands();
    takeCounts();
    const from = cpuNow();
    const t = performance.now();
    worker = new Worker(queue.queue.name, async () => undefined, { connection, prefix, concurrency });
    const q: Queue = queue.queue;
    while (((await q.getJobCounts('completed')).completed ?? 0) < jobs) await new Promise((r) => setTimeout(r, 20));
    const ms = performance.now() - t;
    return { cdrsPerSec: Math.round((n / ms) * 1000), jobsPerSec: Math.round((jobs / ms) * 1000), ...costPerCdr(n, from, takeCounts()) };
  } finally {
    await worker?.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    await deletePrefixKeys(redis, prefix).catch(() => undefined);
    redis.disconnect();
    connection.disconnect();
  }
}

/** The writer and the no-op ceiling for one job shape, in the same run. */
async function shape(base: Omit<Scenario, 'perJob' | 'concurrency'>, perJob: number, concurrency: number): Promise<Record<string, unknown>> {
  const writer = await runScenario({ ...base, perJob, concurrency });
  const ceiling = await noopQueueCeiling(base.n, concurrency, perJob);
  const cdrsPerSec = Number(writer.persistPerSec);
  return {
    perJob,
    cdrsPerSec,
    jobsPerSec: writer.jobsPerSec,
    noopQueueCeilingCdrsPerSec: ceiling.cdrsPerSec,
    noopQueueCeilingJobsPerSec: ceiling.jobsPerSec,
    ratioToCeiling: Math.round((cdrsPerSec / Number(ceiling.cdrsPerSec)) * 100) / 100,
    writer,
    noopCeiling: ceiling,
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const n = Number(process.env.BENCH_N ?? 20_000);
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? DEFAULT_CONCURRENCY);
  const perJob = Number(process.env.BENCH_PER_JOB ?? 20);
  const base = { n, maxBatch: Number(process.env.BENCH_BATCH ?? DEFAULT_MAX_BATCH), workers: Number(process.env.BENCH_WORKERS ?? 1) };
  const oneCallPerJob = await shape(base, 1, concurrency);
  // the same number of calls in flight: concurrency counts jobs
  const grouped = perJob > 1 ? await shape(base, perJob, Math.max(1, Math.ceil(concurrency / perJob))) : null;
  // for comparison: one row per transaction (no batching), a smaller N
  const unbatched = process.env.BENCH_UNBATCHED === '0' ? null : await runScenario({ n: Math.min(n, 5000), concurrency: 50, maxBatch: 1, workers: 1, perJob: 1 });
  const best = grouped ?? oneCallPerJob;
  // The ceiling is BullMQ's no-op rate with one CDR per job (what it measured the writer against). Grouped
  // jobs move many CDRs for one job's cost, so their no-op ceiling is printed too, beside its own ratio.
  const ceiling = Number(oneCallPerJob.noopQueueCeilingCdrsPerSec);
  const ratio = Math.round((Number(best.cdrsPerSec) / ceiling) * 100) / 100;
  return {
    name: 'cdr-persist',
    cpus: os.cpus().length,
    note:
      'cdrsPerSec is the best shape (grouped when BENCH_PER_JOB > 1); ratioToCeiling divides it by the no-op ceiling with one CDR per job; ' +
      'ratioToCeilingOfTheseJobs by the no-op ceiling of the same grouped jobs. ' +
      'Redis, MariaDB and the writer share this host; each noop ceiling is BullMQ alone with a processor that writes nothing, ' +
      'same jobs (shape, options), concurrency and connection set-up as the writer beside it; the writer runs the app\'s attribution ' +
      '(no query: click-to-dial CDRs) but no afterWrite. Redis commands and MySQL statements are this process\'s, the progress polling included.',
    goalPerSec: 10_000,
    goalRatio: 0.7,
    cdrsPerSec: best.cdrsPerSec,
    noopQueueCeilingPerSec: ceiling,
    ratioToCeiling: ratio,
    meetsGoal: Number(best.cdrsPerSec) >= 10_000 && ratio >= 0.7,
    noopQueueCeilingOfTheseJobsPerSec: best.noopQueueCeilingCdrsPerSec,
    ratioToCeilingOfTheseJobs: best.ratioToCeiling,
    oneCallPerJob,
    grouped,
    unbatched,
  };
}

if (require.main === module) {
  run().then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
