/**
 * The route index can never route an unbound binding (issue 8, item 5). MySQL is the truth; every
 * routing change reaches Redis through the outbox, versioned. Real MariaDB, and a redis-server of
 * this suite's own for the faults (made to refuse writes, or flushed), so the shared Redis is never disturbed.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Redis } from 'ioredis';
import { numberHasher } from '../../src/domain/number-hash';
import type { Binding } from '../../src/domain/binding-rules';
import { redisKeys, routeChangesChannel } from '../../src/stores/keys';
import { BindingService } from '../../src/bindings/binding-service';
import { createMysqlPool, type Pool } from '../../src/stores/mysql';
import { createRedis } from '../../src/stores/redis';
import { RouteIndex } from '../../src/stores/route-index';
import { RouteOutbox, versionedBinding } from '../../src/stores/route-outbox';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase, type TestDatabase } from '../support/mysql';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { testRedisPrefix } from '../support/redis';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';

const HASH_KEY = 'test-number-hash-key-0123456789abcdef';
const xs = (from: number, count: number) => Array.from({ length: count }, (_, i) => `7001000${String(from + i).padStart(8, '0')}`);
const mobile = (i: number) => `1381${String(i).padStart(7, '0')}`;

describe('the route index never routes an unbound binding', () => {
  let redisServer: PrivateRedis;
  let db: TestDatabase;
  let redis: Redis;
  let prefix: string;
  let routes: RouteIndex;
  let registry: BindingService;
  let tenant: string;

  beforeAll(async () => {
    redisServer = await startPrivateRedis();
    db = await createTestDatabase();
    redis = createRedis(redisServer.url);
    prefix = testRedisPrefix();
    routes = new RouteIndex(redis, prefix, numberHasher(HASH_KEY));
    // Far above the 400 ms write pause of the first case: on a busy host the write lands some time after the pause ends.
    registry = new BindingService(db.pool, routes, undefined, { routeWriteTimeoutMs: 2000 });
    tenant = (await new TenantStore(db.pool).create({ name: 't' })).id;
    await registry.importNumbers(tenant, xs(0, 200).map((x) => ({ x, area: '010' })));
  });
  afterEach(async () => {
    await redisServer.admin.config('SET', 'min-replicas-to-write', '0');
  });
  afterAll(async () => {
    redis?.disconnect();
    await db?.drop();
    await redisServer?.stop();
  });

  const routed = async (x: string, caller: string, via: RouteIndex = routes) => 'route' in (await via.lookup(x, caller));
  const outboxRows = async (bindingId: string): Promise<number> => {
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM route_outbox WHERE binding_id = ?', [bindingId]);
    return Number(rows[0]?.n);
  };
  const stateOf = async (id: string): Promise<string> => {
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT state FROM bindings WHERE id = ?', [id]);
    return String(rows[0]?.state);
  };
  let seq = 0;
  const bindPair = async (ttlSeconds?: number): Promise<Binding> => {
    seq += 2;
    return (await registry.bind({ tenantId: tenant, mode: 'axb', a: mobile(seq), b: mobile(seq + 1), ttlSeconds })).binding;
  };
  /** Redis refuses every write (as a master with too few replicas does: NOREPLICAS), reads still work. */
  const refuseWrites = () => redisServer.admin.config('SET', 'min-replicas-to-write', '1');
  const acceptWrites = () => redisServer.admin.config('SET', 'min-replicas-to-write', '0');

  it('a change this controller is still applying is left to it by its own outbox task, not applied a second time', async () => {
    await registry.drainPendingRoutes(5000);
    const outboxSize = async (): Promise<number> => Number((await db.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM route_outbox'))[0][0]?.n);
    expect(await outboxSize()).toBe(0);
    // Writes wait (the new binding's routes among them); reads go on.
    await redisServer.admin.call('CLIENT', 'PAUSE', '400', 'WRITE');
    const bound = bindPair();
    await waitUntil('the bind committed, its route change in the outbox', async () => (await outboxSize()) === 1);
    expect(await registry.applyPendingRoutes()).toBe(0);
    const binding = await bound;
    expect(await routed(binding.x, binding.a!)).toBe(true);
    await waitUntil('its row dropped by the bind itself', async () => (await outboxRows(binding.id)) === 0);
  });

  it('a commit acknowledged while the outbox task reads its page is left to the request that made it', async () => {
    await registry.drainPendingRoutes(5000);
    const binding = await bindPair();
    const outbox = new RouteOutbox(db.pool, routes, 2000);
    // The bind's row, committed: as seen by a reader before the request has heard its commit acknowledged.
    const [res] = await db.pool.query<ResultSetHeader>('INSERT INTO route_outbox (binding_id) VALUES (?)', [binding.id]);
    await db.pool.query('UPDATE bindings SET route_version = ? WHERE id = ?', [res.insertId, binding.id]);
    const [[row]] = await db.pool.query<RowDataPacket[]>('SELECT * FROM bindings WHERE id = ?', [binding.id]);
    const pageRead = outbox.applyPending();
    // The acknowledgement arrives while the page's SELECT is in flight: the request claims its row.
    const applied = outbox.applyCommitted({ version: res.insertId, binding: versionedBinding(row!) });
    expect(await pageRead).toBe(0);
    await applied;
    expect(await outboxRows(binding.id)).toBe(0);
    expect(await routed(binding.x, binding.a!)).toBe(true);
  });

  it('with Redis refusing writes, unbind answers 503 route_index_unavailable (never success), and the removal lands once Redis is back', async () => {
    const binding = await bindPair();
    expect(await routed(binding.x, binding.a!)).toBe(true);
    await refuseWrites();
    await expect(registry.unbind(tenant, binding.id)).rejects.toMatchObject({ code: 'route_index_unavailable', kind: 'unavailable' });
    // Committed in MySQL, its removal waiting in the outbox; a retry is not told success either.
    expect(await stateOf(binding.id)).toBe('unbound');
    expect(await outboxRows(binding.id)).toBe(1);
    await expect(registry.unbind(tenant, binding.id)).rejects.toMatchObject({ code: 'route_index_unavailable' });
    await expect(registry.applyPendingRoutes()).rejects.toThrow(/NOREPLICAS/);
    await acceptWrites();
    // Whoever runs the outbox next (here this instance's scheduler would) removes it.
    expect(await registry.applyPendingRoutes()).toBeGreaterThanOrEqual(1);
    expect(await routed(binding.x, binding.a!)).toBe(false);
    expect(await routed(binding.x, binding.b)).toBe(false);
    expect(await outboxRows(binding.id)).toBe(0);
    await expect(registry.unbind(tenant, binding.id)).resolves.toMatchObject({ state: 'unbound' });
  });

  it('a backlog of more than one page is drained in one tick, not one page a second', async () => {
    const kept = await bindPair();
    const gone = await bindPair();
    await refuseWrites();
    await expect(registry.unbind(tenant, gone.id)).rejects.toMatchObject({ code: 'route_index_unavailable' });
    await acceptWrites();
    // As after a burst of connected calls: many rows waiting, each a change of a binding MySQL holds.
    await db.pool.query('INSERT INTO route_outbox (binding_id) VALUES ?', [Array.from({ length: 1_200 }, (_, i) => [i % 2 ? kept.id : gone.id])]);
    expect(await registry.drainPendingRoutes(30_000)).toBeGreaterThanOrEqual(1_201);
    const [left] = await db.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM route_outbox');
    expect(Number(left[0]?.n)).toBe(0);
    expect(await routed(kept.x, kept.a!)).toBe(true);
    expect(await routed(gone.x, gone.a!)).toBe(false);
  });

  it('a retried unbind removes the routes again, even when the index had lost the removal', async () => {
    const binding = await bindPair();
    await registry.unbind(tenant, binding.id);
    expect(await routed(binding.x, binding.a!)).toBe(false);
    // An old write of the binding arriving late is refused: the removal left a newer version behind.
    await routes.put(binding);
    expect(await routed(binding.x, binding.a!)).toBe(false);
    // Redis lost everything, then the late write came: the binding routes again, wrongly...
    await redisServer.admin.flushall();
    await routes.put(binding);
    expect(await routed(binding.x, binding.a!)).toBe(true);
    // ...until the client retries its unbind, which answers only once the routes are gone again.
    await expect(registry.unbind(tenant, binding.id)).resolves.toMatchObject({ state: 'unbound' });
    expect(await routed(binding.x, binding.a!)).toBe(false);
    expect(await routed(binding.x, binding.b)).toBe(false);
  });

  it('Redis flushed: the index is rebuilt from MySQL, and a reconcile finds and repairs drift', async () => {
    const kept = [await bindPair(), await bindPair()];
    const gone = await bindPair();
    await registry.unbind(tenant, gone.id);
    await redisServer.admin.flushall();
    expect(await routed(kept[0]!.x, kept[0]!.a!)).toBe(false);
    await routes.rebuild(await registry.listActive());
    expect(await routes.isReady()).toBe(true);
    for (const b of kept) {
      expect(await routed(b.x, b.a!)).toBe(true);
      expect(await routed(b.x, b.b)).toBe(true);
    }
    expect(await routed(gone.x, gone.a!)).toBe(false);

    // Drift: a route of the unbound binding came back, a route of a bound one went missing.
    await routes.put(gone);
    expect(await redis.del(redisKeys(prefix).route(kept[1]!.x, numberHasher(HASH_KEY)(kept[1]!.a!)))).toBe(1);
    expect(await routed(gone.x, gone.a!)).toBe(true);
    // MySQL read a page at a time (one binding per page here), as the controller's periodic reconcile reads it.
    // A pass the controller's stop ends early rejects and repairs nothing.
    const stopped = new AbortController();
    stopped.abort(new Error('stopping'));
    await expect(routes.reconcile(() => registry.listActivePages(Date.now(), 1), Date.now(), stopped.signal)).rejects.toThrow('stopping');
    expect(await routed(gone.x, gone.a!)).toBe(true);
    const drift = await routes.reconcile(() => registry.listActivePages(Date.now(), 1));
    expect(drift).toEqual({ found: 3, repaired: 3 }); // gone's two routes, kept[1]'s missing one
    expect(await routed(gone.x, gone.a!)).toBe(false);
    expect(await routed(gone.x, gone.b)).toBe(false);
    expect(await routed(kept[1]!.x, kept[1]!.a!)).toBe(true);
    expect(await routed(kept[1]!.x, kept[1]!.b)).toBe(true);
    // Nothing left to repair.
    expect(await routes.reconcile(() => registry.listActive())).toEqual({ found: 0, repaired: 0 });
  });

  it('a binding made while the reconcile scanned Redis is not drift: its request wrote its routes', async () => {
    await bindPair();
    let madeDuringPass: Binding | null = null;
    const drift = await routes.reconcile(async () => {
      // Redis has been scanned by now; MySQL is read after this bind committed and wrote its routes.
      madeDuringPass = await bindPair();
      return registry.listActive();
    });
    expect(madeDuringPass).not.toBeNull();
    expect(drift).toEqual({ found: 0, repaired: 0 });
  });

  it('a rebuild from an older read of MySQL never brings back a binding unbound meanwhile', async () => {
    const binding = await bindPair();
    const snapshot = await registry.listActive();
    await registry.unbind(tenant, binding.id);
    await routes.rebuild(snapshot);
    expect(await routed(binding.x, binding.a!)).toBe(false);
  });

  it('an older change applied after a newer one changes nothing', async () => {
    const binding = await bindPair();
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT route_version FROM bindings WHERE id = ?', [binding.id]);
    const bound = Number(rows[0]!.route_version);
    await registry.unbind(tenant, binding.id);
    await routes.apply([{ version: bound, binding: { ...binding, routeVersion: bound } }]);
    expect(await routed(binding.x, binding.a!)).toBe(false);
  });

  it('every route change is published on the route-changes channel, with the route key', async () => {
    const subscriber = redis.duplicate();
    const seen: string[] = [];
    await subscriber.subscribe(routeChangesChannel(prefix));
    subscriber.on('message', (_channel: string, key: string) => seen.push(key));
    try {
      const binding = await bindPair();
      await registry.unbind(tenant, binding.id);
      await waitUntil('four route changes (two routes bound, then removed)', () => seen.length >= 4);
      expect(new Set(seen).size).toBe(2);
      for (const key of seen) expect(key.startsWith(`${prefix}:route:{${binding.x}}:`)).toBe(true);
    } finally {
      subscriber.disconnect();
    }
  });

  it('an update moves the routes with the numbers; an update that Redis refused is applied later', async () => {
    const binding = await bindPair();
    const newA = mobile(900_001);
    await registry.update(tenant, binding.id, { a: newA }, 'test');
    expect(await routed(binding.x, binding.a!)).toBe(false);
    expect(await routed(binding.x, newA)).toBe(true);
    await refuseWrites();
    const newerA = mobile(900_002);
    await expect(registry.update(tenant, binding.id, { a: newerA }, 'test')).rejects.toMatchObject({ code: 'route_index_unavailable' });
    expect(await routed(binding.x, newA)).toBe(true);
    await acceptWrites();
    await registry.applyPendingRoutes();
    expect(await routed(binding.x, newA)).toBe(false);
    expect(await routed(binding.x, newerA)).toBe(true);
  });

  it('expiry: the sweep ends the binding and the outbox takes its routes away', async () => {
    const binding = await bindPair(60);
    const later = binding.expiresAt + 1;
    expect(await registry.expireDue(later)).toEqual([expect.objectContaining({ id: binding.id })]);
    expect(await outboxRows(binding.id)).toBe(1);
    await registry.applyPendingRoutes();
    expect(await routed(binding.x, binding.a!)).toBe(false);
    expect(await routed(binding.x, binding.b)).toBe(false);
  });

  it('a process killed (SIGKILL) between the commit and the index write: the next outbox run removes the route', async () => {
    const binding = await bindPair();
    // A Redis that accepts connections and never answers: the child's index write hangs after its commit.
    const silent: Socket[] = [];
    const blackHole: Server = createServer((s) => silent.push(s));
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const address = blackHole.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/bindings/support/unbind-in-child.ts'], {
      env: { ...process.env, MYSQL_URL: db.url, ROUTE_INDEX_URL: `redis://127.0.0.1:${port}`, REDIS_PREFIX: prefix, TENANT_ID: tenant, BINDING_ID: binding.id },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += String(d)));
    child.stderr.on('data', (d: Buffer) => (output += String(d)));
    try {
      await waitUntil('the child to commit its unbind', async () => (await stateOf(binding.id)) === 'unbound', 20_000);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      expect(output).not.toContain('answered');
      // The gap the outbox closes: committed, still in the index.
      expect(await routed(binding.x, binding.a!)).toBe(true);
      expect(await outboxRows(binding.id)).toBe(1);
      await registry.applyPendingRoutes();
      expect(await routed(binding.x, binding.a!)).toBe(false);
      expect(await routed(binding.x, binding.b)).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      for (const s of silent) s.destroy();
      await new Promise<void>((resolve) => blackHole.close(() => resolve()));
    }
  });

  describe('two instances racing on the same bindings', () => {
    let otherPool: Pool;
    let otherRedis: Redis;
    let other: BindingService;
    let otherRoutes: RouteIndex;

    beforeAll(() => {
      otherPool = createMysqlPool(db.url);
      otherRedis = createRedis(redisServer.url);
      otherRoutes = new RouteIndex(otherRedis, prefix, numberHasher(HASH_KEY));
      other = new BindingService(otherPool, otherRoutes, undefined, { routeWriteTimeoutMs: 2000 });
    });
    afterAll(async () => {
      otherRedis.disconnect();
      await otherPool.end();
    });

    it('one updates while the other unbinds, and both unbind: whatever order wins, MySQL and Redis agree', async () => {
      const bindings = await Promise.all(Array.from({ length: 30 }, () => bindPair()));
      const newAs = bindings.map((_, i) => mobile(800_000 + i));
      await Promise.all(
        bindings.flatMap((b, i) => [
          registry.update(tenant, b.id, { a: newAs[i]! }, 'one').catch((err: unknown) => err),
          other.unbind(tenant, b.id),
          i % 2 === 0 ? registry.unbind(tenant, b.id) : Promise.resolve(),
        ]),
      );
      for (const [i, b] of bindings.entries()) {
        expect(await stateOf(b.id)).toBe('unbound');
        for (const caller of [b.a!, b.b, newAs[i]!]) {
          expect(await routed(b.x, caller)).toBe(false);
          expect(await routed(b.x, caller, otherRoutes)).toBe(false);
        }
      }
      expect(await routes.reconcile(() => registry.listActive())).toEqual({ found: 0, repaired: 0 });
    });

    it('binds racing on one pool from two instances: every active binding routes, nothing else does', async () => {
      const made = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 === 0 ? registry : other).bind({ tenantId: tenant, mode: 'axb', a: mobile(700_000 + i), b: mobile(700_100 + (i % 5)) }),
        ),
      );
      await Promise.all(made.slice(0, 20).map(({ binding }, i) => (i % 2 === 0 ? other : registry).unbind(tenant, binding.id)));
      for (const [i, { binding }] of made.entries()) {
        expect(await routed(binding.x, binding.a!)).toBe(i >= 20);
      }
      expect(await routes.reconcile(() => registry.listActive())).toEqual({ found: 0, repaired: 0 });
    });
  });
});

describe('DELETE /v1/bindings/{id} with Redis refusing writes (the observed defect)', () => {
  let redisServer: PrivateRedis;
  let sys: TestSystem;

  beforeAll(async () => {
    redisServer = await startPrivateRedis();
    sys = await startTestSystem({ env: { REDIS_URL: redisServer.url, ROUTE_WRITE_TIMEOUT_MS: '500' }, workers: false });
    await sys.app.bindings.importNumbers(sys.tenantId, xs(300, 5).map((x) => ({ x, area: '010' })));
  });
  afterAll(async () => {
    await redisServer?.admin.config('SET', 'min-replicas-to-write', '0');
    await sys?.stop();
    await redisServer?.stop();
  });

  it('answers 503 route_index_unavailable, a retry 503 too, and 200 only once A can no longer reach B', async () => {
    const a = mobile(1);
    const b = mobile(2);
    const created = await sys.api<Binding>('POST', '/v1/bindings', { mode: 'axb', a, b });
    expect(created.status).toBe(201);
    const { id, x } = created.body;
    expect('route' in (await sys.app.routes.lookup(x, a))).toBe(true);

    await redisServer.admin.config('SET', 'min-replicas-to-write', '1');
    const refused = await sys.api<{ error: { code: string } }>('DELETE', `/v1/bindings/${id}`);
    expect(refused).toMatchObject({ status: 503, body: { error: { code: 'route_index_unavailable' } } });
    expect(await sys.api('DELETE', `/v1/bindings/${id}`)).toMatchObject({ status: 503 });

    await redisServer.admin.config('SET', 'min-replicas-to-write', '0');
    // The controller's own outbox run removes the route without anyone asking again.
    await waitUntil('the route to be removed by the outbox', async () => !('route' in (await sys.app.routes.lookup(x, a))), 10_000);
    expect(await sys.api('DELETE', `/v1/bindings/${id}`)).toMatchObject({ status: 200, body: { state: 'unbound' } });
    expect('route' in (await sys.app.routes.lookup(x, b))).toBe(false);
  });
});
