/**
 * The dispatch pace (how fast and how late click-to-dial calls leave their queue), against real
 * Redis and a real BullMQ worker: what a job's fields say of its wait, the counts of several
 * controllers meeting in Redis, and the window admission reads.
 */
import { Queue, Worker, type Job } from 'bullmq';
import {
  DispatchPaceReader,
  DispatchPaceRecorder,
  PACE_WINDOW_SECONDS,
  paceKey,
  queuedLagMs,
  readDispatchPace,
  type DispatchPace,
} from '../../src/queues/dispatch-pace';
import { createTestRedis, type TestRedis } from '../support/redis';
import { waitUntil } from '../support/wait';

const job = (over: Partial<Parameters<typeof queuedLagMs>[0]> = {}): Parameters<typeof queuedLagMs>[0] => ({
  timestamp: 10_000,
  processedOn: 12_500,
  attemptsStarted: 1,
  opts: {},
  data: {},
  ...over,
});

describe('queuedLagMs: how long a call waited for its turn', () => {
  it('is the time from queued (or due, when delayed) to started, for a first start only', () => {
    expect(queuedLagMs(job(), 99_000)).toBe(2500);
    expect(queuedLagMs(job({ opts: { delay: 2000 } }), 99_000)).toBe(500);
    expect(queuedLagMs(job({ processedOn: undefined }), 13_000)).toBe(3000);
    expect(queuedLagMs(job({ timestamp: 13_000 }), 99_000)).toBe(0); // another host's clock ahead of this one
    // A retry the worker queued, a redelivery after a stall, a job taken again after a hold: not a call leaving its queue.
    expect(queuedLagMs(job({ data: { attempt: 2 } }), 99_000)).toBeNull();
    expect(queuedLagMs(job({ attemptsStarted: 2 }), 99_000)).toBeNull();
  });
});

describe('dispatch pace in Redis', () => {
  let r: TestRedis;
  const closers: Array<() => Promise<unknown>> = [];
  beforeEach(async () => {
    r = await createTestRedis();
  });
  afterEach(async () => {
    while (closers.length > 0) await closers.pop()!().catch(() => undefined);
    await r.cleanup();
  });

  it("adds up every controller's counts per second and reads the last complete seconds", async () => {
    let now = 1_795_345_670_200; // .2 s into a second
    const controllers = [new DispatchPaceRecorder(r.redis, r.prefix, 'carrier', () => now), new DispatchPaceRecorder(r.redis, r.prefix, 'carrier', () => now)];
    // Three seconds, each: the first controller starts 4 calls that waited 2 s, the second 2 that waited 5 s.
    for (let s = 0; s < 3; s++) {
      for (let i = 0; i < 4; i++) controllers[0]!.started(job({ timestamp: now - 2000, processedOn: now }));
      for (let i = 0; i < 2; i++) controllers[1]!.started(job({ timestamp: now - 5000, processedOn: now }));
      controllers[1]!.started(job({ timestamp: now - 9000, processedOn: now, data: { attempt: 2 } })); // a retry: not counted
      await Promise.all(controllers.map((c) => c.flush()));
      now += 1000;
    }
    const pace = await readDispatchPace(r.redis, r.prefix, 'carrier', now);
    expect(pace).not.toBeNull();
    expect(pace!.calls).toBe(18);
    expect(pace!.callsPerSecond).toBe(18 / PACE_WINDOW_SECONDS);
    expect(pace!.meanLagSeconds).toBeCloseTo((12 * 2 + 6 * 5) / 18, 6);
    // The second in progress is not read: a partial second would understate the rate.
    controllers[0]!.started(job({ timestamp: now - 60_000, processedOn: now }));
    await controllers[0]!.flush();
    expect((await readDispatchPace(r.redis, r.prefix, 'carrier', now))?.calls).toBe(18);
    // Another gateway's queue is its own.
    expect(await readDispatchPace(r.redis, r.prefix, 'other', now)).toBeNull();
    // Seconds out of the window are forgotten, by the reader at once and by Redis soon after.
    expect(await readDispatchPace(r.redis, r.prefix, 'carrier', now + 3000)).toMatchObject({ calls: 1, meanLagSeconds: 60 });
    expect(await readDispatchPace(r.redis, r.prefix, 'carrier', now + 4000)).toBeNull();
    const ttl = await r.redis.pttl(paceKey(r.prefix, 'carrier', Math.floor(now / 1000)));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(10_000);
    // Nothing counted since: a flush writes nothing.
    const keys = await r.redis.keys(`${r.prefix}:dispatch-pace:*`);
    await controllers[0]!.flush();
    expect(await r.redis.keys(`${r.prefix}:dispatch-pace:*`)).toEqual(keys);
  });

  it("counts a BullMQ job once, when it first starts: by its queued time, not again when it is taken after a hold", async () => {
    const queue = new Queue('pace-demo', { connection: r.redis, prefix: r.prefix });
    closers.push(() => queue.close());
    let now = Date.now();
    const recorder = new DispatchPaceRecorder(r.redis, r.prefix, 'carrier', () => now);
    const starts: string[] = [];
    const worker = new Worker(
      'pace-demo',
      async (j: Job) => {
        now = Date.now();
        recorder.started(j);
        starts.push(String(j.id));
        if (j.id === 'held' && starts.filter((id) => id === 'held').length === 1) {
          await queue.rateLimit(50);
          throw Worker.RateLimitError();
        }
        return 'ok';
      },
      { connection: r.redis, prefix: r.prefix },
    );
    closers.push(() => worker.close());
    // Queued 4 s ago by a producer (BullMQ's own field for it), and held once by the worker.
    await queue.add('call', {}, { jobId: 'late', timestamp: Date.now() - 4000 });
    await queue.add('call', {}, { jobId: 'held', timestamp: Date.now() - 1000 });
    await waitUntil('both jobs done', async () => (await queue.getJobCounts('completed')).completed === 2);
    expect(starts.filter((id) => id === 'held')).toHaveLength(2);
    await recorder.flush();
    const pace = await readDispatchPace(r.redis, r.prefix, 'carrier', now + 1000);
    expect(pace?.calls).toBe(2);
    expect(pace!.meanLagSeconds).toBeGreaterThanOrEqual(2.5); // (4 + 1) / 2, and the worker's own start-up
    expect(pace!.meanLagSeconds).toBeLessThan(5);
  });

  it('the API reads it at most once per interval, and does not keep a failed read', async () => {
    let now = 0;
    let reads = 0;
    let fail = false;
    const pace: DispatchPace = { callsPerSecond: 5, meanLagSeconds: 2, calls: 15 };
    const reader = new DispatchPaceReader(
      () => {
        reads++;
        return fail ? Promise.reject(new Error('redis down')) : Promise.resolve(pace);
      },
      250,
      () => now,
    );
    expect(await Promise.all([reader.pace(), reader.pace()])).toEqual([pace, pace]);
    now = 249;
    await reader.pace();
    expect(reads).toBe(1);
    now = 250;
    fail = true;
    await expect(reader.pace()).rejects.toThrow('redis down');
    fail = false;
    now = 251;
    expect(await reader.pace()).toEqual(pace);
    expect(reads).toBe(3);
  });
});
