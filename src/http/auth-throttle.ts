import { isIPv6 } from 'node:net';
import type { RedisClient } from '../stores/redis';
import { LuaScript } from '../stores/redis';
import { redisKeys } from '../stores/keys';

/**
 * Failed authentications counted per client address (SPEC §7): a bad API key, a bad admin token,
 * a bad agent token or console session. After `maxFailures` within a window (one minute, counted
 * from the first failure) the address gets 429 `too_many_failed_auth` with Retry-After on every
 * authenticated surface until the window ends, and no credential lookup (MySQL) is made for it.
 * Failures of one address never block another, and a success does not reset anyone's count.
 *
 * RedisAuthThrottle shares the counts between every controller on the same Redis (what the app
 * uses); MemoryAuthThrottle keeps them in this process (the default of `buildHttpServer` alone).
 */
export interface AuthFailureThrottle {
  /** Milliseconds until the address may authenticate again; 0 when it may now. */
  blockedFor(address: string): Promise<number>;
  /** Counts one failed authentication from the address. */
  failed(address: string): Promise<void>;
}

export const AUTH_FAILURE_WINDOW_MS = 60_000;

/**
 * The unit counted: an IPv4 address, or the /64 of an IPv6 one (a host is usually given a whole
 * /64, so counting single IPv6 addresses would let one client rotate through millions).
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)?.[1];
  if (mapped) return mapped;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** INCR, with the window's expiry set by the failure that opened it. */
const COUNT_FAILURE = LuaScript.load('count-in-window');

/** {count, ms left}: one round trip. */
const READ_COUNT = LuaScript.load('read-count');

export class RedisAuthThrottle implements AuthFailureThrottle {
  private readonly reading = new Map<string, Promise<number>>();

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    /** Failures allowed per window; 0 turns the throttle off. */
    private readonly maxFailures: number,
    private readonly windowMs: number = AUTH_FAILURE_WINDOW_MS,
  ) {}

  private key(address: string): string {
    return redisKeys(this.prefix).authFailures(clientKey(address));
  }

  /**
   * Requests from one address while its count is being read share that read (sent at most one
   * round trip earlier): a busy client costs one read per round trip, not one per request.
   */
  blockedFor(address: string): Promise<number> {
    if (this.maxFailures <= 0) return Promise.resolve(0);
    const key = this.key(address);
    const pending = this.reading.get(key);
    if (pending) return pending;
    const read = this.read(key).finally(() => this.reading.delete(key));
    this.reading.set(key, read);
    return read;
  }

  private async read(key: string): Promise<number> {
    const [count, ttl] = (await READ_COUNT.run(this.redis, [key], [])) as [number, number];
    if (count < this.maxFailures) return 0;
    return ttl > 0 ? ttl : this.windowMs;
  }

  async failed(address: string): Promise<void> {
    if (this.maxFailures <= 0) return;
    await COUNT_FAILURE.run(this.redis, [this.key(address)], [String(this.windowMs)]);
  }
}

/** One process's counts: bounded, oldest windows dropped first. */
export class MemoryAuthThrottle implements AuthFailureThrottle {
  private readonly windows = new Map<string, { count: number; endsAt: number }>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number = AUTH_FAILURE_WINDOW_MS,
    private readonly maxAddresses: number = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  async blockedFor(address: string): Promise<number> {
    if (this.maxFailures <= 0) return 0;
    const w = this.windows.get(clientKey(address));
    const now = this.now();
    if (!w || w.endsAt <= now || w.count < this.maxFailures) return 0;
    return w.endsAt - now;
  }

  async failed(address: string): Promise<void> {
    if (this.maxFailures <= 0) return;
    const key = clientKey(address);
    const now = this.now();
    const w = this.windows.get(key);
    if (w && w.endsAt > now) {
      w.count++;
      return;
    }
    this.windows.delete(key);
    if (this.windows.size >= this.maxAddresses) {
      for (const [k, v] of this.windows) if (v.endsAt <= now) this.windows.delete(k);
      // Still full: the oldest window (first inserted) goes.
      const oldest = this.windows.keys().next();
      if (this.windows.size >= this.maxAddresses && !oldest.done) this.windows.delete(oldest.value);
    }
    this.windows.set(key, { count: 1, endsAt: now + this.windowMs });
  }
}
