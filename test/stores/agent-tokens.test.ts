import { AgentTokenStore } from '../../src/stores/agent-tokens';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase } from '../support/mysql';

describe('agent tokens', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let tokens: AgentTokenStore;
  let tenants: TenantStore;

  beforeAll(async () => {
    db = await createTestDatabase();
    tokens = new AgentTokenStore(db.pool);
    tenants = new TenantStore(db.pool);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('a token signs its agent in until it is revoked or its tenant is disabled; only its hash is stored', async () => {
    const tenant = await tenants.create({ name: 'shop' });
    const { id, token } = await tokens.create(tenant.id, { name: 'Han Meimei', agentNumber: '+86 138-0008-0001' });
    expect(await tokens.authenticate(token)).toMatchObject({ id, tenantId: tenant.id, name: 'Han Meimei', agentNumber: '13800080001', revokedAt: null });
    expect(await tokens.authenticate(`${token}x`)).toBeNull();
    const [rows] = await db.pool.query('SELECT * FROM agent_tokens');
    expect(JSON.stringify(rows)).not.toContain(token);

    await tenants.update(tenant.id, { status: 'disabled' });
    expect(await tokens.authenticate(token)).toBeNull();
    await tenants.update(tenant.id, { status: 'active' });
    await tokens.revoke(tenant.id, id);
    expect(await tokens.authenticate(token)).toBeNull();
    expect((await tokens.list(tenant.id))[0]!.revokedAt).toEqual(expect.any(Number));
  });

  it('refuses a bad agent number with the field, and another tenant cannot revoke the token', async () => {
    const tenant = await tenants.create({ name: 'a' });
    const other = await tenants.create({ name: 'b' });
    await expect(tokens.create(tenant.id, { name: 'x', agentNumber: '123' })).rejects.toMatchObject({ field: 'agentNumber' });
    const { id } = await tokens.create(tenant.id, { name: 'x', agentNumber: '13800080002' });
    await expect(tokens.revoke(other.id, id)).rejects.toMatchObject({ code: 'not_found', kind: 'not_found' });
  });
});
