import type { RowDataPacket } from 'mysql2/promise';
import type { CdrRecord } from '../../src/domain/call';
import { ValidationError } from '../../src/domain/errors';
import { persistCallOutcome, persistCallOutcomes } from '../../src/stores/call-outcome';
import { CallStore } from '../../src/stores/call-store';
import { CdrStore } from '../../src/stores/cdr-store';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase, type TestDatabase } from '../support/mysql';
import { makeCall, makeOutcome } from './fixtures';

async function count(db: TestDatabase, sql: string, params: unknown[]): Promise<number> {
  const [rows] = await db.pool.query<RowDataPacket[]>(sql, params);
  return Number(rows[0]?.n);
}

describe('persistCallOutcome', () => {
  let db: TestDatabase;
  let tenantA: string;
  let tenantB: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    const tenants = new TenantStore(db.pool);
    tenantA = (await tenants.create({ name: 'A' })).id;
    tenantB = (await tenants.create({ name: 'B' })).id;
  });
  afterAll(() => db.drop());

  it('writes the CDR, completes the call and leaves the callback binding, in one go', async () => {
    const calls = new CallStore(db.pool);
    const { call } = await calls.insert(makeCall(tenantA));
    // A call that ended a minute ago: its callback binding is live (one from months ago would be written as expired).
    const outcome = makeOutcome(tenantA, { callId: call.id, startedAt: Date.now() - 130_000, result: 'b_busy', hangupSide: 'b', hangupCause: 'USER_BUSY', talkSeconds: 0, bAnswerAt: null });
    await persistCallOutcome(db.pool, outcome);

    expect(await new CdrStore(db.pool).get(tenantA, call.id)).toEqual(outcome.cdr);
    expect(await calls.getById(call.id)).toMatchObject({
      state: 'completed',
      result: 'b_busy',
      hangupCause: 'USER_BUSY',
      hangupSide: 'b',
      completedAt: outcome.cdr.endedAt,
    });
    const [b] = await db.pool.query<RowDataPacket[]>('SELECT * FROM bindings WHERE id = ?', [outcome.callbackBinding!.id]);
    expect(b[0]).toMatchObject({ tenant_id: tenantA, kind: 'callback', state: 'active', call_id: call.id, x: outcome.cdr.x, a: outcome.cdr.a, b: outcome.cdr.b });
    expect((b[0]!.expires_at as Date).getTime()).toBe(outcome.callbackBinding!.expiresAt);
  });

  it('is idempotent: the same outcome written again (alone, in a batch, concurrently) leaves the same rows', async () => {
    const outcome = makeOutcome(tenantA);
    await persistCallOutcome(db.pool, outcome);
    await persistCallOutcome(db.pool, outcome);
    await persistCallOutcomes(db.pool, [outcome, outcome, makeOutcome(tenantA)]);
    await Promise.all([1, 2, 3, 4].map(() => persistCallOutcome(db.pool, outcome)));
    expect(await count(db, 'SELECT COUNT(*) n FROM cdrs WHERE call_id = ?', [outcome.cdr.callId])).toBe(1);
    expect(await count(db, 'SELECT COUNT(*) n FROM bindings WHERE call_id = ?', [outcome.cdr.callId])).toBe(1);
  });

  it('writes a CDR for a call with no calls row (a call to X)', async () => {
    const outcome = makeOutcome(tenantA, { kind: 'axb', bindingId: 'b6a2c7e4-0000-4000-8000-000000000001' }, false);
    await persistCallOutcome(db.pool, outcome);
    expect(await new CdrStore(db.pool).get(tenantA, outcome.cdr.callId)).toEqual(outcome.cdr);
  });

  it('completes each call of a batch with its own CDR', async () => {
    const calls = new CallStore(db.pool);
    const busy = (await calls.insert(makeCall(tenantA))).call;
    const cancelled = (await calls.insert(makeCall(tenantA))).call;
    await persistCallOutcomes(db.pool, [
      makeOutcome(tenantA, { callId: busy.id, result: 'b_busy', hangupSide: 'b', hangupCause: 'USER_BUSY', startedAt: 1_700_000_000_000 }),
      makeOutcome(tenantA, { kind: 'axb', result: 'connected' }, false),
      makeOutcome(tenantA, { callId: cancelled.id, result: 'cancelled', hangupSide: 'platform', hangupCause: 'ORIGINATOR_CANCEL', startedAt: 1_700_000_100_000 }),
    ]);
    expect(await calls.getById(busy.id)).toMatchObject({ state: 'completed', result: 'b_busy', hangupSide: 'b', hangupCause: 'USER_BUSY', completedAt: 1_700_000_069_000 });
    expect(await calls.getById(cancelled.id)).toMatchObject({
      state: 'completed', result: 'cancelled', hangupSide: 'platform', hangupCause: 'ORIGINATOR_CANCEL', completedAt: 1_700_000_169_000,
    });
  });

  it('keeps the first completion of a call', async () => {
    const calls = new CallStore(db.pool);
    const { call } = await calls.insert(makeCall(tenantA));
    await calls.markCompleted(call.id, { result: 'cancelled', hangupCause: 'ORIGINATOR_CANCEL', hangupSide: 'platform', completedAt: 1_700_000_000_000 });
    await persistCallOutcome(db.pool, makeOutcome(tenantA, { callId: call.id, result: 'connected' }));
    expect((await calls.getById(call.id))?.result).toBe('cancelled');
  });

  it('does not complete another tenant\'s call through a CDR naming it', async () => {
    const calls = new CallStore(db.pool);
    const { call } = await calls.insert(makeCall(tenantA));
    await persistCallOutcome(db.pool, makeOutcome(tenantB, { callId: call.id }));
    expect((await calls.getById(call.id))?.completedAt).toBeNull();
  });
});

describe('CdrStore.list', () => {
  let db: TestDatabase;
  let cdrs: CdrStore;
  const T = 'tenant-list';
  const OTHER = 'tenant-other';
  const base = Date.UTC(2026, 4, 1, 0, 0, 0, 0);
  const all: CdrRecord[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    cdrs = new CdrStore(db.pool);
    const outcomes = [];
    for (let i = 0; i < 57; i++) {
      // groups of 3 share a start time: pagination must not skip or repeat rows with equal started_at
      const o = makeOutcome(T, {
        startedAt: base + Math.floor(i / 3) * 60_000,
        result: i % 4 === 0 ? 'a_no_answer' : 'connected',
        userData: i % 5 === 0 ? 'vip' : `u${i}`,
      }, false);
      outcomes.push(o);
      all.push(o.cdr);
    }
    for (let i = 0; i < 10; i++) outcomes.push(makeOutcome(OTHER, { startedAt: base + i * 60_000 }, false));
    await persistCallOutcomes(db.pool, outcomes);
  });
  afterAll(() => db.drop());

  async function collect(q: Parameters<CdrStore['list']>[1]): Promise<CdrRecord[]> {
    const out: CdrRecord[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await cdrs.list(T, { ...q, cursor });
      out.push(...page.items);
      cursor = page.nextCursor;
      if (++pages > 100) throw new Error('pagination does not end');
    } while (cursor);
    return out;
  }

  it('pages through every row exactly once, newest first', async () => {
    const got = await collect({ limit: 7 });
    expect(got).toHaveLength(57);
    expect(new Set(got.map((c) => c.callId)).size).toBe(57);
    for (let i = 1; i < got.length; i++) expect(got[i - 1]!.startedAt).toBeGreaterThanOrEqual(got[i]!.startedAt);
    expect(got.every((c) => c.tenantId === T)).toBe(true);
    const first = await cdrs.list(T, { limit: 57 });
    expect(first.nextCursor).toBeNull();
    expect(first.items.map((c) => c.callId)).toEqual(got.map((c) => c.callId));
  });

  it('filters by time range, result and userData', async () => {
    const from = base + 5 * 60_000;
    const to = base + 10 * 60_000;
    const inRange = await collect({ from, to, limit: 4 });
    expect(inRange.map((c) => c.callId).sort()).toEqual(all.filter((c) => c.startedAt >= from && c.startedAt < to).map((c) => c.callId).sort());
    expect(inRange).toHaveLength(15);

    const noAnswer = await collect({ result: 'a_no_answer', limit: 5 });
    expect(noAnswer.map((c) => c.callId).sort()).toEqual(all.filter((c) => c.result === 'a_no_answer').map((c) => c.callId).sort());

    const vip = await collect({ userData: 'vip', result: 'connected', limit: 500 });
    expect(vip.map((c) => c.callId).sort()).toEqual(
      all.filter((c) => c.userData === 'vip' && c.result === 'connected').map((c) => c.callId).sort(),
    );
  });

  it('never shows another tenant\'s CDRs', async () => {
    const mine = all[0]!;
    expect(await cdrs.get(OTHER, mine.callId)).toBeNull();
    const theirs = await cdrs.list(OTHER, { limit: 500 });
    expect(theirs.items).toHaveLength(10);
    expect(theirs.items.some((c) => c.tenantId !== OTHER)).toBe(false);
    // a cursor from one tenant's listing gives nothing of that tenant to another
    const page = await cdrs.list(T, { limit: 2 });
    const leaked = await cdrs.list(OTHER, { limit: 500, cursor: page.nextCursor });
    expect(leaked.items.every((c) => c.tenantId === OTHER)).toBe(true);
    expect(await cdrs.list('nobody', { limit: 500 })).toEqual({ items: [], nextCursor: null });
  });

  it('rejects a bad limit or cursor', async () => {
    await expect(cdrs.list(T, { limit: 501 })).rejects.toBeInstanceOf(ValidationError);
    await expect(cdrs.list(T, { limit: 0 })).rejects.toBeInstanceOf(ValidationError);
    await expect(cdrs.list(T, { cursor: 'garbage!' })).rejects.toBeInstanceOf(ValidationError);
  });
});
