import { CallStore } from '../../src/stores/call-store';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase, type TestDatabase } from '../support/mysql';
import { makeCall } from './fixtures';

describe('CallStore', () => {
  let db: TestDatabase;
  let calls: CallStore;
  let tenantA: string;
  let tenantB: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    calls = new CallStore(db.pool);
    const tenants = new TenantStore(db.pool);
    tenantA = (await tenants.create({ name: 'A' })).id;
    tenantB = (await tenants.create({ name: 'B' })).id;
  });
  afterAll(() => db.drop());

  it('inserts and reads back a call', async () => {
    const input = makeCall(tenantA, { userData: 'u-1', record: true, createdAt: Date.UTC(2026, 1, 2, 3, 4, 5, 678) });
    const { call, created } = await calls.insert(input);
    expect(created).toBe(true);
    expect(call).toMatchObject({
      id: input.id,
      tenantId: tenantA,
      requestId: input.requestId,
      kind: 'click_to_dial',
      state: 'queued',
      record: true,
      userData: 'u-1',
      result: null,
      completedAt: null,
      createdAt: Date.UTC(2026, 1, 2, 3, 4, 5, 678),
    });
    expect(await calls.get(tenantA, input.id)).toEqual(call);
    expect(await calls.getById(input.id)).toEqual(call);
  });

  it('is idempotent by requestId within a tenant', async () => {
    const first = makeCall(tenantA, { requestId: 'same-request' });
    const r1 = await calls.insert(first);
    const retry = makeCall(tenantA, { requestId: 'same-request', b: '13700137000' });
    const r2 = await calls.insert(retry);
    expect(r2.created).toBe(false);
    expect(r2.call.id).toBe(r1.call.id);
    expect(r2.call.b).toBe(first.b);
    expect(await calls.getById(retry.id)).toBeNull();

    // concurrent retries: exactly one creates
    const racers = await Promise.all([1, 2, 3, 4, 5].map(() => calls.insert(makeCall(tenantA, { requestId: 'raced' }))));
    expect(racers.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(racers.map((r) => r.call.id)).size).toBe(1);

    // the same request id in another tenant is another call
    const other = await calls.insert(makeCall(tenantB, { requestId: 'same-request' }));
    expect(other.created).toBe(true);
    expect(other.call.id).not.toBe(r1.call.id);
  });

  it('does not show one tenant another tenant\'s call', async () => {
    const { call } = await calls.insert(makeCall(tenantA));
    expect(await calls.get(tenantB, call.id)).toBeNull();
    expect(await calls.getByRequestId(tenantB, call.requestId)).toBeNull();
    expect(await calls.get(tenantA, call.id)).not.toBeNull();
  });

  it('moves state forward only and completes once', async () => {
    const { call } = await calls.insert(makeCall(tenantA));
    expect(await calls.advanceState(call.id, 'calling_a')).toBe(true);
    expect(await calls.advanceState(call.id, 'bridged')).toBe(true);
    expect(await calls.advanceState(call.id, 'calling_b')).toBe(false);
    expect((await calls.getById(call.id))?.state).toBe('bridged');

    const at = Date.UTC(2026, 2, 3, 4, 5, 6, 789);
    expect(await calls.markCompleted(call.id, { result: 'connected', hangupCause: 'NORMAL_CLEARING', hangupSide: 'b', completedAt: at })).toBe(true);
    expect(await calls.markCompleted(call.id, { result: 'failed', hangupCause: 'X', hangupSide: 'a', completedAt: at + 1 })).toBe(false);
    expect(await calls.getById(call.id)).toMatchObject({
      state: 'completed',
      result: 'connected',
      hangupCause: 'NORMAL_CLEARING',
      hangupSide: 'b',
      completedAt: at,
    });
    expect(await calls.advanceState(call.id, 'bridged')).toBe(false);
  });

  it('records the calls of a burst in few INSERTs, each as stored; a request recorded before keeps its first call', async () => {
    const earlier = (await calls.insert(makeCall(tenantA, { requestId: 'burst-earlier' }))).call;
    const burst = Array.from({ length: 30 }, (_, i) =>
      makeCall(tenantB, { requestId: `burst-${i}`, userData: i % 2 ? `u-${i}` : null, record: i % 3 === 0, createdAt: Date.UTC(2026, 4, 5, 6, 7, 8, i) }),
    );
    // one of the burst repeats a request recorded before (same id, as the call id derives from it): the group falls back to one INSERT each
    const repeat = makeCall(tenantA, { id: earlier.id, requestId: 'burst-earlier', b: '13700137000' });
    const inserts: string[] = [];
    const query = db.pool.query.bind(db.pool);
    const execute = db.pool.execute.bind(db.pool);
    const spied = [
      jest.spyOn(db.pool, 'query').mockImplementation(((sql: string, ...rest: unknown[]) => {
        if (sql.startsWith('INSERT INTO calls')) inserts.push('group');
        return (query as (...a: unknown[]) => unknown)(sql, ...rest);
      }) as typeof db.pool.query),
      jest.spyOn(db.pool, 'execute').mockImplementation(((sql: string, ...rest: unknown[]) => {
        if (sql.startsWith('INSERT INTO calls')) inserts.push('one');
        return (execute as (...a: unknown[]) => unknown)(sql, ...rest);
      }) as typeof db.pool.execute),
    ];
    let recorded: Awaited<ReturnType<CallStore['record']>>[];
    let again: Awaited<ReturnType<CallStore['record']>>;
    try {
      recorded = await Promise.all(burst.map((c) => calls.record(c)));
      expect(inserts.length).toBeLessThanOrEqual(3);
      await new Promise((r) => setImmediate(r)); // the burst's groups have let go of their places
      inserts.length = 0;
      // two groups go at once: the first two calls alone, the rest (with the repeat) together
      const mixed = await Promise.all([
        calls.record(makeCall(tenantB, { requestId: 'mixed-a' })),
        calls.record(makeCall(tenantB, { requestId: 'mixed-b' })),
        calls.record(repeat),
        ...Array.from({ length: 3 }, (_, i) => calls.record(makeCall(tenantB, { requestId: `mixed-${i}` }))),
      ]);
      again = mixed[2];
      expect(mixed.map((c) => c.requestId)).toEqual(['mixed-a', 'mixed-b', 'burst-earlier', 'mixed-0', 'mixed-1', 'mixed-2']);
      // the group with the repeat failed as a whole and was inserted call by call
      expect(inserts).toEqual(['one', 'one', 'group', 'one', 'one', 'one', 'one']);
      for (const c of mixed.slice(3)) expect(await calls.getById(c.id)).toEqual(c);
    } finally {
      for (const s of spied) s.mockRestore();
    }
    for (const [i, c] of recorded.entries()) {
      expect(c).toMatchObject({ id: burst[i]?.id, requestId: `burst-${i}`, state: 'queued', createdAt: Date.UTC(2026, 4, 5, 6, 7, 8, i) });
      expect(await calls.getById(c.id)).toEqual(c);
    }
    expect(again).toEqual(earlier);
    expect((await calls.getById(earlier.id))?.b).toBe(earlier.b);
  });
});
