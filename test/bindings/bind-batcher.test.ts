/**
 * Group commit of binds (issue 8, item 2): concurrent AXB binds with an allocated X are written
 * in batches, each answered as a single bind would be; a clash in a batch takes out only the
 * bind it concerns; two controller instances binding on one pool at once keep the invariant.
 * Real MariaDB; the shared Redis under a prefix of the suite's own, and a private redis-server
 * for the case where Redis refuses writes.
 */
import type { RowDataPacket } from 'mysql2/promise';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { BindingService, type BindingAdmission } from '../../src/bindings/binding-service';
import type { Binding } from '../../src/domain/binding-rules';
import { numberHasher } from '../../src/domain/number-hash';
import { RateLimitedError } from '../../src/abuse/abuse-guard';
import { BindBatchStore } from '../../src/stores/bind-batch-store';
import { createMysqlPool, type Pool } from '../../src/stores/mysql';
import { createRedis } from '../../src/stores/redis';
import { RouteIndex } from '../../src/stores/route-index';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase, type TestDatabase } from '../support/mysql';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { deletePrefixKeys, TEST_REDIS_URL, testRedisPrefix } from '../support/redis';
import { waitUntil } from '../support/wait';

const HASH_KEY = 'test-number-hash-key-0123456789abcdef';
const xs = (from: number, count: number, area = '010') => Array.from({ length: count }, (_, i) => ({ x: `7001000${String(from + i).padStart(8, '0')}`, area }));
let seq = 0;
const mobile = () => `1382${String(seq++).padStart(7, '0')}`;
const BATCH = { maxBatch: 200, maxInFlight: 2 };

describe('group commit of binds', () => {
  let db: TestDatabase;
  let redis: Redis;
  let prefix: string;
  let routes: RouteIndex;
  let tenants: TenantStore;
  let insertBatch: jest.SpyInstance;

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = createRedis(TEST_REDIS_URL);
    prefix = testRedisPrefix();
    routes = new RouteIndex(redis, prefix, numberHasher(HASH_KEY));
    tenants = new TenantStore(db.pool);
  });
  beforeEach(() => {
    insertBatch = jest.spyOn(BindBatchStore.prototype, 'insertBatch');
  });
  afterEach(() => insertBatch.mockRestore());
  afterAll(async () => {
    await deletePrefixKeys(redis, prefix);
    redis.disconnect();
    await db.drop();
  });

  /** A tenant with its own pool, and a service with group commit over it. */
  const setUp = async (pool: readonly { x: string; area: string }[], admission?: BindingAdmission, on: Pool = db.pool) => {
    const tenantId = (await tenants.create({ name: `t${seq}`, poolQuota: 20_000 })).id;
    const service = new BindingService(on, routes, admission, { routeWriteTimeoutMs: 5000, batch: BATCH });
    await service.importNumbers(tenantId, pool);
    return { tenantId, service };
  };
  const routesTo = async (b: Binding): Promise<boolean> => {
    const [fromA, fromB] = await Promise.all([routes.lookup(b.x, b.a ?? ''), routes.lookup(b.x, b.b)]);
    return 'route' in fromA && fromA.route.target === b.b && 'route' in fromB && fromB.route.target === b.a;
  };
  const count = async (sql: string, params: unknown[] = []): Promise<number> => {
    const [rows] = await db.pool.query<RowDataPacket[]>(sql, params);
    return Number(rows[0]?.n);
  };

  it('writes concurrent binds in few transactions, each answered and routed as a single bind, first fit kept', async () => {
    const { tenantId, service } = await setUp(xs(0, 50));
    // 5 couriers with 8 customers each: a courier's bindings must sit on 8 distinct X, the lowest ones.
    const couriers = Array.from({ length: 5 }, mobile);
    const asks = couriers.flatMap((a) => Array.from({ length: 8 }, () => ({ tenantId, mode: 'axb' as const, a, b: mobile() })));
    const results = await Promise.all(asks.map((ask) => service.bind(ask)));

    expect(results.every((r) => r.created)).toBe(true);
    expect(insertBatch.mock.calls.length).toBeLessThan(asks.length / 4);
    for (const a of couriers) {
      const mine = results.filter((r) => r.binding.a === a).map((r) => r.binding.x).sort();
      expect(mine).toEqual(xs(0, 8).map((n) => n.x));
    }
    for (const { binding } of results) {
      expect(binding).toMatchObject({ tenantId, kind: 'axb', state: 'active', restriction: 'both' });
      expect(await routesTo(binding)).toBe(true);
    }
    // The outbox rows were applied, then dropped (after the answers); every active binding has its two members.
    await waitUntil('the outbox rows dropped', async () => (await count('SELECT COUNT(*) AS n FROM route_outbox WHERE binding_id IN (?)', [results.map((r) => r.binding.id)])) === 0);
    expect(await count('SELECT COUNT(*) AS n FROM binding_members WHERE binding_id IN (?)', [results.map((r) => r.binding.id)])).toBe(2 * asks.length);
    // Read back as stored, with the version the index holds.
    const stored = await service.get(tenantId, results[0]!.binding.id);
    expect(stored).toEqual(results[0]!.binding);
  });

  it('keeps idempotency by requestId: the same request twice in one batch, and again later, is one binding', async () => {
    const { tenantId, service } = await setUp(xs(100, 10));
    const ask = { tenantId, mode: 'axb' as const, a: mobile(), b: mobile(), requestId: `order-${seq}` };
    const [first, second] = await Promise.all([service.bind(ask), service.bind(ask)]);
    expect([first.created, second.created].sort()).toEqual([false, true]);
    expect(second.binding.id).toBe(first.binding.id);
    const again = await service.bind(ask);
    expect(again).toEqual({ binding: first.binding, created: false });
    expect(await count('SELECT COUNT(*) AS n FROM bindings WHERE tenant_id = ? AND request_id = ?', [tenantId, ask.requestId])).toBe(1);
  });

  it('refuses within a batch what a single bind refuses, and only those binds: blacklist, pair limit, abuse control, area', async () => {
    const refusedNumber = mobile();
    const admission: BindingAdmission = {
      admitBinding: async (_tenant, { a }) => {
        if (a === refusedNumber) throw new RateLimitedError('number_binding_rate_limited', 'a has been bound too often', 30, 'a');
      },
      pairBindingsPerHour: async () => 2,
    };
    const { tenantId, service } = await setUp([...xs(200, 5, '010'), ...xs(300, 5, '020')], admission);
    const listed = mobile();
    await service.blacklistAdd(tenantId, listed);
    const [pa, pb] = [mobile(), mobile()];
    const outcomes = await Promise.allSettled([
      service.bind({ tenantId, mode: 'axb', a: mobile(), b: listed }),
      // The same pair three times in one batch against a limit of 2 an hour.
      service.bind({ tenantId, mode: 'axb', a: pa, b: pb }),
      service.bind({ tenantId, mode: 'axb', a: pb, b: pa }),
      service.bind({ tenantId, mode: 'axb', a: pa, b: pb }),
      service.bind({ tenantId, mode: 'axb', a: refusedNumber, b: mobile() }),
      service.bind({ tenantId, mode: 'axb', a: mobile(), b: mobile(), area: '020', strictArea: true }),
      service.bind({ tenantId, mode: 'axb', a: mobile(), b: mobile(), area: '0755', strictArea: true }),
      service.bind({ tenantId, mode: 'axb', a: mobile(), b: mobile(), area: '0755' }),
    ]);
    const codes = outcomes.map((o) => (o.status === 'rejected' ? (o.reason as { code: string }).code : 'created'));
    expect(codes).toEqual([
      'number_blacklisted', 'created', 'created', 'pair_rate_limited', 'number_binding_rate_limited', 'created', 'area_unavailable', 'created',
    ]);
    expect((outcomes[0] as PromiseRejectedResult).reason).toMatchObject({ field: 'b' });
    const inArea = (outcomes[5] as PromiseFulfilledResult<{ binding: Binding }>).value.binding;
    expect(inArea.x).toBe(xs(300, 1)[0]!.x);
    // No area of that name: first fit anywhere.
    expect((outcomes[7] as PromiseFulfilledResult<{ binding: Binding }>).value.binding.x).toBe(xs(200, 1)[0]!.x);
    expect(insertBatch.mock.calls.length).toBeLessThanOrEqual(2);
  });

  it('a member taken meanwhile takes only its own bind out of the batch; the others commit', async () => {
    const { tenantId, service } = await setUp(xs(400, 5));
    const [x1] = xs(400, 1).map((n) => n.x);
    const held = await service.bind({ tenantId, mode: 'axb', a: mobile(), b: mobile() });
    expect(held.binding.x).toBe(x1);
    const store = new BindBatchStore(db.pool);
    const draft = (a: string, b: string) => ({ tenantId, mode: 'axb' as const, a, b, allowList: [], expiresAt: Date.now() + 3_600_000 });
    const now = Date.now();
    const entries = [
      { id: randomUUID(), x: x1!, draft: draft(mobile(), mobile()), now },
      // A is on x1 already (an allocation from a stale view, or a race lost to another controller).
      { id: randomUUID(), x: x1!, draft: draft(held.binding.a!, mobile()), now },
      { id: randomUUID(), x: x1!, draft: draft(mobile(), mobile()), now },
    ];
    const result = await store.insertBatch(entries, now);
    expect([...result.clashed]).toEqual([entries[1]!.id]);
    expect([...result.written.keys()].sort()).toEqual([entries[0]!.id, entries[2]!.id].sort());
    // Nothing of the clashed bind is left behind: no row, no member, no outbox row; the holder is untouched.
    expect(await count('SELECT COUNT(*) AS n FROM bindings WHERE id = ?', [entries[1]!.id])).toBe(0);
    expect(await count('SELECT COUNT(*) AS n FROM route_outbox WHERE binding_id = ?', [entries[1]!.id])).toBe(0);
    expect(await count('SELECT COUNT(*) AS n FROM binding_members WHERE binding_id = ?', [held.binding.id])).toBe(2);
    expect(await count('SELECT COUNT(*) AS n FROM binding_members WHERE binding_id IN (?)', [[entries[0]!.id, entries[2]!.id]])).toBe(4);
    // The written ones have distinct, increasing versions that their rows carry.
    const versions = [...result.written.values()];
    expect(new Set(versions).size).toBe(2);
    expect(await count('SELECT route_version AS n FROM bindings WHERE id = ?', [entries[0]!.id])).toBe(result.written.get(entries[0]!.id));
  });

  it('an XB binding this instance has not seen yet makes the batch go round again, onto another X', async () => {
    const { tenantId, service } = await setUp(xs(500, 5));
    const other = new BindingService(db.pool, routes, undefined, { routeWriteTimeoutMs: 5000, batch: BATCH });
    // The pool view is read now (x1 free) ...
    const warm = await service.bind({ tenantId, mode: 'axb', a: mobile(), b: mobile() });
    const [, x2] = xs(500, 2).map((n) => n.x);
    expect(warm.binding.x).toBe(xs(500, 1)[0]!.x);
    // ... then another controller puts an XB on x2, which this one's cached view does not know.
    await other.bind({ tenantId, mode: 'xb', b: mobile(), x: x2 });
    const [c1, c2] = [mobile(), mobile()];
    // c1 held on x1, so first fit for (c1, c2) looks at x2 next.
    await service.bind({ tenantId, mode: 'axb', a: c1, b: mobile() });
    const placed = await service.bind({ tenantId, mode: 'axb', a: c1, b: c2 });
    expect(placed.created).toBe(true);
    expect(placed.binding.x).not.toBe(x2);
    expect(placed.binding.x).toBe(xs(500, 3)[2]!.x);
    expect(await routesTo(placed.binding)).toBe(true);
  });

  it('ends the expired bindings on the chosen X, so their numbers come back at once', async () => {
    const { tenantId, service } = await setUp(xs(600, 3));
    const [a, b] = [mobile(), mobile()];
    const t0 = Date.now();
    const first = await service.bind({ tenantId, mode: 'axb', a, b, ttlSeconds: 60 }, t0);
    const later = t0 + 61_000;
    const second = await service.bind({ tenantId, mode: 'axb', a, b, ttlSeconds: 60 }, later);
    expect(second.binding.x).toBe(first.binding.x);
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT state FROM bindings WHERE id = ?', [first.binding.id]);
    expect(rows[0]?.state).toBe('expired');
  });

  it('numbers imported a moment ago are allocated at once, in their area, by the instance that imported them', async () => {
    const { tenantId, service } = await setUp(xs(650, 2));
    // The batcher now holds this tenant's pool as it was: no number in 0755.
    await service.bind({ tenantId, mode: 'axb', a: mobile(), b: mobile() });
    const [fresh] = xs(660, 1, '0755');
    await service.importNumbers(tenantId, [fresh!]);
    const placed = await service.bind({ tenantId, mode: 'axb', a: mobile(), b: mobile(), area: '0755', strictArea: true });
    expect(placed.binding.x).toBe(fresh!.x);
    expect(await routesTo(placed.binding)).toBe(true);
  });

  it('two controller instances binding against the same pool at once keep the invariant and first fit', async () => {
    const poolA = createMysqlPool(db.url);
    const poolB = createMysqlPool(db.url);
    try {
      const { tenantId, service: one } = await setUp(xs(700, 60), undefined, poolA);
      const two = new BindingService(poolB, routes, undefined, { routeWriteTimeoutMs: 5000, batch: BATCH });
      // 10 couriers, 12 customers each, binds dealt to both instances alternately, all in flight together.
      const couriers = Array.from({ length: 10 }, mobile);
      const asks = couriers.flatMap((a) => Array.from({ length: 12 }, () => ({ tenantId, mode: 'axb' as const, a, b: mobile() })));
      const results = await Promise.all(asks.map((ask, i) => (i % 2 === 0 ? one : two).bind(ask)));
      expect(results.every((r) => r.created)).toBe(true);
      for (const a of couriers) {
        const mine = results.filter((r) => r.binding.a === a).map((r) => r.binding.x);
        expect(new Set(mine).size).toBe(12);
        // First fit's bound: with Δ = 12, every binding within the first 2Δ-1 numbers.
        for (const x of mine) expect(xs(700, 23).map((n) => n.x)).toContain(x);
      }
      expect(
        await count(
          `SELECT COUNT(*) AS n FROM (SELECT x, n FROM (SELECT x, a AS n FROM bindings WHERE tenant_id = ? AND state = 'active'
             UNION ALL SELECT x, b FROM bindings WHERE tenant_id = ? AND state = 'active') t GROUP BY x, n HAVING COUNT(*) > 1) d`,
          [tenantId, tenantId],
        ),
      ).toBe(0);
      expect(await count("SELECT COUNT(*) AS n FROM bindings WHERE tenant_id = ? AND state = 'active'", [tenantId])).toBe(asks.length);
      for (const { binding } of results) expect(await routesTo(binding)).toBe(true);
    } finally {
      await poolA.end();
      await poolB.end();
    }
  });
});

describe('group commit when Redis refuses writes', () => {
  let redisServer: PrivateRedis;
  let db: TestDatabase;
  let redis: Redis;
  let routes: RouteIndex;

  beforeAll(async () => {
    redisServer = await startPrivateRedis();
    db = await createTestDatabase();
    redis = createRedis(redisServer.url);
    routes = new RouteIndex(redis, testRedisPrefix(), numberHasher(HASH_KEY));
  });
  afterAll(async () => {
    redis?.disconnect();
    await db?.drop();
    await redisServer?.stop();
  });

  it('answers 503 route_index_unavailable for the whole batch; the bindings are committed and route once Redis is back; a retry confirms', async () => {
    const tenantId = (await new TenantStore(db.pool).create({ name: 't' })).id;
    const service = new BindingService(db.pool, routes, undefined, { routeWriteTimeoutMs: 500, batch: BATCH });
    await service.importNumbers(tenantId, xs(0, 10));
    await redisServer.admin.config('SET', 'min-replicas-to-write', '1');
    const asks = Array.from({ length: 6 }, (_, i) => ({ tenantId, mode: 'axb' as const, a: mobile(), b: mobile(), requestId: `r-${i}` }));
    const outcomes = await Promise.allSettled(asks.map((ask) => service.bind(ask)));
    for (const o of outcomes) expect(o).toMatchObject({ status: 'rejected', reason: { code: 'route_index_unavailable' } });
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM route_outbox');
    expect(Number(rows[0]?.n)).toBe(asks.length);

    await redisServer.admin.config('SET', 'min-replicas-to-write', '0');
    expect(await service.applyPendingRoutes()).toBe(asks.length);
    const retried = await Promise.all(asks.map((ask) => service.bind(ask)));
    for (const { binding, created } of retried) {
      expect(created).toBe(false);
      const fromA = await routes.lookup(binding.x, binding.a!);
      expect('route' in fromA && fromA.route.target).toBe(binding.b);
    }
  });
});
