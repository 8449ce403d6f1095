import type { Redis } from 'ioredis';
import { numberHasher } from '../../src/domain/number-hash';
import type { RowDataPacket } from 'mysql2/promise';
import { BindingService } from '../../src/bindings/binding-service';
import { persistCallOutcomes, type CallbackBindingInput, type CallOutcome } from '../../src/stores/call-outcome';
import { createRedis } from '../../src/stores/redis';
import { RouteIndex } from '../../src/stores/route-index';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase } from '../support/mysql';
import { testRedisPrefix } from '../support/redis';

const X = '700100000009001';
const HOUR = 3_600_000;

describe('callback bindings go through the reuse invariant like every binding', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let redis: Redis;
  let routes: RouteIndex;
  let registry: BindingService;
  let tenant: string;
  let seq = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = createRedis('redis://127.0.0.1:6379');
    routes = new RouteIndex(redis, testRedisPrefix(), numberHasher('test-number-hash-key-0123456789abcdef'));
    registry = new BindingService(db.pool, routes);
    tenant = (await new TenantStore(db.pool).create({ name: 't' })).id;
    await registry.importNumbers(tenant, [{ x: X, area: '010' }]);
  });
  afterAll(async () => {
    await redis?.quit();
    await db?.drop();
  });

  /** What the callback worker does when a click-to-dial call ends: the Redis route at once, MySQL through the CDR batch. */
  async function callEnded(a: string, b: string, expiresAt: number, now: number, x = X): Promise<CallbackBindingInput> {
    seq += 1;
    const callId = `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`;
    const callback: CallbackBindingInput = { id: `cb-${seq}`, tenantId: tenant, x, a, b, expiresAt, callId, userData: null };
    const outcome: CallOutcome = {
      cdr: {
        callId, tenantId: tenant, kind: 'click_to_dial', bindingId: null, x, a, b, startedAt: now - 60_000, aRingAt: null,
        aAnswerAt: null, bRingAt: null, bAnswerAt: null, endedAt: now, talkSeconds: 0, hangupCause: 'NORMAL_CLEARING',
        hangupSide: 'b', result: 'b_no_answer', recordingRef: null, userData: null,
      },
      callbackBinding: callback,
    };
    await routes.put({ ...callback, kind: 'callback', restriction: 'both', record: false, maxDurationSeconds: null, announcement: null, allowList: [] });
    await persistCallOutcomes(db.pool, [outcome]);
    return callback;
  }

  const stateOf = async (id: string): Promise<string> => {
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT state FROM bindings WHERE id = ?', [id]);
    return String(rows[0]!.state);
  };
  const memberOf = async (number: string): Promise<string | null> => {
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT binding_id FROM binding_members WHERE x = ? AND number = ?', [X, number]);
    return rows[0] ? String(rows[0].binding_id) : null;
  };

  it('a newer callback for the same B on X replaces the older one: B reaches whoever called last', async () => {
    const now = Date.now();
    const b = '13900070001';
    const first = await callEnded('13800070001', b, now + 24 * HOUR, now);
    const second = await callEnded('13800070002', b, now + 24 * HOUR + 1000, now + 1000);
    expect(await stateOf(first.id)).toBe('unbound');
    expect(await stateOf(second.id)).toBe('active');
    expect(await memberOf(b)).toBe(second.id);
    expect(await routes.lookup(X, b)).toMatchObject({ route: { bindingId: second.id, target: '13800070002', kind: 'callback' } });
  });

  it('two calls to the same B in one CDR batch: the later callback holds (X, B), the other is history', async () => {
    const now = Date.now();
    const b = '13900070006';
    const outcome = (n: number, expiresAt: number): CallOutcome => {
      const callId = `00000000-0000-4000-9000-${String(n).padStart(12, '0')}`;
      return {
        cdr: {
          callId, tenantId: tenant, kind: 'click_to_dial', bindingId: null, x: X, a: `1380007100${n}`, b, startedAt: now - 60_000, aRingAt: null,
          aAnswerAt: null, bRingAt: null, bAnswerAt: null, endedAt: now, talkSeconds: 0, hangupCause: null, hangupSide: 'b',
          result: 'b_no_answer', recordingRef: null, userData: null,
        },
        callbackBinding: { id: `batch-${n}`, tenantId: tenant, x: X, a: `1380007100${n}`, b, expiresAt, callId, userData: null },
      };
    };
    await persistCallOutcomes(db.pool, [outcome(2, now + 24 * HOUR + 5000), outcome(1, now + 24 * HOUR)]);
    expect(await memberOf(b)).toBe('batch-2');
    expect(await stateOf('batch-2')).toBe('active');
    expect(await stateOf('batch-1')).toBe('unbound');
  });

  it('each binding a CDR batch writes or ends carries the version of its newest outbox row; a batch retried with new calls in it adds only theirs', async () => {
    const now = Date.now();
    const outcome = (n: number, b: string): CallOutcome => {
      const callId = `00000000-0000-4000-a000-${String(n).padStart(12, '0')}`;
      return {
        cdr: {
          callId, tenantId: tenant, kind: 'click_to_dial', bindingId: null, x: X, a: '13800072000', b, startedAt: now - 60_000, aRingAt: null,
          aAnswerAt: null, bRingAt: null, bAnswerAt: null, endedAt: now, talkSeconds: 0, hangupCause: null, hangupSide: 'b',
          result: 'b_no_answer', recordingRef: null, userData: null,
        },
        callbackBinding: { id: `ver-${n}`, tenantId: tenant, x: X, a: '13800072000', b, expiresAt: now + 24 * HOUR + n, callId, userData: null },
      };
    };
    await persistCallOutcomes(db.pool, [outcome(1, '13900072001'), outcome(2, '13900072002')]);
    // ver-3 supersedes ver-1 on (X, B); ver-1 and ver-2 come again (a retried batch) beside new calls.
    await persistCallOutcomes(db.pool, [outcome(1, '13900072001'), outcome(2, '13900072002'), outcome(3, '13900072001'), outcome(4, '13900072004')]);
    const [rows] = await db.pool.query<RowDataPacket[]>(
      `SELECT b.id, b.state, b.route_version, (SELECT MAX(o.id) FROM route_outbox o WHERE o.binding_id = b.id) AS newest,
              (SELECT COUNT(*) FROM route_outbox o WHERE o.binding_id = b.id) AS changes
         FROM bindings b WHERE b.id LIKE 'ver-%' ORDER BY b.id`,
    );
    expect(rows.map((r) => [r.id, r.state, Number(r.changes)])).toEqual([
      ['ver-1', 'unbound', 2], ['ver-2', 'active', 1], ['ver-3', 'active', 1], ['ver-4', 'active', 1],
    ]);
    for (const r of rows) expect(Number(r.route_version)).toBe(Number(r.newest));
    // the change that ends ver-1 comes before the one that gives (X, B) to ver-3
    const version = (id: string): number => Number(rows.find((r) => r.id === id)!.route_version);
    expect(version('ver-1')).toBeLessThan(version('ver-3'));
    const [cdrs] = await db.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM cdrs WHERE call_id LIKE '00000000-0000-4000-a000-%'");
    expect(Number(cdrs[0]!.n)).toBe(4);
  });

  it('the callback routes of calls that settle together go to Redis in one script call, in the order put', async () => {
    const evalshaCalls = async (): Promise<number> => Number(/^cmdstat_evalsha:calls=(\d+)/m.exec(await redis.info('commandstats'))?.[1] ?? 0);
    const now = Date.now();
    const b = '13900070201';
    const callback = (n: number, a: string, to = b) => ({
      id: `cb-together-${n}`, tenantId: tenant, x: X, a, b: to, expiresAt: now + HOUR, callId: `00000000-0000-4000-a000-${String(n).padStart(12, '0')}`,
      userData: null, kind: 'callback' as const, restriction: 'both' as const, record: false, maxDurationSeconds: null, announcement: null, allowList: [],
    });
    const before = await evalshaCalls();
    await Promise.all([routes.put(callback(1, '13800070201')), routes.put(callback(2, '13800070202', '13900070202')), routes.put(callback(3, '13800070203'))]);
    expect((await evalshaCalls()) - before).toBe(1);
    // B called by two of them: the one put last holds the route, as with two puts one after the other.
    expect(await routes.lookup(X, b)).toMatchObject({ route: { bindingId: 'cb-together-3', target: '13800070203', kind: 'callback' } });
    expect(await routes.lookup(X, '13900070202')).toMatchObject({ route: { bindingId: 'cb-together-2', target: '13800070202' } });
  });

  it('a late, older callback never takes the route back from a newer one', async () => {
    const now = Date.now();
    const b = '13900070002';
    const newer = await callEnded('13800070003', b, now + 24 * HOUR, now);
    const older = await callEnded('13800070004', b, now + 23 * HOUR, now);
    expect(await stateOf(older.id)).toBe('unbound');
    expect(await memberOf(b)).toBe(newer.id);
    expect(await routes.lookup(X, b)).toMatchObject({ route: { bindingId: newer.id } });
  });

  it('a callback never displaces an AXB binding that holds B on X; it is kept only as history', async () => {
    const now = Date.now();
    const b = '13900070003';
    const { binding } = await registry.bind({ tenantId: tenant, mode: 'axb', a: '13600070003', b, x: X });
    const callback = await callEnded('13800070005', b, now + 24 * HOUR, now);
    expect(await stateOf(callback.id)).toBe('unbound');
    expect(await memberOf(b)).toBe(binding.id);
    expect(await routes.lookup(X, b)).toMatchObject({ route: { bindingId: binding.id, target: '13600070003' } });
  });

  it('a callback is kept only as history on an X that an XB binding holds for another number', async () => {
    const x = '700100000009002';
    await registry.importNumbers(tenant, [{ x, area: '010' }]);
    const { binding } = await registry.bind({ tenantId: tenant, mode: 'xb', b: '13900070010', x });
    const callback = await callEnded('13800070010', '13900070011', Date.now() + 24 * HOUR, Date.now(), x);
    expect(await stateOf(callback.id)).toBe('unbound');
    const [members] = await db.pool.query<RowDataPacket[]>('SELECT number, binding_id FROM binding_members WHERE x = ? ORDER BY number', [x]);
    expect(members.map((m) => [String(m.number), String(m.binding_id)])).toEqual([
      ['*', binding.id],
      ['13900070010', binding.id],
    ]);
  });

  it('an AXB cannot take B on an X where B has a live callback binding', async () => {
    const now = Date.now();
    const b = '13900070004';
    await callEnded('13800070006', b, now + 24 * HOUR, now);
    await expect(registry.bind({ tenantId: tenant, mode: 'axb', a: '13600070004', b, x: X })).rejects.toMatchObject({ code: 'binding_conflict' });
  });

  it('writing the same outcome again changes nothing; an expired callback frees B on X and is kept as history', async () => {
    const now = Date.now();
    const b = '13900070005';
    const callback = await callEnded('13800070007', b, now + 1500, now);
    const outcomeAgain: CallOutcome = {
      cdr: {
        callId: callback.callId, tenantId: tenant, kind: 'click_to_dial', bindingId: null, x: X, a: callback.a, b, startedAt: now, aRingAt: null,
        aAnswerAt: null, bRingAt: null, bAnswerAt: null, endedAt: now, talkSeconds: 0, hangupCause: null, hangupSide: 'b',
        result: 'b_no_answer', recordingRef: null, userData: null,
      },
      callbackBinding: callback,
    };
    await persistCallOutcomes(db.pool, [outcomeAgain]);
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM bindings WHERE call_id = ?', [callback.callId]);
    expect(Number(rows[0]!.n)).toBe(1);

    // Real time must pass: the callback binding expires 1.5 s after `now`.
    await new Promise((r) => setTimeout(r, 1600));
    expect(await routes.lookup(X, b)).toEqual({ refused: 'unbound' });
    const expired = await registry.expireDue();
    expect(expired.map((e) => e.id)).toContain(callback.id);
    expect(await stateOf(callback.id)).toBe('expired');
    expect(await memberOf(b)).toBeNull();
    const { binding } = await registry.bind({ tenantId: tenant, mode: 'axb', a: '13600070005', b, x: X });
    expect(binding.state).toBe('active');
  });
  /** Outcome n of a batch: a call through x to b whose callback binding is live for a day. */
  function liveOutcome(tag: string, n: number, x: string, b: string, now: number): CallOutcome {
    const callId = `00000000-0000-4000-${tag}-${String(n).padStart(12, '0')}`;
    return {
      cdr: {
        callId, tenantId: tenant, kind: 'click_to_dial', bindingId: null, x, a: '13800073000', b, startedAt: now - 60_000, aRingAt: null,
        aAnswerAt: null, bRingAt: null, bAnswerAt: null, endedAt: now, talkSeconds: 0, hangupCause: null, hangupSide: 'b',
        result: 'b_no_answer', recordingRef: null, userData: null,
      },
      callbackBinding: { id: `${tag}-${n}`, tenantId: tenant, x, a: '13800073000', b, expiresAt: now + 24 * HOUR, callId, userData: null },
    };
  }

  it('concurrent CDR batches leaving callbacks to customers scattered over one X do not deadlock', async () => {
    const x = '700100000009003';
    await registry.importNumbers(tenant, [{ x, area: '010' }]);
    const deadlocks = async (): Promise<number> => {
      const [rows] = await db.pool.query<RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'");
      return Number(rows[0]!.Value);
    };
    const before = await deadlocks();
    const now = Date.now();
    let n = 0;
    for (let round = 0; round < 3; round++) {
      // four batches at once, their customers' numbers interleaved over X's range (i times a prime, modulo 10^8)
      const batches = [0, 1, 2, 3].map(() => Array.from({ length: 150 }, () => {
        n += 1;
        return liveOutcome('d000', n, x, `139${String((n * 7_919_993) % 100_000_000).padStart(8, '0')}`, now);
      }));
      await Promise.all(batches.map((batch) => persistCallOutcomes(db.pool, batch)));
    }
    expect(await deadlocks()).toBe(before);
    const [members] = await db.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM binding_members WHERE x = ?', [x]);
    expect(Number(members[0]!.n)).toBe(n);
  });

  it('an AXB taking (X, B) while a CDR batch is between its read and its write: the batch runs again and keeps its callback as history', async () => {
    const x = '700100000009004';
    const b = '13900074001';
    await registry.importNumbers(tenant, [{ x, area: '010' }]);
    // Another connection holds the outbox's last gap, so the batch waits after its read of (X, B), before its inserts.
    const blocker = await db.pool.getConnection();
    try {
      await blocker.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await blocker.beginTransaction();
      await blocker.query('SELECT id FROM route_outbox WHERE id > (SELECT COALESCE(MAX(id), 0) FROM route_outbox) FOR UPDATE');
      const outcome = liveOutcome('e000', 1, x, b, Date.now());
      const written = persistCallOutcomes(db.pool, [outcome]);
      for (let i = 0; i < 200; i++) {
        const [waiting] = await db.pool.query<RowDataPacket[]>(
          "SELECT COUNT(*) AS n FROM information_schema.processlist WHERE db = DATABASE() AND info LIKE 'INSERT INTO route_outbox%'",
        );
        if (Number(waiting[0]!.n) > 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      // The AXB, written as a bind writes it (its route aside): its binding row and its member row for (X, B).
      const axbId = '00000000-0000-4000-e000-00000000a0b0';
      const axb = (async () => {
        await db.pool.query(
          `INSERT INTO bindings (id, tenant_id, kind, x, a, b, state, expires_at, created_at, updated_at) VALUES (?, ?, 'axb', ?, '13600074001', ?, 'active', ?, NOW(3), NOW(3))`,
          [axbId, tenant, x, b, new Date(Date.now() + 24 * HOUR)],
        );
        await db.pool.query('INSERT INTO binding_members (x, number, binding_id, expires_at) VALUES (?, ?, ?, ?), (?, ?, ?, ?)', [
          x, '13600074001', axbId, new Date(Date.now() + 24 * HOUR), x, b, axbId, new Date(Date.now() + 24 * HOUR),
        ]);
      })();
      let timer: NodeJS.Timeout | undefined;
      const axbDone = await Promise.race([
        axb.then(() => 'written', (err: unknown) => `failed: ${String(err)}`),
        new Promise((r) => (timer = setTimeout(() => r('waiting'), 2000))),
      ]);
      clearTimeout(timer);
      await blocker.commit();
      expect(axbDone).toBe('written');
      await written;
      expect(await stateOf(outcome.callbackBinding!.id)).toBe('unbound');
      const [held] = await db.pool.query<RowDataPacket[]>('SELECT binding_id FROM binding_members WHERE x = ? AND number = ?', [x, b]);
      expect(String(held[0]!.binding_id)).toBe(axbId);
      const [cdrs] = await db.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM cdrs WHERE call_id = ?', [outcome.cdr.callId]);
      expect(Number(cdrs[0]!.n)).toBe(1);
    } finally {
      await blocker.rollback().catch(() => undefined);
      blocker.release();
    }
  });
});
