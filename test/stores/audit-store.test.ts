import { AuditStore, BatchedAuditWriter } from '../../src/stores/audit-store';
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

  describe('BatchedAuditWriter', () => {
    const entry = (action: string) => ({ tenantId: 'tw', actor: 'apikey:k', action, target: null, requestId: null, details: null });
    function counted(): { store: AuditStore; inserts: number[] } {
      const store = new AuditStore(db.pool);
      const inserts: number[] = [];
      const appendMany = store.appendMany.bind(store);
      store.appendMany = (batch) => {
        inserts.push(batch.length);
        return appendMany(batch);
      };
      return { store, inserts };
    }

    it('entries appended within the linger go in one INSERT, and each append resolves once stored', async () => {
      const { store, inserts } = counted();
      const writer = new BatchedAuditWriter(store, { lingerMs: 150 });
      const first = writer.append(entry('linger.1'));
      await new Promise((r) => setTimeout(r, 40));
      const second = writer.append(entry('linger.2'));
      await new Promise((r) => setTimeout(r, 40));
      const third = writer.append(entry('linger.3'));
      expect(inserts).toEqual([]);
      await Promise.all([first, second, third]);
      expect(inserts).toEqual([3]);
      expect((await store.list('tw')).map((e) => e.action).filter((a) => a.startsWith('linger.')).sort()).toEqual(['linger.1', 'linger.2', 'linger.3']);
    });

    it('flush writes what lingers at once (a controller stopping does not wait for the linger)', async () => {
      const { store, inserts } = counted();
      const writer = new BatchedAuditWriter(store, { lingerMs: 60_000 });
      void writer.append(entry('flush.1'));
      void writer.append(entry('flush.2'));
      const t0 = Date.now();
      await writer.flush();
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect(inserts).toEqual([2]);
      expect((await store.list('tw')).map((e) => e.action).filter((a) => a.startsWith('flush.')).sort()).toEqual(['flush.1', 'flush.2']);
    });
  });
});
