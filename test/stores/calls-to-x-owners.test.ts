import { Redis } from 'ioredis';
import { CallsToXOwners } from '../../src/stores/calls-to-x-owners';
import { redisKeys } from '../../src/stores/keys';
import { deletePrefixKeys, TEST_REDIS_URL, testRedisPrefix } from '../support/redis';

/** Which controller instance carries which call to X, and which calls are orphans (real Redis). */
describe('CallsToXOwners', () => {
  const prefix = testRedisPrefix();
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
  });
  afterAll(async () => {
    await deletePrefixKeys(redis, prefix);
    await redis.quit();
  });

  it('lists the calls of instances that stopped beating, never those of a live one nor its own', async () => {
    const alive = new CallsToXOwners(redis, prefix, 'alive', 60_000);
    const dying = new CallsToXOwners(redis, prefix, 'dying', 200);
    const sweeper = new CallsToXOwners(redis, prefix, 'sweeper', 60_000);
    await Promise.all([alive.heartbeat(), dying.heartbeat(), sweeper.heartbeat()]);
    await alive.track('call-1', '{"n":1}');
    await dying.track('call-2', '{"n":2}');
    await dying.track('call-3', '{"n":3}');
    await dying.untrack('call-3');
    await sweeper.track('call-4', '{"n":4}');
    // While the dying one's key lives, nothing is an orphan.
    expect(await sweeper.orphans()).toEqual([]);

    await new Promise((r) => setTimeout(r, 400));
    expect(await sweeper.orphans()).toEqual([{ owner: 'dying', callId: 'call-2', record: '{"n":2}' }]);
    // The dying instance sees its own calls as its own, never as orphans.
    expect(await dying.orphans()).toEqual([]);

    await sweeper.release({ owner: 'dying', callId: 'call-2' });
    expect(await sweeper.orphans()).toEqual([]);
    // A dead instance with nothing left is unlisted; one that beats again is listed again.
    expect(await redis.smembers(`${prefix}:calls-to-x:owners`)).not.toContain('dying');
    await dying.heartbeat();
    expect(await redis.smembers(`${prefix}:calls-to-x:owners`)).toContain('dying');
  });
  it('gathers the writes of one turn into one command, and never writes a call tracked and dropped in the same turn', async () => {
    const owners = new CallsToXOwners(redis, prefix, 'batched', 60_000);
    const key = redisKeys(prefix).callsToXOwnerCalls('batched');
    const hset = jest.spyOn(redis, 'hset');
    const hdel = jest.spyOn(redis, 'hdel');
    try {
      await Promise.all([owners.track('a', '{"n":"a"}'), owners.track('b', '{"n":"b"}'), owners.track('c', '{"n":"c"}')]);
      expect(hset).toHaveBeenCalledTimes(1);
      expect(await redis.hgetall(key)).toEqual({ a: '{"n":"a"}', b: '{"n":"b"}', c: '{"n":"c"}' });

      hset.mockClear();
      await Promise.all([owners.track('short', '{"n":"short"}'), owners.untrack('short')]);
      expect(hset).not.toHaveBeenCalled();
      expect(hdel).not.toHaveBeenCalled();

      await Promise.all([owners.untrack('a'), owners.untrack('b'), owners.track('d', '{"n":"d"}')]);
      expect(await redis.hgetall(key)).toEqual({ c: '{"n":"c"}', d: '{"n":"d"}' });
    } finally {
      hset.mockRestore();
      hdel.mockRestore();
    }
  });
});
