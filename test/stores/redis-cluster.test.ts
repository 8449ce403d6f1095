import { randomUUID } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import type { CdrRecord } from '../../src/domain/call';
import { RedisAbuseCounters } from '../../src/abuse/redis-counters';
import { numberHasher } from '../../src/domain/number-hash';
import { RedisAuthThrottle } from '../../src/http/auth-throttle';
import { createLogger } from '../../src/logger';
import { CdrQueue, startCdrWriter } from '../../src/queues/cdr-queue';
import { queueNames, redisKeys } from '../../src/stores/keys';
import { LiveCallStore } from '../../src/stores/live-calls';
import { createRedis, createRequestRedis, getMany, isCluster, keySlot, LuaScript, scanKeys, type Cluster, type RedisClient } from '../../src/stores/redis';
import { RouteIndex, type IndexableBinding } from '../../src/stores/route-index';
import { RedisTenantSlots } from '../../src/webhooks/tenant-slots';
import { outcome } from '../../bench/cdr-persist';
import { createTestDatabase, type TestDatabase } from '../support/mysql';
import { deletePrefixKeys, testRedisPrefix } from '../support/redis';
import { redisClusterUnavailable, startRedisCluster, type TestRedisCluster } from '../support/redis-cluster';
import { waitUntil } from '../support/wait';

/**
 * The platform's Redis paths against a real Redis Cluster of the test's own (three masters on
 * loopback ports): the route index, live calls, abuse counters and every Lua script, and BullMQ
 * queues (the CDR writer into MySQL). A key layout that put a script's keys in two slots fails
 * here with CROSSSLOT.
 */
const unavailable = redisClusterUnavailable();
if (unavailable) console.log(`Redis Cluster tests skipped: ${unavailable}`);
const describeCluster = unavailable ? describe.skip : describe;

const TENANT = 'tenant-cluster';
const hash = numberHasher('k'.repeat(32));

function axb(x: string, a: string, b: string, expiresAt = Date.now() + 3_600_000): IndexableBinding {
  return {
    id: randomUUID(), tenantId: TENANT, kind: 'axb', x, a, b, expiresAt, restriction: 'both', record: false,
    maxDurationSeconds: null, announcement: null, allowList: [], userData: null,
  };
}

describeCluster('on a real Redis Cluster (three masters)', () => {
  let cluster: TestRedisCluster;
  let redis: RedisClient;
  let queueRedis: RedisClient;
  const prefix = testRedisPrefix();
  const keys = redisKeys(prefix);

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    const target = { url: 'redis://127.0.0.1', clusterNodes: cluster.nodes };
    redis = createRequestRedis(target, { commandTimeoutMs: 5000, maxRetriesPerRequest: 1 });
    queueRedis = createRedis(target);
    await waitUntil('cluster client ready', async () => (await redis.ping()) === 'PONG', 20_000);
  }, 120_000);

  afterAll(async () => {
    redis?.disconnect();
    queueRedis?.disconnect();
    await cluster?.stop();
  });

  it('is a cluster client, and computes each key’s slot as the cluster does', async () => {
    expect(isCluster(redis)).toBe(true);
    const node = (redis as Cluster).nodes('master')[0]!;
    for (const key of [keys.route('700100000000001', 'h'), keys.liveCall('c1'), keys.legClaim('c1', 'a:1'), keys.abuseCounter('calls', 't', 'h'), `${prefix}:${queueNames.cdr(prefix)}:wait`, 'foo', '{}x']) {
      expect(Number(await node.call('CLUSTER', 'KEYSLOT', key))).toBe(keySlot(key));
    }
  });

  describe('the route index', () => {
    let index: RouteIndex;
    const xs = Array.from({ length: 40 }, (_, i) => `7001${String(900 + i).padStart(11, '0')}`);
    const bindings = xs.map((x, i) => axb(x, `1380000${String(i).padStart(4, '0')}`, `1390000${String(i).padStart(4, '0')}`));

    beforeAll(() => {
      index = new RouteIndex(redis, prefix, hash);
    });

    it('writes routes of many X (several masters), and looks them up with the ready marker in another slot', async () => {
      expect(await index.isReady()).toBe(false);
      await index.rebuild(bindings.map((b) => ({ ...b, routeVersion: 1 })));
      expect(await index.isReady()).toBe(true);

      // the routes are spread: each master holds some
      const perMaster: number[] = [];
      for (const node of (redis as Cluster).nodes('master')) {
        const [, found] = await node.scan('0', 'MATCH', `${prefix}:route:{*`, 'COUNT', 10_000);
        perMaster.push(found.length);
      }
      expect(perMaster.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
      expect(perMaster.reduce((s, n) => s + n, 0)).toBe(80);

      for (const b of bindings.slice(0, 10)) {
        const fromA = await index.lookupChecked(b.x, b.a!);
        expect(fromA.complete).toBe(true);
        expect(fromA.decision).toMatchObject({ route: { bindingId: b.id, target: b.b, callerRole: 'a' } });
        expect(await index.lookup(b.x, b.b)).toMatchObject({ route: { bindingId: b.id, target: b.a } });
        expect(await index.lookup(b.x, '13700000000')).toEqual({ refused: 'unbound' });
      }
    });

    it('applies a versioned removal, and refuses an older write after it', async () => {
      const b = bindings[0]!;
      await index.apply([{ version: 2, binding: { ...b, state: 'unbound', routeVersion: 2 } }]);
      expect(await index.lookup(b.x, b.a!)).toEqual({ refused: 'unbound' });
      await index.apply([{ version: 1, binding: { ...b, routeVersion: 1 } }]);
      expect(await index.lookup(b.x, b.a!)).toEqual({ refused: 'unbound' });
    });

    it('reconciles by scanning every master: a lost route comes back, a stray one goes', async () => {
      const lost = bindings[5]!;
      const stray = axb('700199999999999', '13811112222', '13911112222');
      await redis.del(keys.route(lost.x, hash(lost.a!)));
      await index.put(stray);
      expect(await index.lookup(stray.x, stray.a!)).toMatchObject({ route: { bindingId: stray.id } });

      const active = bindings.slice(1).map((b) => ({ ...b, routeVersion: 1 }));
      const drift = await index.reconcile(async () => active);
      expect(drift).toEqual({ found: 3, repaired: 3 });
      expect(await index.lookup(lost.x, lost.a!)).toMatchObject({ route: { bindingId: lost.id } });
      expect(await index.lookup(stray.x, stray.a!)).toEqual({ refused: 'unbound' });
      expect(await index.reconcile(async () => active)).toEqual({ found: 0, repaired: 0 });
    });

    it('reads many keys of many slots at once (getMany), in order', async () => {
      const routeKeys = bindings.slice(1, 21).map((b) => keys.route(b.x, hash(b.a!)));
      const values = await getMany(redis, [...routeKeys, `${prefix}:nothing-here`]);
      expect(values).toHaveLength(21);
      values.slice(0, 20).forEach((v, i) => expect(JSON.parse(v!)).toMatchObject({ bindingId: bindings[i + 1]!.id }));
      expect(values[20]).toBeNull();
    });
  });

  describe('live calls', () => {
    it('starts an attempt once (both legs claimed with the call), and a second delivery finds it taken', async () => {
      const live = new LiveCallStore(redis, prefix);
      const callId = randomUUID();
      expect(await live.startAttempt(callId, 1, { state: 'calling_a', attempt: 1, aUuid: 'ua', bUuid: 'ub', result: null })).toEqual({ start: 'started', prior: null });
      const second = await live.startAttempt(callId, 1, { state: 'calling_a', attempt: 1, aUuid: 'other' });
      // the second delivery is told what the first wrote, and writes nothing itself
      expect(second).toMatchObject({ start: 'taken', prior: { state: 'calling_a', attempt: 1, aUuid: 'ua', bUuid: 'ub' } });
      expect(await live.get(callId)).toMatchObject({ state: 'calling_a', attempt: 1, aUuid: 'ua', bUuid: 'ub', result: null, cancelRequested: false });
      // the next attempt of the same call has claims of its own
      expect((await live.startAttempt(callId, 2, { attempt: 2 })).start).toBe('started');
      await live.update(callId, { state: 'bridged', bAnswerAt: 1234 });
      expect(await live.get(callId)).toMatchObject({ state: 'bridged', attempt: 2, bAnswerAt: 1234 });
    });

    it('answers an attempt an earlier delivery settled with its CDR, without claiming or writing anything', async () => {
      const live = new LiveCallStore(redis, prefix);
      const callId = randomUUID();
      expect((await live.startAttempt(callId, 1, { state: 'calling_a', attempt: 1 })).start).toBe('started');
      const cdr = { callId, result: 'a_busy' } as unknown as CdrRecord;
      await live.update(callId, { state: 'completed', result: 'a_busy', finalCdr: cdr });
      const again = await live.startAttempt(callId, 1, { state: 'calling_a', attempt: 1, finalCdr: null });
      expect(again).toMatchObject({ start: 'settled', prior: { state: 'completed', finalCdr: cdr } });
      expect(await live.get(callId)).toMatchObject({ state: 'completed', finalCdr: cdr });
      // a later attempt of the call is not the settled one
      expect((await live.startAttempt(callId, 2, { state: 'calling_a', attempt: 2, finalCdr: null })).start).toBe('started');
    });

    it('claims, but does not start, an attempt of a call cancelled before it', async () => {
      const live = new LiveCallStore(redis, prefix);
      const callId = randomUUID();
      await live.requestCancel(callId);
      expect((await live.startAttempt(callId, 1, { state: 'calling_a', attempt: 1 })).start).toBe('cancelled');
      expect(await live.isCancelRequested(callId)).toBe(true);
      expect((await live.startAttempt(callId, 1, { state: 'calling_a', attempt: 1 })).start).toBe('taken');
    });
  });

  describe('counters and the other Lua scripts', () => {
    const counters = (): RedisAbuseCounters => new RedisAbuseCounters(redis);

    it('takes A’s and B’s sliding windows atomically, naming the one over its limit (take-sliding-window.lua)', async () => {
      const ka = keys.abuseCounter('calls', TENANT, 'hashA');
      const kb = keys.abuseCounter('calls', TENANT, 'hashB');
      const now = Date.now();
      expect(await counters().takeSliding([{ key: ka, limit: 2 }, { key: kb, limit: 1 }], 60_000, now)).toEqual({ admitted: true });
      const refused = await counters().takeSliding([{ key: ka, limit: 2 }, { key: kb, limit: 1 }], 60_000, now + 1);
      expect(refused).toMatchObject({ admitted: false, index: 1 });
      // nothing was counted on A by the refused take: A alone is still under 2
      expect(await counters().takeSliding([{ key: ka, limit: 2 }], 60_000, now + 2)).toEqual({ admitted: true });
      expect(await counters().takeSliding([{ key: ka, limit: 2 }], 60_000, now + 3)).toMatchObject({ admitted: false, index: 0 });
    });

    it('flags fan-out once per window (note-parties.lua), short calls (note-short-calls.lua) and bulk bindings (note-binding-rate.lua)', async () => {
      const now = Date.now();
      const note = (party: string) =>
        counters().noteParties(keys.abuseCounter('fanout', TENANT, 'hashA'), keys.abuseCounter('fanout-flag', TENANT, 'hashA'), [party], 2, 60_000, now);
      expect(await note('p1')).toEqual({ distinct: 1, flagged: false });
      expect(await note('p2')).toEqual({ distinct: 2, flagged: false });
      expect(await note('p3')).toEqual({ distinct: 3, flagged: true });
      expect(await note('p4')).toMatchObject({ flagged: false });

      const shortKeys = { connected: keys.anomalyWindow('connected', 'hc'), short: keys.anomalyWindow('short', 'hc'), marker: keys.anomalyWindow('short-flag', 'hc') };
      const rule = { minCalls: 3, sharePercent: 60, windowMs: 60_000 };
      expect(await counters().noteShortCall(shortKeys, 'c1', true, rule, now)).toEqual({ connected: 1, short: 1, flagged: false });
      expect(await counters().noteShortCall(shortKeys, 'c2', true, rule, now)).toEqual({ connected: 2, short: 2, flagged: false });
      expect(await counters().noteShortCall(shortKeys, 'c3', false, rule, now)).toEqual({ connected: 3, short: 2, flagged: true });

      const rate = { state: keys.bindingRate(TENANT), marker: keys.bindingRateFlag(TENANT) };
      const seen = await counters().noteBinding(rate, { factor: 5, minPerMinute: 10, baselineMinutes: 10 }, now);
      expect(seen).toEqual({ count: 1, usualPerMinute: null, flagged: false });
    });

    it('counts in fixed windows (count-in-window.lua, read-count.lua), leases slots (acquire-lease.lua), removes its own route (remove-own-route.lua)', async () => {
      const throttle = new RedisAuthThrottle(redis, prefix, 2, 60_000);
      expect(await throttle.blockedFor('192.0.2.7')).toBe(0);
      await throttle.failed('192.0.2.7');
      await throttle.failed('192.0.2.7');
      expect(await throttle.blockedFor('192.0.2.7')).toBeGreaterThan(55_000);
      expect(await counters().takeFixed(keys.tenantRequests(TENANT, 1), 2000)).toEqual({ count: 1 });

      const slots = new RedisTenantSlots(redis, prefix, 1, 60_000);
      expect(await slots.acquire(TENANT, 'h1')).toBe(true);
      expect(await slots.acquire(TENANT, 'h2')).toBe(false);
      await slots.release(TENANT, 'h1');
      expect(await slots.acquire(TENANT, 'h2')).toBe(true);

      const route = keys.route('700188888888888', '*');
      await redis.set(route, JSON.stringify({ bindingId: 'mine' }));
      const removeOwn = LuaScript.load('remove-own-route');
      expect(await removeOwn.run(redis, [route], ['not-mine'])).toBe(0);
      expect(await removeOwn.run(redis, [route], ['mine'])).toBe(1);
      expect(await redis.exists(route)).toBe(0);
    });
  });

  describe('BullMQ queues', () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await createTestDatabase();
    });
    afterAll(async () => {
      await db?.drop();
    });

    it('carries CDRs through the CDR queue into MySQL, every job once, the queue’s keys in one slot', async () => {
      const queue = new CdrQueue({ connection: queueRedis, prefix });
      const writer = startCdrWriter({ connection: queueRedis, prefix, pool: db.pool, logger: createLogger('silent'), concurrency: 50, maxBatch: 20 });
      try {
        const outcomes = Array.from({ length: 120 }, (_, i) => outcome(i, TENANT));
        await queue.enqueueMany(outcomes);
        await queue.enqueue(outcomes[0]!); // a duplicate: the same job id
        await waitUntil(
          'every CDR written',
          async () => {
            const [[row]] = await db.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM cdrs');
            return Number(row?.n) === 120;
          },
          60_000,
          100,
        );
        await waitUntil('every job completed', async () => ((await queue.queue.getJobCounts('completed')).completed ?? 0) === 120, 20_000, 100);
        const [rows] = await db.pool.query<RowDataPacket[]>('SELECT call_id, COUNT(*) AS n FROM cdrs GROUP BY call_id HAVING n > 1');
        expect(rows).toEqual([]);

        const queueSlots = new Set<number>();
        for await (const found of scanKeys(redis, `${prefix}:${queueNames.cdr(prefix)}:*`)) for (const key of found) queueSlots.add(keySlot(key));
        expect(queueSlots).toEqual(new Set([keySlot(queueNames.cdr(prefix))]));
      } finally {
        await writer.close();
        await queue.close();
      }
    }, 90_000);

    it('deletes a prefix’s keys on every master', async () => {
      expect(await deletePrefixKeys(redis, prefix)).toBeGreaterThan(0);
      let left = 0;
      for await (const found of scanKeys(redis, `${prefix}*`)) left += found.length;
      expect(left).toBe(0);
    });
  });
});
