import type { Redis } from 'ioredis';
import { BindingService } from '../../src/bindings/binding-service';
import type { CdrRecord } from '../../src/domain/call';
import { numberHasher } from '../../src/domain/number-hash';
import type { CallOutcome } from '../../src/stores/call-outcome';
import { refusalAttribution } from '../../src/stores/cdr-attribution';
import { createRedis } from '../../src/stores/redis';
import { RouteIndex } from '../../src/stores/route-index';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase } from '../support/mysql';
import { testRedisPrefix } from '../support/redis';
import { makeOutcome } from './fixtures';

const X1 = '700100000071001';
const X2 = '700100000071002';
const X_OTHER = '700100000071009';
const NOBODYS_X = '700100000071099';

/** A call to X that routing could not tie to a binding: no tenant, no binding, result unbound. */
function refused(x: string, caller: string, startedAt: number): CallOutcome {
  return makeOutcome('', { kind: 'axb', x, a: caller, b: '', bindingId: null, result: 'unbound', startedAt, endedAt: startedAt + 1000, talkSeconds: 0 }, false);
}

describe('refusalAttribution: a whole batch of CDRs attributed at once', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let redis: Redis;
  let registry: BindingService;
  let tenant: string;
  let other: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = createRedis('redis://127.0.0.1:6379');
    registry = new BindingService(db.pool, new RouteIndex(redis, testRedisPrefix(), numberHasher('test-number-hash-key-0123456789abcdef')));
    const tenants = new TenantStore(db.pool);
    tenant = (await tenants.create({ name: 'owner' })).id;
    other = (await tenants.create({ name: 'other' })).id;
    await registry.importNumbers(tenant, [{ x: X1, area: '010' }, { x: X2, area: '010' }]);
    await registry.importNumbers(other, [{ x: X_OTHER, area: '010' }]);
  });
  afterAll(async () => {
    await redis?.quit();
    await db?.drop();
  });

  it('gives each refused call the tenant and ended binding it gets alone, in the same order, and leaves the rest as they are', async () => {
    const now = Date.now();
    const { binding: expired } = await registry.bind({ tenantId: tenant, mode: 'axb', a: '13800071001', b: '13900071001', x: X1, ttlSeconds: 60 }, now - 120_000);
    const { binding: unbound } = await registry.bind({ tenantId: tenant, mode: 'axb', a: '13800071002', b: '13900071002', x: X2 }, now - 5000);
    await registry.unbind(tenant, unbound.id, now - 4000);

    const batch: CallOutcome[] = [
      refused(X1, '13800071001', now), // the caller's binding on X1 expired
      makeOutcome(tenant), // a click-to-dial CDR: never touched
      refused(X2, '13900071002', now), // B of a binding that was unbound
      refused(X1, '13700071003', now), // a stranger: X1's tenant, no binding
      refused(X_OTHER, '13800071001', now), // the same caller at another tenant's X: that tenant's, no binding of ours
      refused(NOBODYS_X, '13700071004', now), // X in nobody's pool: no tenant
      makeOutcome(other, { kind: 'axb', x: X1, a: '13800071001', result: 'connected' }, false), // already attributed
      { ...refused(X1, '13800071001', now), cdr: { ...refused(X1, '13800071001', now).cdr, result: 'restricted' } }, // not unbound: tenant only
    ];
    const attribute = refusalAttribution(db.pool);
    const together = await attribute(batch);
    const alone = await Promise.all(batch.map(async (o) => (await attribute([o]))[0]));

    expect(together).toEqual(alone);
    const pick = (c: CdrRecord) => ({ tenantId: c.tenantId, bindingId: c.bindingId, result: c.result, kind: c.kind });
    expect(together.map((o) => pick(o.cdr))).toEqual([
      { tenantId: tenant, bindingId: expired.id, result: 'expired', kind: 'axb' },
      pick(batch[1]!.cdr),
      { tenantId: tenant, bindingId: unbound.id, result: 'unbound', kind: 'axb' },
      { tenantId: tenant, bindingId: null, result: 'unbound', kind: 'axb' },
      { tenantId: other, bindingId: null, result: 'unbound', kind: 'axb' },
      { tenantId: '', bindingId: null, result: 'unbound', kind: 'axb' },
      pick(batch[6]!.cdr),
      { tenantId: tenant, bindingId: null, result: 'restricted', kind: 'axb' },
    ]);
    expect(together[1]).toBe(batch[1]);
    expect(together[6]).toBe(batch[6]);
  });

  it('asks MySQL nothing when no CDR of the batch needs it', async () => {
    const query = jest.spyOn(db.pool, 'query');
    const execute = jest.spyOn(db.pool, 'execute');
    try {
      const batch = [makeOutcome(tenant), makeOutcome(other, { kind: 'axb' }, false)];
      expect(await refusalAttribution(db.pool)(batch)).toBe(batch);
      expect(query).not.toHaveBeenCalled();
      expect(execute).not.toHaveBeenCalled();
    } finally {
      query.mockRestore();
      execute.mockRestore();
    }
  });
});
