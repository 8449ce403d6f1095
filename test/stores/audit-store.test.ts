import { AuditStore } from '../../src/stores/audit-store';
import { createTestDatabase, type TestDatabase } from '../support/mysql';

describe('AuditStore', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  it('appends and lists a tenant\'s entries newest first, only that tenant\'s', async () => {
    const audit = new AuditStore(db.pool);
    await audit.append({ tenantId: 't1', actor: 'apikey:k1', action: 'binding.create', target: 'binding:1', requestId: 'r1', details: { ttl: 60 } });
    await audit.append({ tenantId: 't1', actor: 'apikey:k1', action: 'binding.unbind', target: 'binding:1' });
    await audit.append({ tenantId: 't2', actor: 'cli:root', action: 'tenant.update' });
    await audit.append({ tenantId: null, actor: 'cli:root', action: 'tenant.create' });
    const list = await audit.list('t1', { limit: 10 });
    expect(list.map((e) => e.action)).toEqual(['binding.unbind', 'binding.create']);
    expect(list[1]).toMatchObject({ tenantId: 't1', actor: 'apikey:k1', target: 'binding:1', requestId: 'r1', details: { ttl: 60 } });
    expect(list[0]?.details).toBeNull();
    expect(await audit.list('t1', { limit: 1 })).toHaveLength(1);
    expect((await audit.list('t2')).map((e) => e.action)).toEqual(['tenant.update']);
  });
});
