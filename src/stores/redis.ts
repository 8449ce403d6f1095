import { Redis } from 'ioredis';

export type { Redis } from 'ioredis';

/**
 * A Redis connection for BullMQ and the live call state. `maxRetriesPerRequest: null`
 * is what BullMQ workers require (commands wait for a reconnect instead of failing).
 */
export function createRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true });
}
