import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { CdrRecord } from '../../src/domain/call';
import { completionEvents, PlatformEventBus } from '../../src/events/platform-events';
import { PlatformMetrics, type MetricsSources } from '../../src/monitoring/metrics';
import { createRedis } from '../../src/stores/redis';
import { createMysqlPool } from '../../src/stores/mysql';
import { createTestDatabase, type TestDatabase } from '../support/mysql';
import { deletePrefixKeys, TEST_REDIS_URL, testRedisPrefix } from '../support/redis';
import { TcpProxy } from './tcp-proxy';

/** One sample of a Prometheus text exposition, e.g. value(text, 'numguard_queue_jobs{queue="q",state="waiting"}'). */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function cdr(callId: string, kind: CdrRecord['kind'], result: CdrRecord['result']): CdrRecord {
  const t = Date.now();
  return {
    callId,
    tenantId: 'tenant-1',
    kind,
    bindingId: null,
    x: '700100000000001',
    a: '13800000001',
    b: '13900000002',
    startedAt: t,
    aRingAt: null,
    aAnswerAt: null,
    bRingAt: null,
    bAnswerAt: null,
    endedAt: t,
    talkSeconds: 0,
    hangupCause: 'NORMAL_CLEARING',
    hangupSide: 'a',
    result,
    recordingRef: null,
    userData: null,
  };
}

/** PlatformMetrics on its own, against real Redis queues and a real (empty) database. */
describe('platform metrics', () => {
  let db: TestDatabase;
  let redis: Redis;
  let prefix: string;
  let events: PlatformEventBus;
  const opened: Array<{ close(): Promise<void> }> = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = createRedis(TEST_REDIS_URL);
    prefix = testRedisPrefix();
    events = new PlatformEventBus(redis, prefix, (err) => {
      throw err;
    });
  });
  afterAll(async () => {
    for (const o of opened.reverse()) await o.close();
    await deletePrefixKeys(redis, prefix);
    redis.disconnect();
    await db?.drop();
  });

  const metricsFor = (
    queues: ReadonlyArray<{ name: string; queue: Queue }>,
    extra: Partial<Pick<MetricsSources, 'staleCallMs' | 'maxTrackedCalls' | 'pool' | 'redisReady' | 'sourceTimeoutMs' | 'poolCacheMs' | 'dialPace' | 'loopDelay'>> = {},
  ) => {
    const m = new PlatformMetrics({ events, queues, pool: db.pool, eslConnected: () => true, ...extra });
    opened.push({ close: async () => m.stop() });
    return m;
  };
  const newQueue = (name: string): Queue => {
    const q = new Queue(name, { connection: redis, prefix });
    opened.push(q);
    return q;
  };

  it('counts the jobs of a paused queue by state, and the age of the job that has waited longest', async () => {
    const queue = newQueue('paused-work');
    await queue.pause();
    const now = Date.now();
    await queue.add('job', {}, { jobId: 'waiting-2-minutes', timestamp: now - 120_000 });
    await queue.add('job', {}, { jobId: 'waiting-now', timestamp: now });
    await queue.add('job', {}, { jobId: 'later', delay: 3_600_000 });
    const text = await metricsFor([{ name: 'paused-work', queue }]).text();
    expect(value(text, 'numguard_queue_jobs{queue="paused-work",state="waiting"}')).toBe(2);
    expect(value(text, 'numguard_queue_jobs{queue="paused-work",state="delayed"}')).toBe(1);
    expect(value(text, 'numguard_queue_jobs{queue="paused-work",state="active"}')).toBe(0);
    expect(value(text, 'numguard_queue_jobs{queue="paused-work",state="failed"}')).toBe(0);
    // The job at the head of the line (2 minutes), not the one that just arrived.
    expect(value(text, 'numguard_queue_oldest_waiting_seconds{queue="paused-work"}')).toBeGreaterThanOrEqual(120);
  });

  it("reports the back-pressure figures: how late calls were dialled, how fast, and how late this controller's loop runs", async () => {
    const pace = { callsPerSecond: 31.5, meanLagSeconds: 2.25, maxLagSeconds: 6.5, calls: 94 };
    const text = await metricsFor([], { dialPace: () => Promise.resolve(pace), loopDelay: () => ({ meanMs: 120, p99Ms: 480 }) }).text();
    expect(value(text, 'numguard_click_to_dial_dial_wait_seconds{stat="mean"}')).toBe(2.25);
    expect(value(text, 'numguard_click_to_dial_dial_wait_seconds{stat="max"}')).toBe(6.5);
    expect(value(text, 'numguard_click_to_dial_dialled_per_second')).toBe(31.5);
    expect(value(text, 'numguard_event_loop_delay_seconds{stat="mean"}')).toBe(0.12);
    expect(value(text, 'numguard_event_loop_delay_seconds{stat="p99"}')).toBe(0.48);
    // No call dialled lately, a pace Redis cannot give, and Redis known down: no wait series, 0 dialled.
    for (const extra of [
      { dialPace: () => Promise.resolve(null) },
      { dialPace: () => Promise.reject(new Error('redis down')) },
      { dialPace: () => Promise.resolve(pace), redisReady: () => false },
    ]) {
      const none = await metricsFor([], extra).text();
      expect(none).not.toContain('numguard_click_to_dial_dial_wait_seconds{');
      expect(value(none, 'numguard_click_to_dial_dialled_per_second')).toBe(0);
    }
  });

  it('reports 0 for the oldest waiting job of an empty queue', async () => {
    const queue = newQueue('empty-work');
    const text = await metricsFor([{ name: 'empty-work', queue }]).text();
    expect(value(text, 'numguard_queue_oldest_waiting_seconds{queue="empty-work"}')).toBe(0);
    expect(value(text, 'numguard_queue_jobs{queue="empty-work",state="waiting"}')).toBe(0);
  });

  it('counts a retried job from its last attempt, not from when it was first queued', async () => {
    const queue = newQueue('retried-work');
    await queue.add('job', {}, { jobId: 'queued-an-hour-ago', timestamp: Date.now() - 3_600_000, attempts: 2, backoff: { type: 'fixed', delay: 3_600_000 } });
    const workerConnection = createRedis(TEST_REDIS_URL);
    const failedOnce = new Promise<void>((resolve) => {
      const worker = new Worker(
        'retried-work',
        async () => {
          throw new Error('endpoint down');
        },
        { connection: workerConnection, prefix },
      );
      worker.on('failed', () => {
        void worker.close().then(resolve);
      });
    });
    await failedOnce;
    workerConnection.disconnect();
    const job = await queue.getJob('queued-an-hour-ago');
    expect(await job!.getState()).toBe('delayed');
    await job!.promote(); // its backoff is over: back in line
    const text = await metricsFor([{ name: 'retried-work', queue }]).text();
    expect(value(text, 'numguard_queue_jobs{queue="retried-work",state="waiting"}')).toBe(1);
    expect(value(text, 'numguard_queue_oldest_waiting_seconds{queue="retried-work"}')).toBeLessThan(3_600);
  });

  it('keeps a call active from its first event to its completion, and counts it by kind and result', async () => {
    const metrics = metricsFor([]);
    const active = async (kind: string) => value(await metrics.registry.getSingleMetricAsString('numguard_active_calls'), `numguard_active_calls{kind="${kind}"}`);
    const tenantId = 'tenant-1';
    events.report({ type: 'call.calling', tenantId, callId: 'ctd-1', leg: 'a', at: Date.now() });
    events.report({ type: 'call.answered', tenantId, callId: 'ctd-1', leg: 'a', at: Date.now() });
    // A click-to-dial call resumed here after another instance died: first seen when B answers.
    events.report({ type: 'call.answered', tenantId, callId: 'ctd-resumed', leg: 'b', at: Date.now() });
    // A call to X counts from the switch handing it over, before any event (B is still ringing).
    metrics.callStarted('ctx-1', 'call_to_x');
    expect(await active('click_to_dial')).toBe(2);
    expect(await active('call_to_x')).toBe(1);
    events.report({ type: 'call.answered', tenantId, callId: 'ctx-1', leg: 'b', at: Date.now() });
    events.report({ type: 'call.bridged', tenantId, callId: 'ctx-1', at: Date.now() });
    expect(await active('call_to_x')).toBe(1);
    expect(await active('click_to_dial')).toBe(2);

    for (const e of completionEvents(cdr('ctd-1', 'click_to_dial', 'b_busy'))) events.report(e);
    for (const e of completionEvents(cdr('ctd-resumed', 'click_to_dial', 'connected'))) events.report(e);
    for (const e of completionEvents(cdr('ctx-1', 'axb', 'connected'))) events.report(e);
    expect(await active('click_to_dial')).toBe(0);
    expect(await active('call_to_x')).toBe(0);
    const text = await metrics.registry.getSingleMetricAsString('numguard_calls_total');
    expect(value(text, 'numguard_calls_total{kind="click_to_dial",result="b_busy"}')).toBe(1);
    expect(value(text, 'numguard_calls_total{kind="click_to_dial",result="connected"}')).toBe(1);
    expect(value(text, 'numguard_calls_total{kind="call_to_x",result="connected"}')).toBe(1);
  });

  it('stops counting a call to X when its handler ends, even if no completion was reported', async () => {
    const metrics = metricsFor([]);
    const active = async () => value(await metrics.registry.getSingleMetricAsString('numguard_active_calls'), 'numguard_active_calls{kind="call_to_x"}');
    const ended = metrics.callStarted('ctx-crashed', 'call_to_x');
    expect(await active()).toBe(1);
    ended();
    expect(await active()).toBe(0);
  });

  it('stops counting a call whose completion never came once it is older than any call can be', async () => {
    const metrics = metricsFor([], { staleCallMs: 50 });
    events.report({ type: 'call.calling', tenantId: 'tenant-1', callId: 'lost-1', leg: 'a', at: Date.now() });
    const active = async () => value(await metrics.registry.getSingleMetricAsString('numguard_active_calls'), 'numguard_active_calls{kind="click_to_dial"}');
    expect(await active()).toBe(1);
    // Real time must pass: the call becomes older than staleCallMs (50 ms), judged by Date.now() at the scrape.
    await new Promise((r) => setTimeout(r, 60));
    expect(await active()).toBe(0);
  });

  it('never tracks more calls than its limit', async () => {
    const metrics = metricsFor([], { maxTrackedCalls: 3 });
    for (let i = 1; i <= 5; i++) events.report({ type: 'call.calling', tenantId: 'tenant-1', callId: `many-${i}`, leg: 'a', at: Date.now() });
    const active = async () => value(await metrics.registry.getSingleMetricAsString('numguard_active_calls'), 'numguard_active_calls{kind="click_to_dial"}');
    expect(await active()).toBe(3);
    // The ones kept are the newest: completing them empties the table.
    for (const i of [3, 4, 5]) for (const e of completionEvents(cdr(`many-${i}`, 'click_to_dial', 'connected'))) events.report(e);
    expect(await active()).toBe(0);
  });
});

/**
 * A scrape while Redis or MySQL is away: it still answers (ESL state and call counters are what an
 * operator needs most during an outage), leaves the unreadable series out, and says which source
 * failed in numguard_metrics_source_up.
 */
describe('platform metrics while a dependency is down', () => {
  const SOURCE_TIMEOUT_MS = 300;
  let db: TestDatabase;
  let redisProxy: TcpProxy;
  let mysqlProxy: TcpProxy;
  let redis: Redis;
  let pool: ReturnType<typeof createMysqlPool>;
  let queue: Queue;
  let metrics: PlatformMetrics;
  let prefix: string;

  /** Reconnects take their own time: scrape until the source reads `up` (or give up after 10 s). */
  const scrapeUntil = async (source: 'redis' | 'mysql', up: number): Promise<string> => {
    const deadline = Date.now() + 10_000;
    let text = await metrics.text();
    while (value(text, `numguard_metrics_source_up{source="${source}"}`) !== up && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      text = await metrics.text();
    }
    return text;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    const redisUrl = new URL(TEST_REDIS_URL);
    redisProxy = new TcpProxy({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    const direct = new URL(db.url);
    mysqlProxy = new TcpProxy({ host: direct.hostname, port: Number(direct.port || 3306) });
    redis = createRedis(`redis://127.0.0.1:${await redisProxy.start()}`);
    direct.port = String(await mysqlProxy.start());
    pool = createMysqlPool(direct.toString());
    prefix = testRedisPrefix();
    queue = new Queue('outage-work', { connection: redis, prefix });
    await queue.add('job', {}, { jobId: 'waiting-1' });
    // No redisReady: a hung Redis must be cut off by the timeout alone.
    metrics = new PlatformMetrics({
      events: new PlatformEventBus(redis, prefix, (err) => {
        throw err;
      }),
      queues: [{ name: 'outage-work', queue }],
      pool,
      eslConnected: () => true,
      sourceTimeoutMs: SOURCE_TIMEOUT_MS,
      poolCacheMs: 0,
    });
  });
  afterAll(async () => {
    metrics?.stop();
    redisProxy?.setMode('forward');
    await queue?.obliterate({ force: true }).catch(() => undefined);
    await queue?.close();
    redis?.disconnect();
    await pool?.end().catch(() => undefined);
    await redisProxy?.stop();
    await mysqlProxy?.stop();
    await db?.drop();
  });

  it('reads every source while both answer', async () => {
    const text = await metrics.text();
    expect(value(text, 'numguard_metrics_source_up{source="redis"}')).toBe(1);
    expect(value(text, 'numguard_metrics_source_up{source="mysql"}')).toBe(1);
    expect(value(text, 'numguard_queue_jobs{queue="outage-work",state="waiting"}')).toBe(1);
  });

  it('answers without the queue figures while Redis accepts connections and never replies', async () => {
    redisProxy.setMode('blackhole');
    const text = await scrapeUntil('redis', 0);
    expect(value(text, 'numguard_metrics_source_up{source="redis"}')).toBe(0);
    expect(text).not.toContain('numguard_queue_jobs{');
    expect(text).not.toContain('numguard_queue_oldest_waiting_seconds{');
    expect(value(text, 'numguard_esl_connected')).toBe(1);
    expect(value(text, 'numguard_active_calls{kind="click_to_dial"}')).toBe(0);
    expect(value(text, 'numguard_metrics_source_up{source="mysql"}')).toBe(1);

    redisProxy.setMode('refuse'); // cuts the connection stuck in the black hole, so Redis can reconnect
    redisProxy.setMode('forward');
    const back = await scrapeUntil('redis', 1);
    expect(value(back, 'numguard_queue_jobs{queue="outage-work",state="waiting"}')).toBe(1);
  });

  it('skips the queues at once while the Redis connection is known to be down', async () => {
    const down = metricsWithRedisState([{ name: 'outage-work', queue }], () => false);
    const text = await down.text();
    expect(value(text, 'numguard_metrics_source_up{source="redis"}')).toBe(0);
    expect(text).not.toContain('numguard_queue_jobs{');
    down.stop();
  });

  it('answers without the pool figures while MySQL refuses connections', async () => {
    await pool.query(
      "INSERT INTO pool_numbers (x, tenant_id, area, state) VALUES ('700700000000001', 'tenant-1', '0571', 'enabled')",
    );
    expect(value(await metrics.text(), 'numguard_pool_numbers{area="0571",state="enabled"}')).toBe(1);
    mysqlProxy.setMode('refuse');
    const text = await scrapeUntil('mysql', 0);
    expect(value(text, 'numguard_metrics_source_up{source="mysql"}')).toBe(0);
    expect(text).not.toContain('numguard_pool_numbers{');
    expect(text).not.toContain('numguard_bindings_active{');
    expect(value(text, 'numguard_queue_jobs{queue="outage-work",state="waiting"}')).toBe(1);

    mysqlProxy.setMode('forward');
    const back = await scrapeUntil('mysql', 1);
    expect(value(back, 'numguard_pool_numbers{area="0571",state="enabled"}')).toBe(1);
  });

  function metricsWithRedisState(queues: MetricsSources['queues'], redisReady: () => boolean): PlatformMetrics {
    return new PlatformMetrics({
      events: new PlatformEventBus(redis, prefix, () => undefined),
      queues,
      pool,
      eslConnected: () => true,
      redisReady,
      sourceTimeoutMs: 60_000,
    });
  }
});
