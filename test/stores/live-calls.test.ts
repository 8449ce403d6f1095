import { createRedis } from '../../src/stores/redis';
import { LiveCallStore } from '../../src/stores/live-calls';
import { redisKeys } from '../../src/stores/keys';
import { createTestRedis, TEST_REDIS_URL, type TestRedis } from '../support/redis';
import { waitUntil } from '../support/wait';

/** A live call's write carries what it reports and reads the cancel flag: one round trip for the three. */
describe('LiveCallStore.update', () => {
  let t: TestRedis;
  beforeAll(async () => {
    t = await createTestRedis();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('writes the fields, publishes each message on its channel in order, and answers whether a cancel was requested', async () => {
    const live = new LiveCallStore(t.redis, t.prefix);
    const key = redisKeys(t.prefix).liveCall('call-1');
    const subscriber = createRedis(TEST_REDIS_URL);
    const channel = redisKeys(t.prefix).tenantEvents('tenant-1');
    const received: string[] = [];
    subscriber.on('message', (ch: string, message: string) => ch === channel && received.push(message));
    await subscriber.subscribe(channel);
    try {
      expect(await live.update('call-1', { state: 'bridged', bAnswerAt: 1234 }, [[channel, 'first'], [channel, 'second']])).toBe(false);
      await waitUntil('both messages', () => received.length === 2);
      expect(received).toEqual(['first', 'second']);
      expect(await live.get('call-1')).toMatchObject({ state: 'bridged', bAnswerAt: 1234, cancelRequested: false });
      expect(await t.redis.ttl(key)).toBeGreaterThan(0);

      await live.requestCancel('call-1');
      expect(await live.update('call-1', { bRingAt: 1000 })).toBe(true);
      expect(await live.update('call-1', {}, [[channel, 'third']])).toBe(true);
      await waitUntil('the third message', () => received.length === 3);
      expect(await live.get('call-1')).toMatchObject({ state: 'bridged', bRingAt: 1000, cancelRequested: true });
    } finally {
      await subscriber.quit();
    }
  });
});
