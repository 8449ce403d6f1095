import { startTestSystem, X, type CallToX, type TestSystem } from '../support/system';

const xs = (i: number) => `7001000${String(900 + i).padStart(8, '0')}`;

describe('calls to X through the outbound socket (simulator, real MariaDB and Redis)', () => {
  let sys: TestSystem;

  beforeAll(async () => {
    sys = await startTestSystem();
    await sys.app.bindings.importNumbers(sys.tenantId, Array.from({ length: 10 }, (_, i) => ({ x: xs(i), area: '010' })));
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const callX = (caller: string, x: string): Promise<CallToX> => sys.callX({ callerNumber: caller, destinationNumber: x });

  it('AXB both ways: each side reaches the other, and the called phone sees only X', async () => {
    const a = '13800008001';
    const b = '13900008001';
    const x = xs(0);
    const { binding } = await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a, b, x, userData: 'order 9' });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 500 });
    sys.sim.setPhone(a, { answer: 'answer', hangupAfterMs: 500 });

    const aToB = await callX(a, x);
    expect(aToB.cdr).toMatchObject({ result: 'connected', kind: 'axb', binding_id: binding.id, x, a, b, user_data: 'order 9' });
    const toB = sys.sim.invitesTo(b)[0]!;
    expect(toB).toMatchObject({ fromUser: x, fromDisplay: x });
    expect(`${toB.remotePartyId} ${toB.pAssertedIdentity}`).not.toContain(a);

    const bToA = await callX(b, x);
    expect(bToA.cdr).toMatchObject({ result: 'connected', a: b, b: a });
    expect(sys.sim.invitesTo(a)[0]).toMatchObject({ fromUser: x, fromDisplay: x });
  });

  it('the switch sends the socket only the events the call reads: half of what myevents subscribes to is taken back', async () => {
    const a = '13800008011';
    const b = '13900008011';
    const x = xs(1);
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a, b, x });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 300 });
    const { uuid, cdr } = await callX(a, x);
    expect(cdr).toMatchObject({ result: 'connected', hangup_cause: 'NORMAL_CLEARING' });
    const sent = sys.sim.socketEventsOf(uuid);
    // Trace 13a, with myevents alone, had 14: PARK, EXECUTE, PROGRESS, PROGRESS_MEDIA, ANSWER, UNBRIDGE, UNPARK and two
    // STATE besides these. Ringing and the ringback are api commands: no app of theirs completes.
    expect(sent).toEqual(['CHANNEL_BRIDGE', 'CHANNEL_HANGUP', 'CHANNEL_EXECUTE_COMPLETE', 'CHANNEL_EXECUTE_COMPLETE', 'CHANNEL_HANGUP_COMPLETE']);
    expect(sys.sim.seenByCaller(a).map((m) => m.message)).toContain('180 Ringing');
  });

  it('a caller without a binding gets UNALLOCATED_NUMBER and nobody is called', async () => {
    const stranger = '13700008002';
    const before = sys.sim.originateCount();
    const { cdr } = await callX(stranger, xs(0));
    expect(cdr).toMatchObject({ result: 'unbound', hangup_cause: 'UNALLOCATED_NUMBER', talk_seconds: 0 });
    expect(sys.sim.originateCount()).toBe(before);
  });

  it('a restricted direction is refused', async () => {
    const a = '13800008003';
    const b = '13900008003';
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a, b, x: xs(1), restriction: 'a_to_b' });
    const { cdr } = await callX(b, xs(1));
    expect(cdr).toMatchObject({ result: 'restricted', hangup_cause: 'UNALLOCATED_NUMBER' });
    expect(sys.sim.invitesTo(a)).toHaveLength(0);
  });

  it('XB: anyone on the allow-list reaches B; others are refused; B cannot call out through X', async () => {
    const b = '13900008004';
    const friend = '13600008004';
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 300 });
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'xb', b, x: xs(2), allowList: [friend] });
    expect((await callX(friend, xs(2))).cdr).toMatchObject({ result: 'connected', kind: 'xb', b });
    expect((await callX('13600008005', xs(2))).cdr).toMatchObject({ result: 'restricted' });
    expect((await callX(b, xs(2))).cdr).toMatchObject({ result: 'unbound' });
  });

  it('an expired binding no longer routes, even before any cleanup', async () => {
    const a = '13800008006';
    const b = '13900008006';
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a, b, x: xs(3), ttlSeconds: 60 }, Date.now() - 61_000);
    expect((await callX(a, xs(3))).cdr).toMatchObject({ result: 'expired' });
    expect(sys.sim.invitesTo(b)).toHaveLength(0);
  });

  it('after click-to-dial, B redials X and reaches A (the callback binding)', async () => {
    const a = '13800008007';
    const b = '13900008007';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'no-answer' });
    const call = await sys.placeCall({ requestId: 'callback-e2e', a, b, ringTimeoutBSeconds: 5 });
    expect((await sys.waitForCall(call.id)).result).toBe('b_no_answer');
    sys.sim.setPhone(a, { answer: 'answer', hangupAfterMs: 300 });
    const invitesToA = sys.sim.invitesTo(a).length;
    const { cdr } = await callX(b, X);
    expect(cdr).toMatchObject({ result: 'connected', kind: 'callback', a: b, b: a });
    expect(sys.sim.invitesTo(a)).toHaveLength(invitesToA + 1);
    expect(sys.sim.invitesTo(a).at(-1)).toMatchObject({ fromUser: X, fromDisplay: X });
  });

  it('the routing index is rebuilt from MySQL when Redis has lost it', async () => {
    const a = '13800008008';
    const b = '13900008008';
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 300 });
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a, b, x: xs(4) });
    await sys.app.pool.query('SELECT 1'); // keep MySQL up; wipe Redis's routes only
    const { createRedis } = await import('../../src/stores/redis');
    const redis = createRedis('redis://127.0.0.1:6379');
    const routeKeys = await redis.keys(`${sys.env.REDIS_PREFIX}:route:*`);
    await redis.del(...routeKeys);
    await redis.quit();
    expect((await sys.app.routes.lookup(xs(4), a))).toEqual({ refused: 'unbound' });
    await sys.app.routes.rebuild(await sys.app.bindings.listActive());
    expect((await callX(a, xs(4))).cdr).toMatchObject({ result: 'connected', b });
  });
});
