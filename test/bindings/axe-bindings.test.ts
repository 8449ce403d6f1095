/**
 * AXE bindings (X plus an extension, issue #10 item 1). The invariant (an extension is unique on its
 * X among active bindings) is stated once in src/domain/binding-rules.ts next to reuseClash; one table
 * of cases holds the pure rule, MariaDB (through the registry) and the Redis route index to it.
 * Then allocation (pure, and asked of MySQL), the tenant's length, and the index never routing an
 * unbound AXE binding.
 */
import type { Redis } from 'ioredis';
import type { RowDataPacket } from 'mysql2/promise';
import { extensionCapacity, extensionMember, membersOf, parseExtension, reuseClash, XB_HOLD, type BindingMode } from '../../src/domain/binding-rules';
import { numberHasher } from '../../src/domain/number-hash';
import { extensionsHeld, firstFitWithExtension, freeExtension, type PoolNumberOccupancy } from '../../src/domain/pool';
import { BindingService } from '../../src/bindings/binding-service';
import { redisKeys } from '../../src/stores/keys';
import { createRedis } from '../../src/stores/redis';
import { RouteIndex } from '../../src/stores/route-index';
import { activeBindingsFor, activeBindingsForExtension, RouteLookup } from '../../src/stores/route-lookup';
import { TenantStore } from '../../src/stores/tenant-store';
import { createLogger } from '../../src/logger';
import { createTestDatabase, type TestDatabase } from '../support/mysql';
import { deletePrefixKeys, testRedisPrefix, TEST_REDIS_URL } from '../support/redis';

const HASH_KEY = 'test-number-hash-key-0123456789abcdef';

interface Bind {
  readonly mode: BindingMode;
  readonly a?: string;
  readonly b: string;
  readonly extension?: string;
}
const n = (i: number) => `1390000${String(i).padStart(4, '0')}`;
const axe = (extension: string, b: number, a?: number): Bind => ({ mode: 'axe', extension, b: n(b), ...(a === undefined ? {} : { a: n(a) }) });
const axb = (a: number, b: number): Bind => ({ mode: 'axb', a: n(a), b: n(b) });
const xb = (b: number): Bind => ({ mode: 'xb', b: n(b) });

/** On one X: what it holds, what is added, and whether the invariant lets it in. */
const AXE_CASES: ReadonlyArray<readonly [string, readonly Bind[], Bind, boolean]> = [
  ['an empty X takes an AXE binding', [], axe('1234', 1), true],
  ['two extensions on one X', [axe('1234', 1)], axe('5678', 2), true],
  ['one extension twice on one X', [axe('1234', 1)], axe('1234', 2), false],
  ['one extension twice, with A', [axe('1234', 1, 9)], axe('1234', 2, 8), false],
  ['B alone on two extensions of one X', [axe('1234', 1)], axe('5678', 1), true],
  ['B with A on two extensions of one X (B would reach two As)', [axe('1234', 1, 9)], axe('5678', 1, 8), false],
  ['one A on many extensions of one X', [axe('1234', 1, 9)], axe('5678', 2, 9), true],
  ['an AXE binding beside an AXB pair', [axb(5, 6)], axe('1234', 1, 9), true],
  ['an AXE binding whose B is in an AXB pair on X, with A', [axb(5, 1)], axe('1234', 1, 9), false],
  ['an AXE binding whose B is in an AXB pair on X, without A', [axb(5, 1)], axe('1234', 1), true],
  ['an AXB pair with the B of an AXE binding with A', [axe('1234', 1, 9)], axb(1, 7), false],
  ['an AXE binding on an XB X', [xb(3)], axe('1234', 1), false],
  ['an XB on an X that carries extensions', [axe('1234', 1)], xb(3), false],
];

const members = (b: Bind) => membersOf(b.mode, b.a ?? null, b.b, b.extension ?? null);

describe('the AXE invariant: one table, the pure rule, MariaDB and the route index', () => {
  let db: TestDatabase;
  let redis: Redis;
  let prefix: string;
  let routes: RouteIndex;
  let registry: BindingService;
  let tenant: string;
  const xOf = (i: number) => `7001000${String(9300 + i).padStart(8, '0')}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = createRedis(TEST_REDIS_URL);
    prefix = testRedisPrefix();
    routes = new RouteIndex(redis, prefix, numberHasher(HASH_KEY));
    registry = new BindingService(db.pool, routes);
    tenant = (await new TenantStore(db.pool).create({ name: 't' })).id;
    await registry.importNumbers(tenant, AXE_CASES.map((_, i) => ({ x: xOf(i), area: '010' })));
  });
  afterAll(async () => {
    await deletePrefixKeys(redis, prefix);
    redis.disconnect();
    await db?.drop();
  });

  it.each(AXE_CASES.map(([name, held, adding, fits], i) => ({ name, held, adding, fits, i })))('$name (fits: $fits)', async ({ held, adding, fits, i }) => {
    // The rule.
    expect(reuseClash(new Set(held.flatMap(members)), members(adding)) === null).toBe(fits);
    // MariaDB, through the registry's SQL path on an X of its own.
    const x = xOf(i);
    const heldIds = [];
    for (const h of held) heldIds.push((await registry.bind({ tenantId: tenant, ...h, x })).binding.id);
    const attempt = registry.bind({ tenantId: tenant, ...adding, x });
    if (fits) await expect(attempt).resolves.toMatchObject({ created: true, binding: { x, extension: adding.extension ?? null } });
    else await expect(attempt).rejects.toMatchObject({ code: 'binding_conflict' });
    // The route index: a keyed extension reaches the one binding MySQL let hold it, or nobody.
    if (adding.extension !== undefined) {
      const holder = fits ? adding : held.find((h) => h.extension === adding.extension);
      const keyed = await routes.lookupExtension(x, adding.extension);
      if (holder) expect(keyed).toMatchObject({ route: { target: holder.b, kind: 'axe', callerRole: 'any' } });
      else expect(keyed).toEqual({ refused: 'wrong_extension' });
    }
    // And B (with A) dialling X reaches the A of the binding that holds (X, B).
    const bHolder = [...held, ...(fits ? [adding] : [])].find((h) => h.mode === 'axe' && h.a !== undefined && h.b === adding.b);
    if (bHolder?.a !== undefined) expect(await routes.lookup(x, adding.b)).toMatchObject({ route: { target: bHolder.a, callerRole: 'b', kind: 'axe' } });
  });
});

describe('AXE allocation (pure)', () => {
  const occupancy = (x: string, area: string, held: readonly string[]): PoolNumberOccupancy => ({ x, area, held: new Set(held) });

  it('draws a free extension at random, then the next free one up, wrapping; null when all 10^n are held', () => {
    expect(freeExtension(new Set(), 4, () => 0.5)).toBe('5000');
    expect(freeExtension(new Set([extensionMember('5000'), extensionMember('5001')]), 4, () => 0.5)).toBe('5002');
    expect(freeExtension(new Set([extensionMember('999')]), 3, () => 0.9999)).toBe('000');
    const full = new Set(Array.from({ length: 1000 }, (_, i) => extensionMember(String(i).padStart(3, '0'))));
    expect(freeExtension(full, 3)).toBeNull();
    expect(extensionsHeld(new Set([...full, '13900000001', XB_HOLD]))).toBe(1000);
    expect(extensionCapacity(3)).toBe(1000);
  });

  it('first fit packs extensions onto the lowest X of the area until its 10^n are taken', () => {
    const full = Array.from({ length: 1000 }, (_, i) => extensionMember(String(i).padStart(3, '0')));
    const pool = [
      occupancy('700100000000001', '020', []),
      occupancy('700100000000002', '010', full),
      occupancy('700100000000003', '010', [XB_HOLD, '13900000009']),
      occupancy('700100000000004', '010', ['13900000001', extensionMember('123')]),
      occupancy('700100000000005', '010', [extensionMember('123')]),
    ];
    // Full, XB-held, and (with A) already carrying B are skipped; the area is kept.
    expect(firstFitWithExtension(pool, { a: '13800000001', b: '13900000001' }, 3, '010', 3)).toEqual(['700100000000005']);
    // Without A, B holds nothing on X: the X carrying B as another binding's member is fine.
    expect(firstFitWithExtension(pool, { a: null, b: '13900000001' }, 3, '010', 3)).toEqual(['700100000000004', '700100000000005']);
    expect(firstFitWithExtension(pool, { a: null, b: '13900000001' }, 3, undefined, 1)).toEqual(['700100000000001']);
  });

  it('an extension is exactly the tenant length in digits', () => {
    expect(parseExtension('0042', 4)).toBe('0042');
    for (const bad of ['042', '00421', '12a4', ' 1234', '']) expect(() => parseExtension(bad, 4)).toThrow(expect.objectContaining({ code: 'invalid_extension' }));
  });
});

describe('AXE bindings in MariaDB and the route index', () => {
  let db: TestDatabase;
  let redis: Redis;
  let prefix: string;
  let routes: RouteIndex;
  let registry: BindingService;
  let tenant: string;
  const xOf = (i: number) => `7001000${String(9400 + i).padStart(8, '0')}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = createRedis(TEST_REDIS_URL);
    prefix = testRedisPrefix();
    routes = new RouteIndex(redis, prefix, numberHasher(HASH_KEY));
    registry = new BindingService(db.pool, routes);
    tenant = (await new TenantStore(db.pool).create({ name: 't' })).id;
    await registry.importNumbers(tenant, [
      ...[0, 1, 2].map((i) => ({ x: xOf(i), area: '020' })),
      ...[3, 4, 5, 6, 7, 8, 9].map((i) => ({ x: xOf(i), area: '010' })),
    ]);
  });
  afterAll(async () => {
    await deletePrefixKeys(redis, prefix);
    redis.disconnect();
    await db?.drop();
  });

  it('allocation packs AXE bindings onto the lowest X of the area, each with its own extension of the tenant length', async () => {
    const made = [];
    for (let i = 0; i < 30; i++) made.push((await registry.bind({ tenantId: tenant, mode: 'axe', b: n(100 + i), area: '010' })).binding);
    expect(new Set(made.map((b) => b.x))).toEqual(new Set([xOf(3)]));
    expect(new Set(made.map((b) => b.extension)).size).toBe(30);
    for (const b of made) expect(b.extension).toMatch(/^\d{4}$/);
    // With A, B holds (X, B): a second AXE binding of that B with A goes to the next X.
    const first = (await registry.bind({ tenantId: tenant, mode: 'axe', a: n(1), b: n(100), area: '010' })).binding;
    expect(first.x).toBe(xOf(3));
    const second = (await registry.bind({ tenantId: tenant, mode: 'axe', a: n(2), b: n(100), area: '010' })).binding;
    expect(second.x).toBe(xOf(4));
    await expect(registry.bind({ tenantId: tenant, mode: 'axe', b: n(200), area: '0755', strictArea: true })).rejects.toMatchObject({ code: 'area_unavailable' });
  });

  it('a named extension taken on a named X is a conflict on the extension; a wrong length is invalid', async () => {
    const x = xOf(0);
    await registry.bind({ tenantId: tenant, mode: 'axe', b: n(300), x, extension: '0001' });
    await expect(registry.bind({ tenantId: tenant, mode: 'axe', b: n(301), x, extension: '0001' })).rejects.toMatchObject({ code: 'binding_conflict', field: 'extension' });
    await expect(registry.bind({ tenantId: tenant, mode: 'axe', b: n(301), x, extension: '001' })).rejects.toMatchObject({ code: 'invalid_extension', field: 'extension' });
    await expect(registry.bind({ tenantId: tenant, mode: 'axb', a: n(1), b: n(301), x, extension: '0002' })).rejects.toMatchObject({ code: 'unknown_field' });
  });

  it('one X carries 10^n: the 1,001st three-digit extension goes to the next X (allocation), or is refused (named X)', async () => {
    const other = (await new TenantStore(db.pool).create({ name: 'small' })).id;
    await registry.importNumbers(other, [{ x: xOf(20), area: '021' }, { x: xOf(21), area: '021' }]);
    await registry.axe.setExtensionLength(other, 3);
    // Fill X's 1,000 extensions straight in MariaDB (the bindings' own tables), then bind through the registry.
    const expires = new Date(Date.now() + 3600_000);
    const rows = Array.from({ length: 1000 }, (_, i) => [`00000000-0000-4000-a000-${String(i).padStart(12, '0')}`, other, 'axe', xOf(20), n(1000 + i), String(i).padStart(3, '0'), expires]);
    await db.pool.query('INSERT INTO bindings (id, tenant_id, kind, x, b, extension, expires_at) VALUES ?', [rows]);
    await db.pool.query('INSERT INTO binding_members (x, number, binding_id, expires_at) VALUES ?', [
      rows.map((r) => [xOf(20), extensionMember(String(r[5])), r[0], expires]),
    ]);
    await expect(registry.bind({ tenantId: other, mode: 'axe', b: n(2999), x: xOf(20) })).rejects.toMatchObject({ code: 'no_extension_available' });
    const next = (await registry.bind({ tenantId: other, mode: 'axe', b: n(2999), area: '021' })).binding;
    expect(next).toMatchObject({ x: xOf(21) });
    expect(next.extension).toMatch(/^\d{3}$/);
  });

  it('MariaDB keeps one extension length per X, and the tenant length changes only without active AXE bindings', async () => {
    const other = (await new TenantStore(db.pool).create({ name: 'lengths' })).id;
    await registry.importNumbers(other, [{ x: xOf(30), area: '021' }]);
    expect(await registry.axe.extensionLength(other)).toBe(4);
    await expect(registry.axe.setExtensionLength(other, 7)).rejects.toMatchObject({ code: 'invalid_extension_length' });
    const bound = (await registry.bind({ tenantId: other, mode: 'axe', b: n(400), x: xOf(30) })).binding;
    await expect(registry.axe.setExtensionLength(other, 5)).rejects.toMatchObject({ code: 'axe_bindings_active' });
    // Whatever a writer does, the database refuses a second length on one X.
    await expect(
      db.pool.query("INSERT INTO binding_members (x, number, binding_id, expires_at) VALUES (?, '#12345', 'someone-else', NOW() + INTERVAL 1 HOUR)", [xOf(30)]),
    ).rejects.toMatchObject({ errno: 1644 });
    await expect(
      db.pool.query("INSERT INTO bindings (id, tenant_id, kind, x, b, extension, expires_at) VALUES ('bad-ext', ?, 'axe', ?, ?, '12a4', NOW())", [other, xOf(30), n(401)]),
    ).rejects.toMatchObject({ errno: 4025 }); // MariaDB's ER_CONSTRAINT_FAILED: the CHECK of migration 045
    await registry.unbind(other, bound.id);
    expect(await registry.axe.setExtensionLength(other, 5)).toBe(5);
    expect((await registry.bind({ tenantId: other, mode: 'axe', b: n(400), x: xOf(30) })).binding.extension).toMatch(/^\d{5}$/);
  });

  it('an unbound or expired AXE binding never routes; an update moves B’s routes; the caller is asked for the X’s length', async () => {
    const x = xOf(1);
    const { binding } = await registry.bind({ tenantId: tenant, mode: 'axe', a: n(500), b: n(501), x, extension: '4321', userData: 'order 7' });
    expect(await routes.lookup(x, n(777))).toEqual({ extension: expect.objectContaining({ tenantId: tenant, extensionLength: 4 }) });
    expect(await routes.lookupExtension(x, '4321')).toMatchObject({ route: { bindingId: binding.id, target: n(501), userData: 'order 7' } });
    expect(await routes.lookup(x, n(501))).toMatchObject({ route: { target: n(500) } });
    // A holds no route of its own: A is asked for the extension like anyone.
    expect(await routes.lookup(x, n(500))).toMatchObject({ extension: { extensionLength: 4 } });

    const updated = await registry.update(tenant, binding.id, { b: n(502), a: n(503) }, 'test');
    expect(updated).toMatchObject({ extension: '4321', b: n(502), a: n(503) });
    expect(await routes.lookupExtension(x, '4321')).toMatchObject({ route: { target: n(502) } });
    expect(await routes.lookup(x, n(501))).toMatchObject({ extension: expect.anything() });
    expect(await routes.lookup(x, n(502))).toMatchObject({ route: { target: n(503) } });

    await registry.unbind(tenant, binding.id);
    expect(await routes.lookupExtension(x, '4321')).toEqual({ refused: 'wrong_extension' });
    expect(await routes.lookup(x, n(502))).not.toHaveProperty('route');
    // The extension is free again at once.
    expect((await registry.bind({ tenantId: tenant, mode: 'axe', b: n(504), x, extension: '4321' })).binding.extension).toBe('4321');

    const expired = (await registry.bind({ tenantId: tenant, mode: 'axe', b: n(505), x: xOf(2), extension: '1111', ttlSeconds: 60 }, Date.now() - 59_500)).binding;
    expect(await routes.lookupExtension(xOf(2), '1111')).toMatchObject({ route: { bindingId: expired.id } });
    await new Promise((r) => setTimeout(r, 600));
    expect(await routes.lookupExtension(xOf(2), '1111')).toEqual({ refused: 'wrong_extension' });
  });

  it('a binding that only lets B call refuses whoever keys its extension', async () => {
    await registry.bind({ tenantId: tenant, mode: 'axe', a: n(600), b: n(601), x: xOf(5), extension: '2222', restriction: 'b_to_a' });
    expect(await routes.lookupExtension(xOf(5), '2222')).toMatchObject({ refused: 'restricted' });
    expect(await routes.lookup(xOf(5), n(601))).toMatchObject({ route: { target: n(600) } });
  });

  it('after Redis loses the index, MySQL answers while it is rebuilt, and the rebuild and reconcile bring extensions and markers back', async () => {
    const x = xOf(6);
    const { binding } = await registry.bind({ tenantId: tenant, mode: 'axe', a: n(700), b: n(701), x, extension: '3333' });
    const gone = (await registry.bind({ tenantId: tenant, mode: 'axe', b: n(702), x, extension: '4444' })).binding;
    await registry.unbind(tenant, gone.id);
    await deletePrefixKeys(redis, prefix);
    const lookup = new RouteLookup({
      index: routes,
      listActive: () => registry.listActive(),
      activeFor: activeBindingsFor(db.pool),
      activeForExtension: activeBindingsForExtension(db.pool),
      logger: createLogger('silent'),
    });
    // Decided from MySQL by the index's own rules (the rebuild runs meanwhile).
    expect(await lookup.lookup(x, n(999))).toMatchObject({ extension: { tenantId: tenant, extensionLength: 4 } });
    expect(await lookup.lookupExtension(x, '3333')).toMatchObject({ route: { bindingId: binding.id, target: n(701) } });
    expect(await lookup.lookupExtension(x, '4444')).toEqual({ refused: 'wrong_extension' });
    await lookup.ensureComplete();
    expect(await routes.lookupExtension(x, '3333')).toMatchObject({ route: { bindingId: binding.id } });
    expect(await routes.lookupExtension(x, '4444')).toEqual({ refused: 'wrong_extension' });

    // Drift: the marker and an extension route lost; the reconcile puts both back, and only those.
    const keys = redisKeys(prefix);
    await redis.del(keys.extensionNumber(x), keys.routeByExtension(x, '3333'));
    expect(await routes.lookup(x, n(999))).toEqual({ refused: 'unbound' });
    const drift = await routes.reconcile(() => registry.listActive());
    expect(drift.found).toBeGreaterThanOrEqual(2);
    expect(await routes.lookup(x, n(999))).toMatchObject({ extension: { extensionLength: 4 } });
    expect(await routes.lookupExtension(x, '3333')).toMatchObject({ route: { bindingId: binding.id } });
    expect((await routes.reconcile(() => registry.listActive())).found).toBe(0);
  });

  it('an extension never appears with a real number in a Redis key, and the binding row keeps it', async () => {
    const x = xOf(7);
    const { binding } = await registry.bind({ tenantId: tenant, mode: 'axe', a: n(800), b: n(801), x, extension: '5555' });
    const keys = await redis.keys(`${prefix}:*${x}*`);
    expect(keys).toHaveLength(3);
    expect(keys).toEqual(
      expect.arrayContaining([redisKeys(prefix).extensionNumber(x), redisKeys(prefix).routeByExtension(x, '5555'), expect.stringMatching(new RegExp(`^${prefix}:route:\\{${x}\\}:[0-9a-f]+$`))]),
    );
    for (const k of keys) expect(k).not.toMatch(/1390000080[01]/);
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT kind, extension FROM bindings WHERE id = ?', [binding.id]);
    expect(rows[0]).toMatchObject({ kind: 'axe', extension: '5555' });
  });
});
