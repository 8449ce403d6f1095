/**
 * The dispatch pace (how fast click-to-dial calls are dialled, and how long after they were
 * accepted), against real Redis: the counts of several controllers meeting in Redis, and the
 * window admission reads.
 */
import {
  DispatchPaceReader,
  DispatchPaceRecorder,
  PACE_WINDOW_SECONDS,
  paceKey,
  readDispatchPace,
  type DispatchPace,
} from '../../src/queues/dispatch-pace';
import { createTestRedis, type TestRedis } from '../support/redis';

describe('dispatch pace in Redis', () => {
  let r: TestRedis;
  beforeEach(async () => {
    r = await createTestRedis();
  });
  afterEach(async () => {
    await r.cleanup();
  });

  it("adds up every controller's counts per second, keeps each one's longest wait, and reads the last complete seconds", async () => {
    let now = 1_795_345_670_200; // .2 s into a second
    const controllers = [new DispatchPaceRecorder(r.redis, r.prefix, 'carrier', () => now), new DispatchPaceRecorder(r.redis, r.prefix, 'carrier', () => now)];
    // Three seconds, each: the first controller dials 4 calls that waited 2 s, the second 2 that waited 5 s.
    for (let s = 0; s < 3; s++) {
      for (let i = 0; i < 4; i++) controllers[0]!.dialled(2000);
      for (let i = 0; i < 2; i++) controllers[1]!.dialled(5000);
      if (s === 1) controllers[0]!.dialled(9000); // the longest wait, in the middle second, of the other controller
      await Promise.all(controllers.map((c) => c.flush()));
      now += 1000;
    }
    const pace = await readDispatchPace(r.redis, r.prefix, 'carrier', now);
    expect(pace).not.toBeNull();
    expect(pace!.calls).toBe(19);
    expect(pace!.callsPerSecond).toBeCloseTo(19 / PACE_WINDOW_SECONDS, 9);
    expect(pace!.meanLagSeconds).toBeCloseTo((12 * 2 + 6 * 5 + 9) / 19, 6);
    // The second controller's later, shorter maximum did not overwrite the first's.
    expect(pace!.maxLagSeconds).toBe(9);
    // The second in progress is not read: a partial second would understate the rate.
    controllers[0]!.dialled(60_000);
    await controllers[0]!.flush();
    expect((await readDispatchPace(r.redis, r.prefix, 'carrier', now))?.calls).toBe(19);
    // Another gateway's queue is its own.
    expect(await readDispatchPace(r.redis, r.prefix, 'other', now)).toBeNull();
    // Seconds out of the window are forgotten, by the reader at once and by Redis soon after.
    expect(await readDispatchPace(r.redis, r.prefix, 'carrier', now + 3000)).toEqual({ calls: 1, callsPerSecond: 1 / 3, meanLagSeconds: 60, maxLagSeconds: 60 });
    expect(await readDispatchPace(r.redis, r.prefix, 'carrier', now + 4000)).toBeNull();
    const ttl = await r.redis.pttl(paceKey(r.prefix, 'carrier', Math.floor(now / 1000)));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(10_000);
    // Nothing counted since: a flush writes nothing.
    const before = await r.redis.hgetall(paceKey(r.prefix, 'carrier', Math.floor(now / 1000)));
    await controllers[0]!.flush();
    expect(await r.redis.hgetall(paceKey(r.prefix, 'carrier', Math.floor(now / 1000)))).toEqual(before);
  });

  it('the API reads it at most once per interval, and does not keep a failed read', async () => {
    let now = 0;
    let reads = 0;
    let fail = false;
    const pace: DispatchPace = { callsPerSecond: 5, meanLagSeconds: 2, maxLagSeconds: 3, calls: 15 };
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
