import { legUuid } from '../../src/flows/click-to-dial';
import { startTestSystem, X, type TestSystem } from '../support/system';

describe('tenant retry policy and the callback binding a call leaves behind', () => {
  let sys: TestSystem;

  beforeAll(async () => {
    // Two attempts at A, one second apart, when A was never reached.
    sys = await startTestSystem({ tenant: { maxAttempts: 2, retryDelaySeconds: 1 } });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('A busy is tried again once, with a new leg uuid, and ends as a_busy with one CDR', async () => {
    const a = '13800006001';
    const b = '13900006001';
    sys.sim.setPhone(a, { answer: 'busy' });
    const call = await sys.placeCall({ requestId: 'retry-busy', a, b });
    const done = await sys.waitForCall(call.id);
    expect(done.result).toBe('a_busy');
    expect(sys.sim.invitesTo(a)).toHaveLength(2);
    expect(sys.sim.originateCount(legUuid(call.id, 'a', 1))).toBe(1);
    expect(sys.sim.originateCount(legUuid(call.id, 'a', 2))).toBe(1);
    expect(sys.sim.invitesTo(b)).toHaveLength(0);
    const [rows] = await sys.app.pool.query('SELECT COUNT(*) AS n FROM cdrs WHERE call_id = ?', [call.id]);
    expect((rows as Array<{ n: number }>)[0]!.n).toBe(1);
  });

  it('A declining is not retried: A was reached and said no', async () => {
    const a = '13800006002';
    sys.sim.setPhone(a, { answer: 'decline' });
    const call = await sys.placeCall({ requestId: 'retry-decline', a, b: '13900006002' });
    const done = await sys.waitForCall(call.id);
    expect(done.result).toBe('a_rejected');
    // The call has ended (its CDR is written); proving no retry follows takes time: past the 1 s retry delay.
    await new Promise((r) => setTimeout(r, 1500));
    expect(sys.sim.invitesTo(a)).toHaveLength(1);
  });

  it('B busy after A answered is not retried: A was reached', async () => {
    const a = '13800006003';
    const b = '13900006003';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'busy' });
    const call = await sys.placeCall({ requestId: 'retry-bbusy', a, b });
    const done = await sys.waitForCall(call.id);
    expect(done.result).toBe('b_busy');
    // The call has ended (its CDR is written); proving no retry follows takes time: past the 1 s retry delay.
    await new Promise((r) => setTimeout(r, 1500));
    expect(sys.sim.invitesTo(a)).toHaveLength(1);
  });

  it('once B was rung, a callback binding lets B reach A through X until it expires', async () => {
    const a = '13800006004';
    const b = '13900006004';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'no-answer' });
    const call = await sys.placeCall({ requestId: 'callback-1', a, b, ringTimeoutBSeconds: 5 });
    const done = await sys.waitForCall(call.id);
    expect(done.result).toBe('b_no_answer');
    const [rows] = await sys.app.pool.query(
      "SELECT kind, x, a, b, state, call_id, TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(3), expires_at) AS ttl FROM bindings WHERE call_id = ?",
      [call.id],
    );
    const bindings = rows as Array<{ kind: string; x: string; a: string; b: string; state: string; ttl: number }>;
    expect(bindings).toHaveLength(1);
    expect(bindings[0]).toMatchObject({ kind: 'callback', x: X, a, b, state: 'active' });
    expect(bindings[0]!.ttl).toBeGreaterThan(86_400 - 60);
    expect(bindings[0]!.ttl).toBeLessThanOrEqual(86_400);
  });

  it('no callback binding when B was never rung', async () => {
    const a = '13800006005';
    sys.sim.setPhone(a, { answer: 'decline' });
    const call = await sys.placeCall({ requestId: 'callback-none', a, b: '13900006005' });
    await sys.waitForCall(call.id);
    const [rows] = await sys.app.pool.query('SELECT COUNT(*) AS n FROM bindings WHERE call_id = ?', [call.id]);
    expect((rows as Array<{ n: number }>)[0]!.n).toBe(0);
  });
});
