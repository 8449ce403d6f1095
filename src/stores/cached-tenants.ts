import { createHash } from 'node:crypto';
import type { Tenant, TenantStore } from './tenant-store';

/** How long a tenant's call policy may be read from the cache: a change reaches every call within this. */
export const TENANT_POLICY_CACHE_MS = 5000;

/**
 * Tenant settings read on every queued call, cached for a few seconds: a policy change
 * (say, forbidding pass-through) reaches the workers within `ttlMs`, without a MySQL read per call.
 */
export function cachedTenantLookup(tenants: Pick<TenantStore, 'get'>, ttlMs: number): Pick<TenantStore, 'get'> {
  const cache = new Map<string, { tenant: Tenant | null; until: number }>();
  return {
    async get(id: string): Promise<Tenant | null> {
      const now = Date.now();
      const hit = cache.get(id);
      if (hit && hit.until > now) return hit.tenant;
      const tenant = await tenants.get(id);
      if (cache.size > 10_000) cache.clear();
      cache.set(id, { tenant, until: now + ttlMs });
      return tenant;
    },
  };
}

/**
 * A secret (an API key) checked against MySQL once per `ttlMs`, keyed by its hash (the
 * secret itself is never kept). A revoked secret stops working on every instance within `ttlMs`;
 * a refused one is not cached, so a secret created a moment ago works at once.
 */
function cachedWhileValid<T>(check: (secret: string) => Promise<T | null>, ttlMs: number): (secret: string) => Promise<T | null> {
  const cache = new Map<string, { found: T; until: number }>();
  return async (secret) => {
    const now = Date.now();
    const id = createHash('sha256').update(secret).digest('hex');
    const hit = cache.get(id);
    if (hit && hit.until > now) return hit.found;
    const found = await check(secret);
    if (found === null) {
      cache.delete(id);
      return null;
    }
    if (cache.size > 10_000) cache.clear();
    cache.set(id, { found, until: now + ttlMs });
    return found;
  };
}

/** API keys: every API request authenticates, and a MySQL read per request is most of a cheap request's cost. */
export function cachedApiKeyAuth(tenants: Pick<TenantStore, 'authenticate'>, ttlMs: number): Pick<TenantStore, 'authenticate'> {
  return { authenticate: cachedWhileValid((key) => tenants.authenticate(key), ttlMs) };
}
