import { createHash } from 'node:crypto';
import type { Tenant, TenantStore } from './tenant-store';

/** How long a tenant's call policy may be read from the cache: a change reaches every call within this. */
export const TENANT_POLICY_CACHE_MS = 5000;

/**
 * Tenant settings read on every queued call, cached for a few seconds: a policy change
 * (say, forbidding pass-through) reaches the workers within `ttlMs`, without a MySQL read per call.
 * Jobs that miss together share one read (a burst of a tenant's calls is one query, not one each).
 */
export function cachedTenantLookup(tenants: Pick<TenantStore, 'get'>, ttlMs: number): Pick<TenantStore, 'get'> {
  const read = sharedReads((id: string) => tenants.get(id));
  const cache = new Map<string, { tenant: Tenant | null; until: number }>();
  return {
    async get(id: string): Promise<Tenant | null> {
      const now = Date.now();
      const hit = cache.get(id);
      if (hit && hit.until > now) return hit.tenant;
      const tenant = await read(id);
      if (cache.size > 10_000) cache.clear();
      cache.set(id, { tenant, until: now + ttlMs });
      return tenant;
    },
  };
}

/** One read in flight per key: callers asking for a key already being read wait for that read. */
function sharedReads<T>(read: (key: string) => Promise<T>): (key: string) => Promise<T> {
  const inFlight = new Map<string, Promise<T>>();
  return (key) => {
    const pending = inFlight.get(key);
    if (pending) return pending;
    const started = read(key).finally(() => inFlight.delete(key));
    inFlight.set(key, started);
    return started;
  };
}

/**
 * A secret (an API key) checked against MySQL once per `ttlMs`, keyed by its hash (the
 * secret itself is never kept). Requests missing together (a cold start, the TTL running out
 * under load) share one check. A revoked secret stops working on every instance within `ttlMs`;
 * a refused one is not cached, so a secret created a moment ago works at once.
 */
function cachedWhileValid<T>(check: (secret: string) => Promise<T | null>, ttlMs: number): (secret: string) => Promise<T | null> {
  const cache = new Map<string, { found: T; until: number }>();
  const inFlight = new Map<string, Promise<T | null>>();
  const checkAndKeep = async (id: string, secret: string): Promise<T | null> => {
    const startedAt = Date.now();
    const found = await check(secret);
    if (found === null) {
      cache.delete(id);
      return null;
    }
    if (cache.size > 10_000) cache.clear();
    cache.set(id, { found, until: startedAt + ttlMs });
    return found;
  };
  return async (secret) => {
    const id = createHash('sha256').update(secret).digest('hex');
    const hit = cache.get(id);
    if (hit && hit.until > Date.now()) return hit.found;
    const pending = inFlight.get(id);
    if (pending) return pending;
    const started = checkAndKeep(id, secret).finally(() => inFlight.delete(id));
    inFlight.set(id, started);
    return started;
  };
}

/** API keys: every API request authenticates, and a MySQL read per request is most of a cheap request's cost. */
export function cachedApiKeyAuth(tenants: Pick<TenantStore, 'authenticate'>, ttlMs: number): Pick<TenantStore, 'authenticate'> {
  return { authenticate: cachedWhileValid((key) => tenants.authenticate(key), ttlMs) };
}

/**
 * The keys that sign jobs queued directly, for the callback worker: read once per `ttlMs` per key id
 * (concurrent jobs share one read, as API keys do), so a revoked key stops signing new calls within `ttlMs`, as it
 * stops authenticating API requests (cachedApiKeyAuth); an unknown or revoked key is not cached.
 */
export function cachedSigningKeys(tenants: Pick<TenantStore, 'signingKey'>, ttlMs: number): Pick<TenantStore, 'signingKey'> {
  return { signingKey: cachedWhileValid((keyId) => tenants.signingKey(keyId), ttlMs) };
}
