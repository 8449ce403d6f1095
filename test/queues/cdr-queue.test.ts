import net from 'node:net';
import type { RowDataPacket } from 'mysql2/promise';
import { CdrQueue, cdrJobId, startCdrWriter, type CdrBatchTiming } from '../../src/queues/cdr-queue';
import { createLogger } from '../../src/logger';
import { createMysqlPool, type Pool } from '../../src/stores/mysql';
import { createTestDatabase, testDatabaseUrl, type TestDatabase } from '../support/mysql';
import { createTestRedis, type TestRedis } from '../support/redis';
import { makeOutcome } from '../stores/fixtures';

jest.setTimeout(60_000);

const logger = createLogger('silent');

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function countRows(pool: Pool, table: 'cdrs' | 'bindings', callIds: string[]): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT COUNT(*) n FROM ${table} WHERE call_id IN (?)`, [callIds]);
  return Number(rows[0]?.n);
}

/** A TCP proxy in front of MariaDB that the test can cut and restore, so the shared server is never stopped. */
class TcpProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and cuts every open connection: to the pool, MySQL is gone. */
  async kill(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('CdrQueue + CDR writer', () => {
  let db: TestDatabase;
  let r: TestRedis;
  const closers: Array<() => Promise<unknown>> = [];

  beforeEach(async () => {
    db = await createTestDatabase();
    r = await createTestRedis();
  });
  afterEach(async () => {
    while (closers.length > 0) await closers.pop()!().catch(() => undefined);
    await r.cleanup();
    await db.drop();
  });

  it('writes one row per call however often the CDR is enqueued or its job processed', async () => {
    const queue = new CdrQueue({ connection: r.redis, prefix: r.prefix });
    closers.push(() => queue.close());
    const outcome = makeOutcome('t1');

    await queue.enqueue(outcome);
    await queue.enqueue(outcome); // duplicate enqueue: same job id, a no-op
    await queue.enqueueMany([outcome]);
    expect(await queue.queue.getJobCounts('wait', 'delayed', 'active')).toEqual({ wait: 1, delayed: 0, active: 0 });

    const writer = startCdrWriter({ connection: r.redis, prefix: r.prefix, pool: db.pool, logger, concurrency: 10 });
    closers.push(() => writer.close());
    const job = await queue.queue.getJob(cdrJobId(outcome.cdr.callId));
    expect(job).toBeDefined();
    await waitFor(async () => (await job!.getState()) === 'completed', 10_000, 'first run of the job');

    // the same job processed again (as after a lost ack / stalled redelivery)
    await job!.retry('completed');
    await waitFor(async () => (await job!.getState()) === 'completed' && (await queue.queue.getJob(job!.id!))!.attemptsStarted >= 2, 10_000, 'second run');
    // and the same outcome under another job id (e.g. a second producer)
    await queue.queue.add('cdr', outcome, { jobId: 'cdr-redelivered-copy' });
    await waitFor(async () => (await queue.queue.getJobCounts('completed')).completed === 2, 10_000, 'the copy');

    expect(await countRows(db.pool, 'cdrs', [outcome.cdr.callId])).toBe(1);
    expect(await countRows(db.pool, 'bindings', [outcome.cdr.callId])).toBe(1);
    expect((await queue.queue.getJobCounts('failed')).failed).toBe(0);
  });

  it('a bad row in a batch fails alone: the others are written, completed and handed to afterWrite once each', async () => {
    const queue = new CdrQueue({ connection: r.redis, prefix: r.prefix });
    closers.push(() => queue.close());
    const outcomes = Array.from({ length: 12 }, (_, i) => makeOutcome(`t${i % 3}`));
    // user_data is VARCHAR(256): MySQL refuses the row (data too long), the same row every time
    const bad = makeOutcome('t1', { userData: 'x'.repeat(300) });
    const all = [...outcomes.slice(0, 6), bad, ...outcomes.slice(6)];
    await queue.enqueueMany(all);

    const afterWrite: string[][] = [];
    const writer = startCdrWriter({
      connection: r.redis,
      prefix: r.prefix,
      pool: db.pool,
      logger,
      concurrency: 20,
      maxBatch: 20,
      batchWindowMs: 500,
      afterWrite: async (written) => {
        afterWrite.push(written.map((o) => o.cdr.callId));
      },
    });
    closers.push(() => writer.close());
    await waitFor(async () => {
      const c = await queue.queue.getJobCounts('completed', 'failed');
      return c.completed === 12 && c.failed === 1;
    }, 15_000, 'twelve jobs completed and one failed');

    const goodIds = outcomes.map((o) => o.cdr.callId);
    expect(await countRows(db.pool, 'cdrs', goodIds)).toBe(12);
    expect(await countRows(db.pool, 'bindings', goodIds)).toBe(12);
    expect(await countRows(db.pool, 'cdrs', [bad.cdr.callId])).toBe(0);
    expect(await countRows(db.pool, 'bindings', [bad.cdr.callId])).toBe(0);
    const failed = await queue.queue.getJob(cdrJobId(bad.cdr.callId));
    expect(await failed!.getState()).toBe('failed');
    expect(failed!.attemptsMade).toBe(1); // unrecoverable: not retried for ever
    expect(afterWrite.flat().sort()).toEqual([...goodIds].sort());
    expect(afterWrite.length).toBeLessThan(12); // the good rows were handed over together, not one by one
  });

  it('a job of several calls: the good ones are written once each, a bad one fails the job naming its call only', async () => {
    const queue = new CdrQueue({ connection: r.redis, prefix: r.prefix });
    closers.push(() => queue.close());
    const good = Array.from({ length: 9 }, (_, i) => makeOutcome(`t${i % 3}`));
    const bad = makeOutcome('t1', { userData: 'x'.repeat(300) });
    await queue.enqueueMany([...good.slice(0, 4), bad, ...good.slice(4)], { perJob: 5 });
    expect((await queue.queue.getJobCounts('waiting')).waiting).toBe(2);
    const writer = startCdrWriter({ connection: r.redis, prefix: r.prefix, pool: db.pool, logger, concurrency: 4, maxBatch: 20, batchWindowMs: 20 });
    closers.push(() => writer.close());
    await waitFor(async () => {
      const c = await queue.queue.getJobCounts('completed', 'failed');
      return c.completed === 1 && c.failed === 1;
    }, 15_000, 'one job completed and one failed');
    const goodIds = good.map((o) => o.cdr.callId);
    expect(await countRows(db.pool, 'cdrs', goodIds)).toBe(9);
    expect(await countRows(db.pool, 'bindings', goodIds)).toBe(9);
    expect(await countRows(db.pool, 'cdrs', [bad.cdr.callId])).toBe(0);
    const [failed] = await queue.queue.getFailed();
    expect(failed!.attemptsMade).toBe(1);
    expect(failed!.failedReason).toContain(bad.cdr.callId);
    for (const id of goodIds) expect(failed!.failedReason).not.toContain(id);
  });

  it('enqueue with a window puts the calls that end together into one job, and answers each caller with that job', async () => {
    const queue = new CdrQueue({ connection: r.redis, prefix: r.prefix, groupWindowMs: 50, maxPerJob: 4 });
    closers.push(() => queue.close());
    const outcomes = Array.from({ length: 6 }, (_, i) => makeOutcome(`t${i % 3}`));
    const ids = await Promise.all(outcomes.map((o) => queue.enqueue(o)));
    // four fill a job at once, the other two go together when the window ends
    expect(new Set(ids).size).toBe(2);
    expect(ids.slice(0, 4).every((id) => id === ids[0])).toBe(true);
    const jobs = await Promise.all([...new Set(ids)].map((id) => queue.queue.getJob(id)));
    expect(jobs.map((j) => (j!.data as { outcomes: unknown[] }).outcomes.length)).toEqual([4, 2]);
    // alone in its window, a call gets its own job, as without a window
    const alone = makeOutcome('t0');
    expect(await queue.enqueue(alone)).toBe(cdrJobId(alone.cdr.callId));

    const writer = startCdrWriter({ connection: r.redis, prefix: r.prefix, pool: db.pool, logger, batchWindowMs: 20 });
    closers.push(() => writer.close());
    await waitFor(async () => (await queue.queue.getJobCounts('completed')).completed === 3, 15_000, 'three jobs completed');
    expect(await countRows(db.pool, 'cdrs', [...outcomes, alone].map((o) => o.cdr.callId))).toBe(7);
  });

  it('never has more batches open than maxTransactions, and writes every row once', async () => {
    const queue = new CdrQueue({ connection: r.redis, prefix: r.prefix });
    closers.push(() => queue.close());
    const outcomes = Array.from({ length: 60 }, (_, i) => makeOutcome(`t${i % 3}`));
    await queue.enqueueMany(outcomes);
    const batches: CdrBatchTiming[] = [];
    const writer = startCdrWriter({
      connection: r.redis,
      prefix: r.prefix,
      pool: db.pool,
      logger,
      concurrency: 60,
      maxBatch: 20,
      maxTransactions: 1,
      batchWindowMs: 5,
      onBatch: (b) => batches.push(b),
    });
    closers.push(() => writer.close());
    await waitFor(async () => (await queue.queue.getJobCounts('completed')).completed === 60, 15_000, 'sixty jobs completed');

    expect(await countRows(db.pool, 'cdrs', outcomes.map((o) => o.cdr.callId))).toBe(60);
    expect(batches.reduce((n, b) => n + b.size, 0)).toBe(60);
    expect(Math.max(...batches.map((b) => b.size))).toBeLessThanOrEqual(20);
    const spans = batches.map((b) => [b.startedAt, b.startedAt + b.attributeMs + b.persistMs + b.afterWriteMs] as const).sort((p, q) => p[0] - q[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
  });

  it('keeps CDRs while MySQL is unreachable and writes each exactly once when it returns', async () => {
    const proxy = new TcpProxy({ host: '127.0.0.1', port: 3306 });
    await proxy.start();
    closers.push(() => proxy.kill());
    const proxiedPool = createMysqlPool(testDatabaseUrl(db.name, `mysql://root@127.0.0.1:${proxy.port}/`), { connectionLimit: 5 });
    closers.push(() => proxiedPool.end());

    const queue = new CdrQueue({ connection: r.redis, prefix: r.prefix });
    closers.push(() => queue.close());
    const writer = startCdrWriter({
      connection: r.redis,
      prefix: r.prefix,
      pool: proxiedPool,
      logger,
      concurrency: 20,
      backoffBaseMs: 100,
      backoffMaxMs: 400,
    });
    closers.push(() => writer.close());

    // warm up: the pool holds live connections through the proxy when it is cut
    const warm = makeOutcome('t1');
    await queue.enqueue(warm);
    await waitFor(async () => (await countRows(db.pool, 'cdrs', [warm.cdr.callId])) === 1, 10_000, 'warm-up CDR');

    await proxy.kill();
    const outcomes = Array.from({ length: 40 }, (_, i) => makeOutcome(`t${i % 3}`));
    const ids = outcomes.map((o) => o.cdr.callId);
    for (const o of outcomes.slice(0, 20)) await queue.enqueue(o);
    await queue.enqueueMany(outcomes.slice(20));

    // while MySQL is away: nothing written, nothing lost, jobs being retried
    await waitFor(
      async () => {
        const jobs = await Promise.all(ids.map((id) => queue.queue.getJob(cdrJobId(id))));
        return jobs.every((j) => j !== undefined && j.attemptsMade >= 2);
      },
      20_000,
      'every job to have failed and been retried at least twice',
    );
    expect(await countRows(db.pool, 'cdrs', ids)).toBe(0);
    const during = await queue.queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'failed', 'completed');
    expect(during.failed).toBe(0);
    expect(during.completed).toBe(1); // the warm-up only
    expect(during.wait! + during.active! + during.delayed! + during.prioritized!).toBe(40);

    await proxy.start();
    await waitFor(async () => (await countRows(db.pool, 'cdrs', ids)) === 40, 20_000, 'all CDRs after MySQL returned');
    await waitFor(async () => (await queue.queue.getJobCounts('completed')).completed === 41, 10_000, 'all jobs completed');

    const [perCall] = await db.pool.query<RowDataPacket[]>(
      'SELECT call_id, COUNT(*) n FROM cdrs WHERE call_id IN (?) GROUP BY call_id HAVING n <> 1',
      [ids],
    );
    expect(perCall).toEqual([]);
    expect(await countRows(db.pool, 'cdrs', ids)).toBe(40);
    expect(await countRows(db.pool, 'bindings', ids)).toBe(40);
    expect((await queue.queue.getJobCounts('failed')).failed).toBe(0);
  });
});
