import { randomUUID } from 'node:crypto';
import { WebhookStore, type DeliveryInput } from '../../src/webhooks/webhook-store';
import { createTestDatabase, type TestDatabase } from '../support/mysql';

const DAY = 86_400_000;

describe('webhook delivery log retention (real MariaDB)', () => {
  let db: TestDatabase;
  beforeAll(async () => { db = await createTestDatabase(); });
  afterAll(() => db.drop());

  const attempt = (tenantId: string, at: number, eventId = randomUUID()): DeliveryInput => ({
    tenantId, eventId, eventType: 'call.completed', url: 'https://example.com/hook', attempt: 1,
    status: 'delivered', httpStatus: 200, error: null, durationMs: 12, at,
  });

  it('deletes every tenant\'s attempts older than the cut-off, in batches, and keeps the newer ones', async () => {
    const store = new WebhookStore(db.pool);
    const now = Date.now();
    const kept = { t1: randomUUID(), t2: randomUUID() };
    for (const tenant of ['t1', 't2'] as const) {
      for (let i = 0; i < 7; i++) await store.recordDelivery(attempt(tenant, now - 40 * DAY - i * 1000));
      await store.recordDelivery(attempt(tenant, now - 29 * DAY, kept[tenant]));
      await store.recordDelivery(attempt(tenant, now - 1000));
    }
    // batches of 3 must keep going until all 14 old rows are gone
    expect(await store.pruneDeliveries(now - 30 * DAY, 3)).toBe(14);
    for (const tenant of ['t1', 't2'] as const) {
      const { items } = await store.listDeliveries(tenant, { limit: 50 });
      expect(items).toHaveLength(2);
      expect(items.map((d) => d.eventId)).toContain(kept[tenant]);
    }
    expect(await store.pruneDeliveries(now - 30 * DAY, 3)).toBe(0);
  });
});
