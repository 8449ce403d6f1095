import { randomBytes } from 'node:crypto';
import { numberHasher } from '../../src/domain/number-hash';
import { createLogger } from '../../src/logger';
import { createReadinessProbe } from '../../src/monitoring/readiness';
import type { IndexableBinding, RouteDecision } from '../../src/stores/route-index';
import { RouteIndex } from '../../src/stores/route-index';
import { activeBindingsFor, RouteLookup } from '../../src/stores/route-lookup';
import { createTestRedis, type TestRedis } from '../support/redis';
import { redisKeys } from '../../src/stores/keys';
import { startTestSystem, type TestSystem } from '../support/system';

const xs = (i: number) => `7001000${String(970 + i).padStart(8, '0')}`;

/** What a decision says, without the stored route's details: routed to whom, or refused why. */
function outcome(d: RouteDecision): string {
  if ('extension' in d) return `extension:${d.extension.extensionLength}`;
  return 'route' in d ? `route:${d.route.target}:${d.route.kind}` : `refused:${d.refused}`;
}

/**
 * While the route index is being rebuilt (Redis lost it), a lookup that misses is answered from
 * MySQL by the same rules as the index: every case below is decided both ways, against real
 * MariaDB and Redis, and must agree, and match what the product promises.
 */
describe('route lookup while the index is incomplete: misses answered from MySQL', () => {
  let sys: TestSystem;
  let redis: TestRedis;
  let index: RouteIndex;
  let lookup: RouteLookup;
  let releaseRebuild = (): void => undefined;
  let sqlReads = 0;
  const now = Date.now();

  const a = '13800009701';
  const b = '13900009701';
  const xbOwner = '13900009702';
  const friend = '13600009702';
  const ra = '13800009703';
  const rb = '13900009703';
  const ea = '13800009704';
  const eb = '13900009704';

  const cases: ReadonlyArray<{ name: string; x: string; caller: string; expected: string }> = [
    { name: 'AXB: A reaches B', x: xs(0), caller: a, expected: `route:${b}:axb` },
    { name: 'AXB: B reaches A', x: xs(0), caller: b, expected: `route:${a}:axb` },
    { name: 'a stranger on an AXB X', x: xs(0), caller: '13700009701', expected: 'refused:unbound' },
    { name: 'XB: an allow-listed caller reaches B', x: xs(1), caller: friend, expected: `route:${xbOwner}:xb` },
    { name: 'XB: a caller off the allow-list', x: xs(1), caller: '13600009799', expected: 'refused:restricted' },
    { name: 'XB: B itself', x: xs(1), caller: xbOwner, expected: 'refused:unbound' },
    { name: 'restricted a_to_b: A reaches B', x: xs(2), caller: ra, expected: `route:${rb}:axb` },
    { name: 'restricted a_to_b: B is refused', x: xs(2), caller: rb, expected: 'refused:restricted' },
    { name: 'expired binding', x: xs(3), caller: ea, expected: 'refused:unbound' },
    { name: 'an X with no binding', x: xs(4), caller: a, expected: 'refused:unbound' },
  ];

  beforeAll(async () => {
    sys = await startTestSystem();
    redis = await createTestRedis();
    const reg = sys.app.bindings;
    await reg.importNumbers(sys.tenantId, Array.from({ length: 5 }, (_, i) => ({ x: xs(i), area: '010' })));
    await reg.bind({ tenantId: sys.tenantId, mode: 'axb', a, b, x: xs(0) });
    await reg.bind({ tenantId: sys.tenantId, mode: 'xb', b: xbOwner, x: xs(1), allowList: [friend] });
    await reg.bind({ tenantId: sys.tenantId, mode: 'axb', a: ra, b: rb, x: xs(2), restriction: 'a_to_b' });
    await reg.bind({ tenantId: sys.tenantId, mode: 'axb', a: ea, b: eb, x: xs(3), ttlSeconds: 60 }, now - 61_000);
    // An index of its own (own prefix), empty: Redis "lost" it. The rebuild waits until the test lets it go.
    index = new RouteIndex(redis.redis, redis.prefix, numberHasher(randomBytes(32).toString('hex')));
    const gate = new Promise<void>((resolve) => (releaseRebuild = resolve));
    const sql = activeBindingsFor(sys.app.pool);
    lookup = new RouteLookup({
      index,
      listActive: async (): Promise<readonly IndexableBinding[]> => {
        await gate;
        return sys.app.bindings.listActive();
      },
      activeFor: (x, caller, at) => {
        sqlReads++;
        return sql(x, caller, at);
      },
      logger: createLogger('silent'),
    });
  });
  afterAll(async () => {
    releaseRebuild();
    await redis?.cleanup();
    await sys?.stop();
  });

  it('readiness is false while the index is incomplete, and every miss is decided from MySQL as the index decides it', async () => {
    const probe = createReadinessProbe({ esl: { state: 'ready' }, redis: redis.redis, pool: sys.app.pool, routeIndex: lookup });
    expect(await probe.check()).toMatchObject({ routes: false, redis: true, mysql: true });

    const fromMysql: Record<string, string> = {};
    for (const c of cases) {
      const before = sqlReads;
      fromMysql[c.name] = outcome(await lookup.lookup(c.x, c.caller, Date.now()));
      expect({ case: c.name, sqlReads: sqlReads - before }).toEqual({ case: c.name, sqlReads: 1 });
    }
    expect(await probe.check()).toMatchObject({ routes: false });

    releaseRebuild();
    await lookup.ensureComplete();
    expect(await probe.check()).toMatchObject({ routes: true });

    const fromIndex: Record<string, string> = {};
    const readsBefore = sqlReads;
    for (const c of cases) fromIndex[c.name] = outcome(await lookup.lookup(c.x, c.caller, Date.now()));
    expect(sqlReads).toBe(readsBefore);

    const expected = Object.fromEntries(cases.map((c) => [c.name, c.expected]));
    expect(fromMysql).toEqual(expected);
    expect(fromIndex).toEqual(expected);
  });

  it('a binding ended in MySQL is not routed from MySQL while the index is incomplete', async () => {
    const ua = '13800009705';
    const ub = '13900009705';
    const { binding } = await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a: ua, b: ub, x: xs(4) });
    await sys.app.bindings.unbind(sys.tenantId, binding.id);
    await redis.redis.del(redisKeys(redis.prefix).routeIndexReady);
    expect(outcome(await lookup.lookup(xs(4), ua, Date.now()))).toBe('refused:unbound');
  });
});
