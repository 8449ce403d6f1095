/**
 * The reuse invariant and the callback rule, each stated once in src/domain/binding-rules.ts, and
 * one table of cases each that the pure function, the SQL path (MariaDB's constraints, through the
 * registry) and the Redis path (the route index's Lua) are all held to.
 */
import type { Redis } from 'ioredis';
import type { RowDataPacket } from 'mysql2/promise';
import { callbackMayTake, membersOf, reuseClash, type BindingMode } from '../../src/domain/binding-rules';
import { numberHasher } from '../../src/domain/number-hash';
import { BindingService } from '../../src/bindings/binding-service';
import { persistCallOutcomes, type CallOutcome } from '../../src/stores/call-outcome';
import { createRedis } from '../../src/stores/redis';
import { RouteIndex } from '../../src/stores/route-index';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase, type TestDatabase } from '../support/mysql';
import { deletePrefixKeys, testRedisPrefix, TEST_REDIS_URL } from '../support/redis';

interface Bind {
  readonly mode: BindingMode;
  readonly a?: string;
  readonly b: string;
}
const axb = (a: number, b: number): Bind => ({ mode: 'axb', a: `1390000000${a}`, b: `1390000000${b}` });
const xb = (b: number): Bind => ({ mode: 'xb', b: `1390000000${b}` });

/** On one X: what it holds, what is added, and whether the invariant lets it in. */
const REUSE_CASES: ReadonlyArray<readonly [string, readonly Bind[], Bind, boolean]> = [
  ['an empty X takes an AXB', [], axb(1, 2), true],
  ['an empty X takes an XB', [], xb(7), true],
  ['disjoint pairs share an X', [axb(1, 2)], axb(3, 4), true],
  ['three disjoint pairs share an X', [axb(1, 2), axb(3, 4)], axb(5, 6), true],
  ['A twice on one X', [axb(1, 2)], axb(1, 5), false],
  ['B twice on one X', [axb(1, 2)], axb(5, 2), false],
  ['the same pair the other way round', [axb(1, 2)], axb(2, 1), false],
  ['A of one pair as B of another', [axb(1, 2)], axb(3, 1), false],
  ['an XB beside an AXB', [axb(1, 2)], xb(7), false],
  ['an AXB beside an XB', [xb(7)], axb(1, 2), false],
  ['two XB on one X', [xb(7)], xb(8), false],
  ['an XB beside an AXB of its own B', [axb(1, 7)], xb(7), false],
];

/** Who holds (X, B), and whether a callback for B expiring at +24 h takes it. */
const HOUR = 3_600_000;
const CALLBACK_CASES: ReadonlyArray<readonly [string, 'none' | 'axb' | 'xb' | 'older callback' | 'newer callback', boolean]> = [
  ['nobody', 'none', true],
  ['an older callback', 'older callback', true],
  ['a newer callback', 'newer callback', false],
  ['an AXB binding', 'axb', false],
  ['an XB binding', 'xb', false],
];

describe('the reuse invariant: one table, the pure rule and MariaDB', () => {
  let db: TestDatabase;
  let registry: BindingService;
  let tenant: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    registry = new BindingService(db.pool);
    tenant = (await new TenantStore(db.pool).create({ name: 't' })).id;
    await registry.importNumbers(tenant, REUSE_CASES.map((_, i) => ({ x: `7001000${String(9000 + i).padStart(8, '0')}`, area: '010' })));
  });
  afterAll(async () => {
    await db?.drop();
  });

  it.each(REUSE_CASES.map(([name, held, adding, fits], i) => ({ name, held, adding, fits, i })))('$name (fits: $fits)', async ({ held, adding, fits, i }) => {
    const members = (b: Bind) => membersOf(b.mode, b.a ?? null, b.b);
    // The rule.
    expect(reuseClash(new Set(held.flatMap(members)), members(adding)) === null).toBe(fits);
    // MariaDB, through the registry's SQL path on an X of its own.
    const x = `7001000${String(9000 + i).padStart(8, '0')}`;
    for (const h of held) await registry.bind({ tenantId: tenant, ...h, x });
    const attempt = registry.bind({ tenantId: tenant, ...adding, x });
    if (fits) await expect(attempt).resolves.toMatchObject({ created: true });
    else await expect(attempt).rejects.toMatchObject({ code: 'binding_conflict' });
  });
});

describe('the callback rule: one table, the pure rule, MariaDB and the route index', () => {
  let db: TestDatabase;
  let redis: Redis;
  let prefix: string;
  let routes: RouteIndex;
  let registry: BindingService;
  let tenant: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = createRedis(TEST_REDIS_URL);
    prefix = testRedisPrefix();
    routes = new RouteIndex(redis, prefix, numberHasher('test-number-hash-key-0123456789abcdef'));
    registry = new BindingService(db.pool, routes);
    tenant = (await new TenantStore(db.pool).create({ name: 't' })).id;
    await registry.importNumbers(tenant, CALLBACK_CASES.map((_, i) => ({ x: `7001000${String(9100 + i).padStart(8, '0')}`, area: '010' })));
  });
  afterAll(async () => {
    await deletePrefixKeys(redis, prefix);
    redis.disconnect();
    await db?.drop();
  });

  let seq = 0;
  const callEnded = async (x: string, a: string, b: string, expiresAt: number, now: number) => {
    seq += 1;
    const callId = `00000000-0000-4000-a000-${String(seq).padStart(12, '0')}`;
    const callback = { id: `rule-${seq}`, tenantId: tenant, x, a, b, expiresAt, callId, userData: null };
    const outcome: CallOutcome = {
      cdr: {
        callId, tenantId: tenant, kind: 'click_to_dial', bindingId: null, x, a, b, startedAt: now - 60_000, aRingAt: null, aAnswerAt: null,
        bRingAt: null, bAnswerAt: null, endedAt: now, talkSeconds: 0, hangupCause: null, hangupSide: 'b', result: 'b_no_answer',
        recordingRef: null, userData: null,
      },
      callbackBinding: callback,
    };
    // As click-to-dial does: the route at once (the Redis path), then MySQL through the CDR batch, then the outbox.
    await routes.put({ ...callback, kind: 'callback', restriction: 'both', record: false, maxDurationSeconds: null, announcement: null, allowList: [] });
    const afterRedisPath = await routes.lookup(x, b);
    await persistCallOutcomes(db.pool, [outcome]);
    await registry.applyPendingRoutes();
    return { callback, afterRedisPath };
  };

  it.each(CALLBACK_CASES.map(([name, holder, takes], i) => ({ name, holder, takes, i })))('(X, B) held by $name: the callback takes it: $takes', async ({ holder, takes, i }) => {
    const x = `7001000${String(9100 + i).padStart(8, '0')}`;
    const b = '13700000001';
    const now = Date.now();
    const expiresAt = now + 24 * HOUR;
    let holderExpiry = 0;
    if (holder === 'axb') holderExpiry = (await registry.bind({ tenantId: tenant, mode: 'axb', a: '13700000009', b, x })).binding.expiresAt;
    if (holder === 'xb') holderExpiry = (await registry.bind({ tenantId: tenant, mode: 'xb', b, x })).binding.expiresAt;
    if (holder === 'older callback') holderExpiry = (await callEnded(x, '13700000008', b, expiresAt - HOUR, now)).callback.expiresAt;
    if (holder === 'newer callback') holderExpiry = (await callEnded(x, '13700000008', b, expiresAt + HOUR, now)).callback.expiresAt;
    // The rule.
    const kind = holder === 'none' ? null : holder === 'axb' || holder === 'xb' ? holder : 'callback';
    expect(callbackMayTake(kind === null ? null : { kind, expiresAt: holderExpiry }, expiresAt)).toBe(takes);

    const { callback, afterRedisPath } = await callEnded(x, '13700000002', b, expiresAt, now);
    // The Redis path as the call ends: takes the route exactly when the rule says so (an XB holds
    // (X, *), a key of its own: B's own callback route would shadow it, so it waits for MySQL's word below).
    if (holder !== 'xb') expect('route' in afterRedisPath && afterRedisPath.route.bindingId === callback.id).toBe(takes);
    // MariaDB, and the index once the outbox has applied MySQL's decision.
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT state FROM bindings WHERE id = ?', [callback.id]);
    expect(String(rows[0]!.state) === 'active').toBe(takes);
    const routed = await routes.lookup(x, b);
    expect('route' in routed && routed.route.bindingId === callback.id).toBe(takes);
  });
});
