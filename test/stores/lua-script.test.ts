import { randomBytes } from 'node:crypto';
import { LuaScript } from '../../src/stores/redis';
import { createTestRedis, type TestRedis } from '../support/redis';

describe('LuaScript (EVALSHA with a NOSCRIPT fallback) on real Redis', () => {
  let t: TestRedis;
  beforeAll(async () => { t = await createTestRedis(); });
  afterAll(async () => { await t.cleanup(); });

  it('runs a script Redis has never seen, loads it, and runs it by digest afterwards', async () => {
    // a script no Redis has cached: the first run must fall back to sending the source
    const script = new LuaScript(`-- ${randomBytes(8).toString('hex')}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])`);
    const key = `${t.prefix}:counter`;
    expect(await t.redis.script('EXISTS', script.sha)).toEqual([0]);
    expect(await script.run(t.redis, [key], [5])).toBe(5);
    expect(await t.redis.script('EXISTS', script.sha)).toEqual([1]);
    expect(await script.run(t.redis, [key], [2])).toBe(7);
  });

  it('passes errors other than NOSCRIPT through', async () => {
    const script = new LuaScript("return redis.call('INCR', KEYS[1])");
    const key = `${t.prefix}:text`;
    await t.redis.set(key, 'not a number');
    await expect(script.run(t.redis, [key], [])).rejects.toThrow(/not an integer/);
  });

  it('runs many items in one call on a single Redis, each item getting its own reply, or the error of its call', async () => {
    const script = new LuaScript(`-- ${randomBytes(8).toString('hex')}
local out = {}
for i = 1, #KEYS do out[i] = {redis.call('INCRBY', KEYS[i], ARGV[i]), #KEYS} end
return out`);
    const items = [1, 2, 3].map((n) => ({ key: `${t.prefix}:grouped:${n}`, by: n * 10 }));
    await t.redis.set(items[0]!.key, '5');
    const replies = await script.runGrouped(t.redis, items, (i) => i.key, (group) => ({ keys: group.map((i) => i.key), args: group.map((i) => i.by) }));
    // Each reply says how many keys its call carried: all three, in one call.
    expect(replies).toEqual([{ value: [15, 3] }, { value: [20, 3] }, { value: [30, 3] }]);

    await t.redis.set(items[1]!.key, 'text');
    const failing = await script.runGrouped(t.redis, items, (i) => i.key, (group) => ({ keys: group.map((i) => i.key), args: group.map((i) => i.by) }));
    expect(failing.map((r) => r.error?.message ?? null)).toEqual([expect.stringMatching(/not an integer/), expect.stringMatching(/not an integer/), expect.stringMatching(/not an integer/)]);
  });
});
