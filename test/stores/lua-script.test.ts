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
});
