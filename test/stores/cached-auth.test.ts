import { cachedApiKeyAuth, cachedSigningKeys, cachedTenantLookup } from '../../src/stores/cached-tenants';
import type { AuthenticatedTenant, Tenant } from '../../src/stores/tenant-store';

describe('API-key checks cached for a few seconds', () => {
  const tenant = { id: 't1', apiKeyId: 'k1' } as AuthenticatedTenant;

  function store(valid: Set<string>) {
    const calls: string[] = [];
    return {
      calls,
      async authenticate(key: string) {
        calls.push(key);
        return valid.has(key) ? tenant : null;
      },
    };
  }

  it('a known key is read once per TTL; a revoked key stops working when the TTL ends', async () => {
    const valid = new Set(['good']);
    const backing = store(valid);
    const auth = cachedApiKeyAuth(backing, 50);
    expect(await auth.authenticate('good')).toBe(tenant);
    expect(await auth.authenticate('good')).toBe(tenant);
    expect(backing.calls).toEqual(['good']);
    valid.delete('good');
    // Real time must pass: the 50 ms TTL runs out (the cache reads Date.now()).
    await new Promise((r) => setTimeout(r, 60));
    expect(await auth.authenticate('good')).toBeNull();
    expect(backing.calls).toEqual(['good', 'good']);
  });

  it('requests missing together (cold start, TTL run out under load) share one check', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const calls: string[] = [];
    const auth = cachedApiKeyAuth(
      {
        async authenticate(key: string) {
          calls.push(key);
          await gate;
          return key === 'good' ? tenant : null;
        },
      },
      60_000,
    );
    const burst = [...Array.from({ length: 50 }, () => auth.authenticate('good')), auth.authenticate('bad'), auth.authenticate('bad')];
    release();
    const answers = await Promise.all(burst);
    expect(answers.slice(0, 50).every((t) => t === tenant)).toBe(true);
    expect(answers.slice(50)).toEqual([null, null]);
    expect(calls).toEqual(['good', 'bad']);
    // A refused key shared its check but is still not cached: the next request checks again.
    expect(await auth.authenticate('bad')).toBeNull();
    expect(calls).toEqual(['good', 'bad', 'bad']);
  });

  it('a refused key is not cached: a key created a moment later works at once', async () => {
    const valid = new Set<string>();
    const backing = store(valid);
    const auth = cachedApiKeyAuth(backing, 60_000);
    expect(await auth.authenticate('new')).toBeNull();
    valid.add('new');
    expect(await auth.authenticate('new')).toBe(tenant);
  });
});

describe('what the callback worker reads on every job, cached and shared', () => {
  it('jobs missing the tenant together share one read', async () => {
    const reads: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const tenant = { id: 't1' } as Tenant;
    const lookup = cachedTenantLookup(
      {
        async get(id: string) {
          reads.push(id);
          await gate;
          return tenant;
        },
      },
      60_000,
    );
    const burst = Array.from({ length: 50 }, () => lookup.get('t1'));
    release();
    expect(await Promise.all(burst)).toEqual(Array.from({ length: 50 }, () => tenant));
    expect(reads).toEqual(['t1']);
  });

  it('a signing key is read once per TTL for a burst of jobs; a revoked one stops signing when the TTL ends, an unknown one is not cached', async () => {
    const valid = new Map([['k1', { tenantId: 't1', keyHash: 'h' }]]);
    const reads: string[] = [];
    const keys = cachedSigningKeys(
      {
        async signingKey(keyId: string) {
          reads.push(keyId);
          await new Promise((r) => setImmediate(r));
          return valid.get(keyId) ?? null;
        },
      },
      50,
    );
    const burst = await Promise.all(Array.from({ length: 20 }, () => keys.signingKey('k1')));
    expect(burst.every((k) => k?.tenantId === 't1')).toBe(true);
    expect(await keys.signingKey('k1')).toEqual({ tenantId: 't1', keyHash: 'h' });
    expect(reads).toEqual(['k1']);
    valid.delete('k1');
    await new Promise((r) => setTimeout(r, 60));
    expect(await keys.signingKey('k1')).toBeNull();
    expect(await keys.signingKey('new')).toBeNull();
    valid.set('new', { tenantId: 't1', keyHash: 'h2' });
    expect(await keys.signingKey('new')).toEqual({ tenantId: 't1', keyHash: 'h2' });
    expect(reads).toEqual(['k1', 'k1', 'new', 'new']);
  });
});
