import type { EslEvent } from '../../src/esl/event';
import { legUuid } from '../../src/flows/click-to-dial';
import { FIGURES_REALM } from '../../src/flows/switch-figures';
import { LiveCallStore } from '../../src/stores/live-calls';
import { waitUntil } from '../support/wait';
import { startTestSystem, X, type TestSystem } from '../support/system';

const A = '13800000001';
const B = '13900000002';

describe('click-to-dial against the switch simulator (real MariaDB and Redis)', () => {
  let sys: TestSystem;
  let seq = 0;
  const requestId = () => `req-${Date.now()}-${++seq}`;

  beforeAll(async () => {
    // Pass-through is off unless the operator allows it, for the platform and the tenant: here both do.
    sys = await startTestSystem({ env: { PASSTHROUGH_ALLOWED: 'true' }, tenant: { passthroughAllowed: true } });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  // Each test uses its own pair of numbers so the simulator's invite log is per test.
  let a = A;
  let b = B;
  beforeEach(() => {
    a = `1380000${String(1000 + seq).padStart(4, '0')}`;
    b = `1390000${String(1000 + seq).padStart(4, '0')}`;
  });

  it('fixed display: A and B both see X in From, its display name and Remote-Party-ID; CDR connected', async () => {
    sys.sim.setPhone(a, { answer: 'answer', ringMs: 200 });
    sys.sim.setPhone(b, { answer: 'answer', ringMs: 400, hangupAfterMs: 3000 });
    const call = await sys.placeCall({ requestId: requestId(), a, b, displayMode: 'fixed' });
    expect(call.state).toBe('queued');
    const done = await sys.waitForCall(call.id);

    const [toA] = sys.sim.invitesTo(a);
    const [toB] = sys.sim.invitesTo(b);
    expect(toA).toMatchObject({ fromUser: X, fromDisplay: X });
    expect(toB).toMatchObject({ fromUser: X, fromDisplay: X });
    for (const invite of [toA!, toB!]) {
      expect(invite.remotePartyId ?? '').not.toMatch(new RegExp(`${a}|${b}`));
      expect(invite.pAssertedIdentity ?? '').not.toMatch(new RegExp(`${a}|${b}`));
    }
    expect(done.result).toBe('connected');
    expect(done.cdr).toMatchObject({ result: 'connected', a, b, x: X, hangupSide: 'b', kind: 'click_to_dial' });
    expect(done.cdr!.talkSeconds).toBeGreaterThanOrEqual(0);
    expect(done.cdr!.aAnswerAt).not.toBeNull();
    expect(done.cdr!.bAnswerAt).not.toBeNull();
    expect(sys.sim.invitesTo(a)).toHaveLength(1);
    expect(sys.sim.invitesTo(b)).toHaveLength(1);
  });

  it('passthrough display: A sees X, B sees A asserted in P-Asserted-Identity', async () => {
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 1000 });
    const call = await sys.placeCall({ requestId: requestId(), a, b, displayMode: 'passthrough' });
    const done = await sys.waitForCall(call.id);
    expect(sys.sim.invitesTo(a)[0]).toMatchObject({ fromUser: X, fromDisplay: X });
    const toB = sys.sim.invitesTo(b)[0]!;
    expect(toB).toMatchObject({ fromUser: a, fromDisplay: a, remotePartyId: null });
    expect(toB.pAssertedIdentity).toContain(a);
    expect(done.result).toBe('connected');
  });

  it.each([
    ['a_busy', { answer: 'busy' }, { answer: 'answer' }, 0],
    ['a_rejected', { answer: 'decline' }, { answer: 'answer' }, 0],
    ['a_no_answer', { answer: 'no-answer' }, { answer: 'answer' }, 0],
    ['b_busy', { answer: 'answer' }, { answer: 'busy' }, 1],
    ['b_rejected', { answer: 'answer' }, { answer: 'decline' }, 1],
    ['b_no_answer', { answer: 'answer' }, { answer: 'no-answer' }, 1],
  ] as const)('maps the hangup to %s', async (result, phoneA, phoneB, bInvites) => {
    sys.sim.setPhone(a, phoneA);
    sys.sim.setPhone(b, phoneB);
    const call = await sys.placeCall({ requestId: requestId(), a, b, ringTimeoutASeconds: 5, ringTimeoutBSeconds: 5 });
    const done = await sys.waitForCall(call.id);
    expect(done.result).toBe(result);
    expect(done.cdr).toMatchObject({ result, talkSeconds: 0 });
    expect(sys.sim.invitesTo(a)).toHaveLength(1);
    expect(sys.sim.invitesTo(b)).toHaveLength(bInvites);
    if (bInvites === 0) expect(done.cdr!.aAnswerAt).toBeNull();
  });

  it('B busy: A hears the prompt, then is hung up with USER_BUSY', async () => {
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'busy' });
    const events: EslEvent[] = [];
    const record = (e: EslEvent) => events.push(e);
    sys.app.esl.on('event', record);
    const call = await sys.placeCall({ requestId: requestId(), a, b });
    const done = await sys.waitForCall(call.id);
    sys.app.esl.off('event', record);
    const onA = events.filter((e) => e.uuid === legUuid(call.id, 'a', 1));
    const played = onA.find((e) => e.name === 'CHANNEL_EXECUTE_COMPLETE' && e.header('Application') === 'playback');
    expect(played?.header('Application-Response')).toBe('FILE PLAYED');
    const aEnd = onA.find((e) => e.name === 'CHANNEL_HANGUP_COMPLETE');
    expect(aEnd?.header('Hangup-Cause')).toBe('USER_BUSY');
    expect(onA.indexOf(played!)).toBeLessThan(onA.indexOf(aEnd!));
    expect(done.cdr).toMatchObject({ result: 'b_busy', hangupCause: 'USER_BUSY', hangupSide: 'b' });
  });

  it('cancel while A is ringing ends the call as cancelled, and B is never rung', async () => {
    sys.sim.setPhone(a, { answer: 'no-answer' });
    sys.sim.setPhone(b, { answer: 'answer' });
    const call = await sys.placeCall({ requestId: requestId(), a, b, ringTimeoutASeconds: 60 });
    await sys.waitForCall(call.id, (c) => c.legs.a.state === 'ringing');
    const cancel = await sys.api('POST', `/v1/calls/${call.id}/cancel`);
    expect(cancel.status).toBe(200);
    const done = await sys.waitForCall(call.id);
    expect(done.result).toBe('cancelled');
    expect(done.cdr).toMatchObject({ result: 'cancelled', hangupSide: 'platform' });
    expect(sys.sim.invitesTo(b)).toHaveLength(0);
    const again = await sys.api<{ error: { code: string } }>('POST', `/v1/calls/${call.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('call_already_ended');
  });

  it('a call whose steps are written often enough makes no look of its own at the cancel flag (each write reads it)', async () => {
    const looks = jest.spyOn(LiveCallStore.prototype, 'isCancelRequested');
    try {
      // At the simulator's time scale (0.05) the legs answer within 50 ms and the call lasts about a second:
      // past the first look's 500 ms, well within the 5 s a look may wait once A's channel exists.
      sys.sim.setPhone(a, { answer: 'answer', ringMs: 300 });
      sys.sim.setPhone(b, { answer: 'answer', ringMs: 300, hangupAfterMs: 20_000 });
      const placedAt = Date.now();
      const call = await sys.placeCall({ requestId: requestId(), a, b });
      const done = await sys.waitForCall(call.id);
      expect(done.result).toBe('connected');
      expect(Date.now() - placedAt).toBeGreaterThan(600);
      expect(looks.mock.calls.filter(([callId]) => callId === call.id)).toHaveLength(0);
    } finally {
      looks.mockRestore();
    }
  });

  it('A hanging up while B rings is an abandoned call: cancelled by A, not a B failure', async () => {
    sys.sim.setPhone(a, { answer: 'answer', hangupAfterMs: 1000 });
    sys.sim.setPhone(b, { answer: 'no-answer' });
    const call = await sys.placeCall({ requestId: requestId(), a, b, ringTimeoutBSeconds: 60 });
    const done = await sys.waitForCall(call.id);
    expect(done.cdr).toMatchObject({ result: 'cancelled', hangupSide: 'a', talkSeconds: 0 });
    expect(sys.sim.invitesTo(b)).toHaveLength(1);
  });

  it('max duration is enforced by the switch with sched_hangup, armed by B\'s answer', async () => {
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer' });
    const call = await sys.placeCall({ requestId: requestId(), a, b, maxDurationSeconds: 10 });
    const done = await sys.waitForCall(call.id);
    const uB = legUuid(call.id, 'b', 1);
    const originate = sys.sim.received.find((c) => c.startsWith('bgapi originate') && c.includes(uB));
    expect(originate).toContain(`api_on_answer='sched_hangup +10 ${uB} ALLOTTED_TIMEOUT'`);
    expect(sys.sim.received.filter((c) => /^(bg)?api sched_hangup/.test(c))).toEqual([]);
    expect(done.cdr).toMatchObject({ result: 'connected', hangupCause: 'ALLOTTED_TIMEOUT', hangupSide: 'platform' });
  });

  it('a connected call costs the switch one command: the originate of A, with the bridge to B as its dialplan (then what it kept of the legs is deleted)', async () => {
    sys.sim.setPhone(a, { answer: 'answer', ringMs: 100 });
    sys.sim.setPhone(b, { answer: 'answer', ringMs: 100, hangupAfterMs: 300 });
    // No end warning: that is one more command, sent at the bridge (test/flows/end-warning.test.ts).
    const call = await sys.placeCall({ requestId: requestId(), a, b, endWarningSeconds: 0 });
    const done = await sys.waitForCall(call.id);
    expect(done.cdr).toMatchObject({ result: 'connected', hangupSide: 'b' });
    const uA = legUuid(call.id, 'a', 1);
    const uB = legUuid(call.id, 'b', 1);
    // Each leg kept its figures (switch-figures.ts) for a controller that would settle the call should this one die;
    // once the call is settled they are deleted, after the call, never during it.
    await waitUntil('the kept figures deleted', () => !sys.sim.hashEntry(FIGURES_REALM, uA) && !sys.sim.hashEntry(FIGURES_REALM, uB));
    const forThisCall = sys.sim.received.filter((c) => c.includes(uA) || c.includes(uB) || c.includes(call.id));
    expect(forThisCall).toHaveLength(3);
    expect(forThisCall[0]).toMatch(new RegExp(`^bgapi originate \\{.*origination_uuid=${uA}.*\\}\\S+ m:\\^:bridge:\\{.*origination_uuid=${uB}.*\\}\\S+\\^park inline$`));
    expect(forThisCall.slice(1).sort()).toEqual([`api hash delete/${FIGURES_REALM}/${uA}`, `api hash delete/${FIGURES_REALM}/${uB}`].sort());
    expect(sys.sim.originateCount(uA)).toBe(1);
    expect(sys.sim.originateCount(uB)).toBe(1);
  });

  it('the same requestId returns the first call and rings nobody again', async () => {
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 500 });
    const rid = requestId();
    const first = await sys.api<{ id: string }>('POST', '/v1/calls', { requestId: rid, a, b });
    const second = await sys.api<{ id: string }>('POST', '/v1/calls', { requestId: rid, a, b });
    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    await sys.waitForCall(first.body.id);
    expect(sys.sim.invitesTo(a)).toHaveLength(1);
  });

  it('leaves no real number unmasked in the logs of a whole call', async () => {
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 500 });
    const before = sys.logLines.length;
    const call = await sys.placeCall({ requestId: requestId(), a, b, displayMode: 'passthrough' });
    await sys.waitForCall(call.id);
    const logs = sys.logLines.slice(before).join('');
    expect(logs).toContain(call.id);
    expect(logs).not.toContain(a);
    expect(logs).not.toContain(b);
  });
});
