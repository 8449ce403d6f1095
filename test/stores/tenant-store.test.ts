import type { RowDataPacket } from 'mysql2/promise';
import { NotFoundError } from '../../src/domain/errors';
import { hashApiKey, TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase, type TestDatabase } from '../support/mysql';

describe('TenantStore', () => {
  let db: TestDatabase;
  let tenants: TenantStore;
  beforeAll(async () => {
    db = await createTestDatabase();
    tenants = new TenantStore(db.pool);
  });
  afterAll(() => db.drop());

  it('creates a tenant with the documented defaults', async () => {
    const t = await tenants.create({ name: 'Acme' });
    expect(t).toMatchObject({
      name: 'Acme',
      status: 'active',
      passthroughAllowed: false,
      poolQuota: 10_000,
      defaultDisplayMode: 'fixed',
      defaultX: null,
      maxAttempts: 1,
      retryDelaySeconds: 60,
      webhookUrl: null,
    });
    expect(Math.abs(t.createdAt - Date.now())).toBeLessThan(5000);
    expect(await tenants.get(t.id)).toEqual(t);
    expect(await tenants.get('nope')).toBeNull();
  });

  it('creates with options and updates a patch', async () => {
    const t = await tenants.create({ name: 'B', passthroughAllowed: false, defaultX: '700123456789012', maxAttempts: 3, retryDelaySeconds: 10 });
    expect(t).toMatchObject({ passthroughAllowed: false, defaultX: '700123456789012', maxAttempts: 3, retryDelaySeconds: 10 });
    const u = await tenants.update(t.id, { defaultDisplayMode: 'passthrough', webhookUrl: 'https://example.com/h', defaultX: null });
    expect(u).toMatchObject({ name: 'B', defaultDisplayMode: 'passthrough', webhookUrl: 'https://example.com/h', defaultX: null, maxAttempts: 3 });
    await expect(tenants.update('missing', { name: 'x' })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('authenticates a good key, and not a wrong, revoked or disabled one', async () => {
    const t = await tenants.create({ name: 'Keys' });
    const { id, key } = await tenants.createApiKey(t.id, 'ci');
    expect(key).toMatch(/^ngk_[0-9A-Za-z]{32}$/);

    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT key_prefix, key_hash FROM api_keys WHERE id = ?', [id]);
    expect(rows[0]).toEqual({ key_prefix: key.slice(0, 8), key_hash: hashApiKey(key) }); // the key itself is not stored

    const auth = await tenants.authenticate(key);
    expect(auth?.id).toBe(t.id);
    expect(auth?.apiKeyId).toBe(id);

    const wrong = key.slice(0, -1) + (key.endsWith('a') ? 'b' : 'a');
    expect(await tenants.authenticate(wrong)).toBeNull();
    expect(await tenants.authenticate('')).toBeNull();
    expect(await tenants.authenticate(hashApiKey(key))).toBeNull();

    const other = await tenants.create({ name: 'Other' });
    await expect(tenants.revokeApiKey(other.id, id)).rejects.toBeInstanceOf(NotFoundError); // not other's key
    expect(await tenants.authenticate(key)).not.toBeNull();

    await tenants.revokeApiKey(t.id, id);
    expect(await tenants.authenticate(key)).toBeNull();
    await tenants.revokeApiKey(t.id, id); // idempotent
    expect((await tenants.listApiKeys(t.id))[0]?.revokedAt).not.toBeNull();

    const second = await tenants.createApiKey(t.id, 'second');
    expect(await tenants.authenticate(second.key)).not.toBeNull();
    await tenants.update(t.id, { status: 'disabled' });
    expect(await tenants.authenticate(second.key)).toBeNull();
  });

  it('makes distinct keys', async () => {
    const t = await tenants.create({ name: 'Many' });
    const keys = await Promise.all([1, 2, 3, 4, 5].map((i) => tenants.createApiKey(t.id, `k${i}`)));
    expect(new Set(keys.map((k) => k.key)).size).toBe(5);
    expect(await tenants.listApiKeys(t.id)).toHaveLength(5);
    await expect(tenants.createApiKey('missing', 'x')).rejects.toBeInstanceOf(NotFoundError);
  });
});
