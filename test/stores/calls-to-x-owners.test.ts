import { Redis } from 'ioredis';
import { CallsToXOwners } from '../../src/stores/calls-to-x-owners';
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
});
