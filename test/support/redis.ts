import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { keySlot, scanKeys, type RedisClient } from '../../src/stores/redis';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix no other test (or teammate) uses: fixed length, random, so no prefix is a prefix of another. */
export function testRedisPrefix(): string {
  return `ngt${randomBytes(6).toString('hex')}`;
}

/** Deletes every key of this prefix (`<prefix>…` and BullMQ's default `bull:<prefix>…`), nothing else. */
export async function deletePrefixKeys(redis: RedisClient, prefix: string): Promise<number> {
  if (!/^ng[a-z]*[0-9a-f]{8,}$/.test(prefix)) throw new Error(`refusing to delete keys of prefix "${prefix}"`);
  let deleted = 0;
  for (const pattern of [`${prefix}*`, `bull:${prefix}*`]) {
    for await (const keys of scanKeys(redis, pattern)) {
      // One UNLINK per hash slot: a cluster refuses a command over keys of several slots.
      const bySlot = new Map<number, string[]>();
      for (const key of keys) bySlot.set(keySlot(key), [...(bySlot.get(keySlot(key)) ?? []), key]);
      for (const group of bySlot.values()) deleted += await redis.unlink(...group);
    }
  }
  return deleted;
}

export interface TestRedis {
  readonly prefix: string;
  readonly url: string;
  /** A connection fit for BullMQ (maxRetriesPerRequest: null). */
  readonly redis: Redis;
  /** Deletes this prefix's keys and closes the connection. */
  cleanup(): Promise<void>;
}

export async function createTestRedis(): Promise<TestRedis> {
  const prefix = testRedisPrefix();
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null, enableReadyCheck: true });
  return {
    prefix,
    url: TEST_REDIS_URL,
    redis,
    async cleanup() {
      await deletePrefixKeys(redis, prefix);
      redis.disconnect();
    },
  };
}
