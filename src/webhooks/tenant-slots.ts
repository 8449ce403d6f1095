import type { RedisClient } from '../stores/redis';
import { LuaScript } from '../stores/redis';
import { redisKeys } from '../stores/keys';

/**
 * How many deliveries of one tenant may be in flight at once, across every controller. One
 * tenant's slow or hanging endpoint then holds at most its share of the worker pool, and the
 * other tenants' deliveries keep flowing through the rest.
 */
export interface TenantSlots {
  /** Takes one of the tenant's slots for `holder`; false when all are taken. */
  acquire(tenantId: string, holder: string): Promise<boolean>;
  release(tenantId: string, holder: string): Promise<void>;
}

/**
 * Leases in a sorted set per tenant (holder -> expiry, by the Redis clock so controllers' clocks
 * need not agree). Expired leases are dropped before counting, so the slots of a controller that
 * died mid-delivery come back after `leaseMs`, and the key itself expires with its last lease.
 * KEYS: the tenant's set. ARGV: lease ms, limit, holder. Returns 1 when taken, 0 when full.
 */
const ACQUIRE = LuaScript.load('acquire-lease');

export class RedisTenantSlots implements TenantSlots {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    /** Slots per tenant. */
    readonly limit: number,
    /** How long a taken slot is held at most: longer than one attempt can last. */
    readonly leaseMs: number,
  ) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error('the per-tenant webhook limit must be a positive integer');
    if (!Number.isInteger(leaseMs) || leaseMs < 1) throw new Error('the webhook slot lease must be a positive integer of ms');
  }

  private key(tenantId: string): string {
    return redisKeys(this.prefix).webhookTenantSlots(tenantId);
  }

  async acquire(tenantId: string, holder: string): Promise<boolean> {
    return Number(await ACQUIRE.run(this.redis, [this.key(tenantId)], [this.leaseMs, this.limit, holder])) === 1;
  }

  async release(tenantId: string, holder: string): Promise<void> {
    await this.redis.zrem(this.key(tenantId), holder);
  }

  /** Slots held now (expired leases not counted). */
  async inFlight(tenantId: string): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    return this.redis.zcount(this.key(tenantId), `(${Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)}`, '+inf');
  }
}
