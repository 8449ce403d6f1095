/**
 * The routing path's local cache of the route index (issue 8, item 7) never routes an unbound
 * binding: it is invalidated by the same durable path that removes routes (the outbox's index
 * writes, published on the route-changes channel), on the controller that made the change at once
 * and on the others as they hear it; it serves nothing while it cannot hear. Real MariaDB, and a
 * redis-server of this suite's own.
 */
import type { Redis } from 'ioredis';
import { numberHasher } from '../../src/domain/number-hash';
import type { Binding } from '../../src/domain/binding-rules';
import { routeChangesChannel } from '../../src/stores/keys';
import { BindingService } from '../../src/bindings/binding-service';
import { createRedis } from '../../src/stores/redis';
import { listenForRouteChanges, RouteReadCache } from '../../src/stores/route-cache';
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

  /** A controller: its index with a cache fed by its own subscription, and the binding service writing through it. */
  const controller = async (): Promise<{ routes: RouteIndex; cache: RouteReadCache<RouteRead>; registry: BindingService; subscriber: Redis }> => {
    const redis = createRedis(redisServer.url);
    const subscriber = createRedis(redisServer.url);
    connections.push(redis, subscriber);
    const cache = new RouteReadCache<RouteRead>({ ttlMs: 60_000, maxEntries: 1000 });
    stops.push(await listenForRouteChanges(cache, subscriber, routeChangesChannel(prefix)));
    const routes = new RouteIndex(redis, prefix, numberHasher(HASH_KEY), cache);
    return { routes, cache, registry: new BindingService(db.pool, routes, undefined, { routeWriteTimeoutMs: 2000 }), subscriber };
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

  it('another controller that cached the route stops routing it once the removal is published', async () => {
    const one = await controller();
    const other = await controller();
    const binding = await bindPair(one.registry);
    expect(await routed(other.routes, binding.x, binding.a!)).toBe(true);
    expect(other.cache.get(binding.x, binding.a!)).toBeDefined();
    await one.registry.unbind(tenant, binding.id);
    await waitUntil("the removal heard", () => other.cache.get(binding.x, binding.a!) === undefined, 2000);
    expect(await routed(other.routes, binding.x, binding.a!)).toBe(false);
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
    await waitUntil("the new route heard", async () => routed(other.routes, x, a), 2000);
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
