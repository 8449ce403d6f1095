/**
 * The routing path's local cache of the route index (issue 8, item 7) never routes an unbound
 * binding: it is invalidated by the same durable path that removes routes (the outbox's index
 * writes, published on the route-changes channel), on the controller that made the change at once
 * and on the others as they hear it; it serves nothing while it cannot hear. Real MariaDB, and a
 * redis-server of this suite's own.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { numberHasher } from '../../src/domain/number-hash';
import type { Binding } from '../../src/domain/binding-rules';
import { routeCacheAckChannel, routeCacheMembersKey } from '../../src/stores/keys';
import { BindingService } from '../../src/bindings/binding-service';
import { createRedis } from '../../src/stores/redis';
import { joinRouteCache, RouteReadCache, RouteWriteBarrier } from '../../src/stores/route-cache';
import { RouteIndex, type RouteRead } from '../../src/stores/route-index';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase, type TestDatabase } from '../support/mysql';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { testRedisPrefix } from '../support/redis';
import { waitUntil } from '../support/wait';

const HASH_KEY = 'test-number-hash-key-0123456789abcdef';
const xs = (from: number, count: number) => Array.from({ length: count }, (_, i) => `7002000${String(from + i).padStart(8, '0')}`);
const mobile = (i: number) => `1382${String(i).padStart(7, '0')}`;

describe('RouteReadCache', () => {
  const read = (target: string): RouteRead => ({ own: { target } as RouteRead['own'], xb: null, marker: null });

  it('serves nothing until it is live, and going down drops what it held', () => {
    const cache = new RouteReadCache<RouteRead>({ ttlMs: 10_000, maxEntries: 10 });
    cache.keep(cache.begin(), 'x1', 'c1', read('b'));
    expect(cache.get('x1', 'c1')).toBeUndefined();
    cache.setLive(true);
    cache.keep(cache.begin(), 'x1', 'c1', read('b'));
    expect(cache.get('x1', 'c1')).toEqual(read('b'));
    cache.setLive(false);
    cache.setLive(true);
    expect(cache.get('x1', 'c1')).toBeUndefined();
  });

  it('does not keep a read that an invalidation of its X overtook; other Xs are kept', () => {
    const cache = new RouteReadCache<RouteRead>({ ttlMs: 10_000, maxEntries: 10 });
    cache.setLive(true);
    const before = cache.begin();
    cache.invalidateKey('p:route:{x1}:abc');
    cache.keep(before, 'x1', 'c1', read('old'));
    cache.keep(before, 'x2', 'c1', read('other'));
    expect(cache.get('x1', 'c1')).toBeUndefined();
    expect(cache.get('x2', 'c1')).toEqual(read('other'));
    // A message naming X drops every caller's read of it.
    cache.keep(cache.begin(), 'x2', 'c2', read('other2'));
    cache.invalidateKey('p:axe:{x2}');
    expect(cache.get('x2', 'c1')).toBeUndefined();
    expect(cache.get('x2', 'c2')).toBeUndefined();
  });

  it('ages reads out after ttlMs, and holds at most maxEntries', () => {
    const cache = new RouteReadCache<RouteRead>({ ttlMs: 100, maxEntries: 2 });
    cache.setLive(true);
    cache.keep(cache.begin(), 'x1', 'c1', read('b'), 1000);
    expect(cache.get('x1', 'c1', 1050)).toEqual(read('b'));
    expect(cache.get('x1', 'c1', 1101)).toBeUndefined();
    cache.keep(cache.begin(), 'x1', 'c1', read('b'), 2000);
    cache.keep(cache.begin(), 'x1', 'c2', read('b'), 2000);
    cache.keep(cache.begin(), 'x1', 'c3', read('b'), 2000);
    const held = ['c1', 'c2', 'c3'].filter((c) => cache.get('x1', c, 2001) !== undefined);
    expect(held.length).toBeLessThanOrEqual(2);
    expect(held).toContain('c3');
  });

  it('serves nothing once its lease has ended, and a read begun before it went live is never kept', () => {
    const cache = new RouteReadCache<RouteRead>({ ttlMs: 10_000, maxEntries: 10 });
    const beforeLive = cache.begin();
    cache.setLive(true);
    cache.keep(beforeLive, 'x1', 'c1', read('old'), 1000);
    expect(cache.get('x1', 'c1', 1001)).toBeUndefined();
    cache.setLeaseUntil(2000);
    cache.keep(cache.begin(), 'x1', 'c1', read('b'), 1000);
    expect(cache.get('x1', 'c1', 1999)).toEqual(read('b'));
    expect(cache.get('x1', 'c1', 2000)).toBeUndefined();
  });

  it('with ttlMs 0 it is off: never live, keeps nothing', () => {
    const cache = new RouteReadCache<RouteRead>({ ttlMs: 0, maxEntries: 10 });
    cache.setLive(true);
    cache.keep(cache.begin(), 'x1', 'c1', read('b'));
    expect(cache.isLive).toBe(false);
    expect(cache.get('x1', 'c1')).toBeUndefined();
  });
});

describe('the route cache never routes an unbound binding', () => {
  let redisServer: PrivateRedis;
  let db: TestDatabase;
  let prefix: string;
  const connections: Redis[] = [];
  const stops: Array<() => Promise<void>> = [];
  let tenant: string;

  /**
   * A controller: its index with a cache fed by its own subscription, and the binding service writing through it.
   * `local`: wired as app.ts wires it, the barrier knowing the cache its own index invalidates.
   */
  const LEASE_MS = 600;
  const controller = async (
    opts: { local?: boolean } = {},
  ): Promise<{ routes: RouteIndex; cache: RouteReadCache<RouteRead>; registry: BindingService; subscriber: Redis; cacheId: string; barrier: RouteWriteBarrier }> => {
    const redis = createRedis(redisServer.url);
    const subscriber = createRedis(redisServer.url);
    const acks = createRedis(redisServer.url);
    connections.push(redis, subscriber, acks);
    const cache = new RouteReadCache<RouteRead>({ ttlMs: 60_000, maxEntries: 1000 });
    const cacheId = randomUUID();
    const barrier = await RouteWriteBarrier.start({ subscriber: acks, redis, prefix, ackTimeoutMs: 100, localCacheId: opts.local ? cacheId : undefined });
    stops.push(await joinRouteCache(cache, { subscriber, redis, prefix, leaseMs: LEASE_MS, id: cacheId, localWriterId: opts.local ? barrier.id : undefined }));
    const routes = new RouteIndex(redis, prefix, numberHasher(HASH_KEY), cache, barrier);
    return { routes, cache, registry: new BindingService(db.pool, routes, undefined, { routeWriteTimeoutMs: 5000 }), subscriber, cacheId, barrier };
  };

  beforeAll(async () => {
    redisServer = await startPrivateRedis();
    db = await createTestDatabase();
    prefix = testRedisPrefix();
    tenant = (await new TenantStore(db.pool).create({ name: 't' })).id;
    const { routes, registry } = await controller();
    await registry.importNumbers(tenant, xs(0, 50).map((x) => ({ x, area: '010' })));
    await routes.rebuild([]);
  });
  afterAll(async () => {
    for (const stop of stops) await stop();
    for (const c of connections) c.disconnect();
    await db?.drop();
    await redisServer?.stop();
  });

  let seq = 0;
  const bindPair = async (registry: BindingService): Promise<Binding> => {
    seq += 2;
    return (await registry.bind({ tenantId: tenant, mode: 'axb', a: mobile(seq), b: mobile(seq + 1) })).binding;
  };
  const routed = async (routes: RouteIndex, x: string, caller: string): Promise<boolean> => 'route' in (await routes.lookupChecked(x, caller)).decision;

  it('serves a repeated lookup from the cache (no Redis read), and the controller that unbinds stops routing before the unbind answers', async () => {
    const { routes, registry, cache } = await controller();
    const binding = await bindPair(registry);
    expect(await routed(routes, binding.x, binding.a!)).toBe(true);
    expect(cache.get(binding.x, binding.a!)).toBeDefined();
    expect(await routed(routes, binding.x, binding.a!)).toBe(true);
    await registry.unbind(tenant, binding.id);
    // No wait for any message: the write itself dropped X's reads.
    expect(cache.get(binding.x, binding.a!)).toBeUndefined();
    expect(await routed(routes, binding.x, binding.a!)).toBe(false);
    expect(await routed(routes, binding.x, binding.b)).toBe(false);
  });

  it('another controller that cached the route no longer routes it once the unbind has answered, every time', async () => {
    const one = await controller();
    const other = await controller();
    for (let i = 0; i < 30; i++) {
      const binding = await bindPair(one.registry);
      expect(await routed(other.routes, binding.x, binding.a!)).toBe(true);
      expect(other.cache.get(binding.x, binding.a!)).toBeDefined();
      await one.registry.unbind(tenant, binding.id);
      // No wait: the unbind answered only once the other cache had acknowledged the removal.
      expect(other.cache.get(binding.x, binding.a!)).toBeUndefined();
      expect(await routed(other.routes, binding.x, binding.a!)).toBe(false);
      expect(await routed(other.routes, binding.x, binding.b)).toBe(false);
    }
  });

  it('the cache its own index invalidates is neither waited for nor acknowledges that index’s writes; another controller’s cache still is', async () => {
    const one = await controller({ local: true });
    const other = await controller();
    const spy = createRedis(redisServer.url);
    connections.push(spy);
    const ackedBy: string[] = [];
    spy.on('message', (_channel: string, message: string) => ackedBy.push(message.split('|')[0] ?? ''));
    await spy.subscribe(routeCacheAckChannel(prefix, one.barrier.id));
    for (let i = 0; i < 5; i++) {
      const binding = await bindPair(one.registry);
      expect(await routed(one.routes, binding.x, binding.a!)).toBe(true);
      expect(await routed(other.routes, binding.x, binding.a!)).toBe(true);
      expect(one.cache.get(binding.x, binding.a!)).toBeDefined();
      expect(other.cache.get(binding.x, binding.a!)).toBeDefined();
      // Its own cache stops hearing anything: the unbind must not wait for it (that would take the ack timeout and a lease).
      (one.subscriber as unknown as { stream: { pause(): void } }).stream.pause();
      const started = performance.now();
      await one.registry.unbind(tenant, binding.id);
      const took = performance.now() - started;
      (one.subscriber as unknown as { stream: { resume(): void } }).stream.resume();
      expect(took).toBeLessThan(100 + LEASE_MS);
      expect(one.cache.get(binding.x, binding.a!)).toBeUndefined();
      expect(await routed(one.routes, binding.x, binding.a!)).toBe(false);
      expect(other.cache.get(binding.x, binding.a!)).toBeUndefined();
      expect(await routed(other.routes, binding.x, binding.a!)).toBe(false);
    }
    await waitUntil('the other cache’s acknowledgements', () => ackedBy.includes(other.cacheId));
    // Give the own cache's subscription time to have handled every sync it heard.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(ackedBy).not.toContain(one.cacheId);
  });

  it('a cache that does not acknowledge is evicted and waited out: the unbind answers after its lease ended, and it routes nothing after', async () => {
    const one = await controller();
    const silent = await controller();
    const binding = await bindPair(one.registry);
    expect(await routed(silent.routes, binding.x, binding.a!)).toBe(true);
    expect(silent.cache.get(binding.x, binding.a!)).toBeDefined();
    // Its subscription stops being read (a stalled process, a full socket), while its lease is still renewed.
    (silent.subscriber as unknown as { stream: { pause(): void } }).stream.pause();
    const started = performance.now();
    await one.registry.unbind(tenant, binding.id);
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(100); // at least the acknowledgement timeout
    expect(took).toBeLessThan(100 + LEASE_MS + 2000);
    expect(silent.cache.get(binding.x, binding.a!)).toBeUndefined();
    expect(await routed(silent.routes, binding.x, binding.a!)).toBe(false);
    (silent.subscriber as unknown as { stream: { resume(): void } }).stream.resume();
  });

  it('a write waits for nobody when no cache holds a lease, and a stopped cache gives its lease up', async () => {
    const redis = createRedis(redisServer.url);
    connections.push(redis);
    const cache = new RouteReadCache<RouteRead>({ ttlMs: 60_000, maxEntries: 10 });
    const before = await redis.zcard(routeCacheMembersKey(prefix));
    const stop = await joinRouteCache(cache, { subscriber: createRedis(redisServer.url), redis, prefix, leaseMs: LEASE_MS });
    expect(await redis.zcard(routeCacheMembersKey(prefix))).toBe(before + 1);
    expect(cache.isLive).toBe(true);
    await stop();
    expect(await redis.zcard(routeCacheMembersKey(prefix))).toBe(before);
    expect(cache.isLive).toBe(false);
  });

  it('a miss cached on one controller routes as soon as another binds the pair', async () => {
    const one = await controller();
    const other = await controller();
    seq += 2;
    const [a, b] = [mobile(seq), mobile(seq + 1)];
    const x = xs(0, 1)[0]!;
    expect(await routed(other.routes, x, a)).toBe(false);
    const { binding } = await one.registry.bind({ tenantId: tenant, mode: 'axb', a, b, x });
    expect(binding.x).toBe(x);
    // No wait: the bind answered once the other cache had dropped its miss.
    expect(await routed(other.routes, x, a)).toBe(true);
  });

  it('while its subscription is lost the cache serves nothing, and it is live again once resubscribed', async () => {
    const { routes, cache, registry, subscriber } = await controller();
    const binding = await bindPair(registry);
    expect(await routed(routes, binding.x, binding.a!)).toBe(true);
    expect(cache.get(binding.x, binding.a!)).toBeDefined();
    subscriber.disconnect(true);
    await waitUntil("the cache down", () => !cache.isLive, 2000);
    expect(cache.get(binding.x, binding.a!)).toBeUndefined();
    await waitUntil("the cache live again", () => cache.isLive, 10_000);
    // Reads while it was down were not kept; the route is still read (now from Redis) and cached again.
    expect(await routed(routes, binding.x, binding.a!)).toBe(true);
    expect(cache.get(binding.x, binding.a!)).toBeDefined();
  });
});
