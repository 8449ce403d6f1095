import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/stores/redis';
import { platformSecret } from '../../src/stores/platform-secrets';
import { startTestSystem, type TestSystem } from '../support/system';
import { TEST_REDIS_URL } from '../support/redis';

/** Operators can list Redis keys; they must read no real number there, nor one a plain hash gives away. */
describe('real numbers at rest in Redis', () => {
  let sys: TestSystem;
  let redis: Redis;
  const A = '13800004001';
  const B = '13900004001';
  const FRIEND = '13600004001';
  const XB_OWNER = '13900004002';
  const X1 = '700100000004001';
  const X2 = '700100000004002';

  beforeAll(async () => {
    // Abuse limits on, so that their counters are written too.
    sys = await startTestSystem({ env: { CALLS_PER_CALLER_PER_MINUTE: '50', BINDINGS_PER_NUMBER_PER_HOUR: '50' } });
    redis = createRedis(TEST_REDIS_URL);
    await sys.app.bindings.importNumbers(sys.tenantId, [{ x: X1, area: '010' }, { x: X2, area: '010' }]);
  });
  afterAll(async () => {
    await redis?.quit();
    await sys?.stop();
  });

  async function keysAndValues(): Promise<string> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${sys.env.REDIS_PREFIX}:route:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    const all: string[] = [];
    cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `*${sys.env.REDIS_PREFIX}*`, 'COUNT', 1000);
      cursor = next;
      all.push(...found);
    } while (cursor !== '0');
    const routeValues = await Promise.all(keys.filter((k) => !k.endsWith(':ready')).map((k) => redis.get(k)));
    return JSON.stringify({ keys: all, routeAllowLists: routeValues.map((v) => (v ? (JSON.parse(v) as { allowList: string[] }).allowList : [])) });
  }

  it('route and abuse keys hold a keyed hash of each number, never the number or its plain hash', async () => {
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a: A, b: B, x: X1 });
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'xb', b: XB_OWNER, x: X2, allowList: [FRIEND] });
    sys.sim.setPhone(B, { answer: 'answer', hangupAfterMs: 100 });
    await sys.callX({ callerNumber: A, destinationNumber: X1 });
    // The call was routed by the hashed key: the index works.
    expect('route' in (await sys.app.routes.lookup(X1, A))).toBe(true);
    expect('route' in (await sys.app.routes.lookup(X2, FRIEND))).toBe(true);
    expect(await sys.app.routes.lookup(X2, '13600004999')).toMatchObject({ refused: 'restricted' });

    const stored = await keysAndValues();
    expect(stored).toContain(':route:');
    expect(stored).toContain(':abuse:');
    const plainHash = (n: string) => createHash('sha256').update(n).digest('hex').slice(0, 32);
    const plainTenantHash = (n: string) => createHash('sha256').update(`${sys.tenantId}|${n}`).digest('hex').slice(0, 32);
    for (const n of [A, B, FRIEND, XB_OWNER]) {
      expect(stored).not.toContain(n);
      expect(stored).not.toContain(plainHash(n));
      expect(stored).not.toContain(plainTenantHash(n));
    }
  });

  it('the hash key is made once per platform and shared by every instance', async () => {
    const first = await platformSecret(sys.app.pool, 'number_hash_key');
    const again = await platformSecret(sys.app.pool, 'number_hash_key');
    expect(first).toBe(again);
    expect(first.length).toBeGreaterThanOrEqual(43);
  });
});
