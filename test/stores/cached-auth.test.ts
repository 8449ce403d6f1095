import { cachedApiKeyAuth } from '../../src/stores/cached-tenants';
import type { AuthenticatedTenant } from '../../src/stores/tenant-store';

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

  it('a refused key is not cached: a key created a moment later works at once', async () => {
    const valid = new Set<string>();
    const backing = store(valid);
    const auth = cachedApiKeyAuth(backing, 60_000);
    expect(await auth.authenticate('new')).toBeNull();
    valid.add('new');
    expect(await auth.authenticate('new')).toBe(tenant);
  });
});
