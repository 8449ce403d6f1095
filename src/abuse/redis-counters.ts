import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LuaScript } from '../stores/redis';

/**
 * Sliding-window limit over several keys at once (one sorted set of admission times per counted
 * number): either every key is under its limit and all are counted, or none is counted and the
 * first key over its limit is named. Atomic, so concurrent requests on several controllers
 * cannot slip past a limit together.
 * KEYS: the counters. ARGV: now (ms), window (ms), a unique member, then one limit per key.
 * Returns {0, 0} when admitted, else {index of the key over its limit (1-based), ms until it frees}.
 */
const TAKE_SLIDING = new LuaScript(`
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[3 + i]) then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    return {i, math.max(1, tonumber(oldest[2]) + window - now)}
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[i], window)
end
return {0, 0}`);

/** Fixed window: INCR, and the window's expiry set by the request that opened it. Returns the count. */
const TAKE_FIXED = new LuaScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`);

/**
 * Distinct parties one number reached within a sliding window (sorted set: party -> last
 * contact), trimmed to threshold + 1 entries so a hot number costs bounded memory. The first
 * time the count exceeds the threshold, the marker (SET NX, one window long) is taken: one flag
 * per number per window, however many controllers see the contacts.
 * KEYS: parties, marker. ARGV: now, window, threshold, party ids...  Returns {count, flagged 0|1}.
 */
const NOTE_PARTIES = new LuaScript(`
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local threshold = tonumber(ARGV[3])
for i = 4, #ARGV do redis.call('ZADD', KEYS[1], now, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(threshold + 2))
redis.call('PEXPIRE', KEYS[1], window)
local n = redis.call('ZCARD', KEYS[1])
if n > threshold and redis.call('SET', KEYS[2], '1', 'NX', 'PX', window) then return {n, 1} end
return {n, 0}`);

export interface CountedKey {
  readonly key: string;
  readonly limit: number;
}

export type TakeResult = { readonly admitted: true } | { readonly admitted: false; readonly index: number; readonly retryAfterMs: number };

export class RedisAbuseCounters {
  constructor(private readonly redis: Redis) {}

  /** Counts one event on every key if all are under their limits within `windowMs`; otherwise counts nothing. */
  async takeSliding(keys: readonly CountedKey[], windowMs: number, now: number): Promise<TakeResult> {
    if (keys.length === 0) return { admitted: true };
    const reply = (await TAKE_SLIDING.run(
      this.redis,
      keys.map((k) => k.key),
      [String(now), String(windowMs), `${now}:${randomUUID()}`, ...keys.map((k) => String(k.limit))],
    )) as [number, number];
    const [index, retryAfterMs] = reply;
    return index === 0 ? { admitted: true } : { admitted: false, index: index - 1, retryAfterMs };
  }

  /** One event in a fixed window (the key names the window; it expires `ttlMs` after its first event); `count` includes it. */
  async takeFixed(key: string, ttlMs: number): Promise<{ count: number }> {
    const count = (await TAKE_FIXED.run(this.redis, [key], [String(ttlMs)])) as number;
    return { count };
  }

  /** Notes contacts with `parties`; `flagged` is true for exactly one call per window once the threshold is passed. */
  async noteParties(
    partiesKey: string,
    markerKey: string,
    parties: readonly string[],
    threshold: number,
    windowMs: number,
    now: number,
  ): Promise<{ distinct: number; flagged: boolean }> {
    const [distinct, flagged] = (await NOTE_PARTIES.run(
      this.redis,
      [partiesKey, markerKey],
      [String(now), String(windowMs), String(threshold), ...parties],
    )) as [number, number];
    return { distinct, flagged: flagged === 1 };
  }
}
