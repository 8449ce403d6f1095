import type { RowDataPacket } from 'mysql2/promise';
import { loadConfig } from '../../src/config';
import { endWarningCommand } from '../../src/flows/switch';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';
import { TENANT_POLICY_CACHE_MS } from '../../src/stores/cached-tenants';

const TONE = 'tone_stream://%(300,200,880);loops=2';
const xs = (i: number) => `7001000${String(600 + i).padStart(8, '0')}`;

/** Issue #10 item 4: both parties hear a tone a configurable time before the maximum duration ends the call. */
describe('the warning before a call reaches its maximum duration (simulator, real MariaDB and Redis)', () => {
  let sys: TestSystem;

  beforeAll(async () => {
    // The platform default (5 s) is shorter than the shortest cap a request may ask for (10 s). The switch's clock
    // runs at a fifth of real time, not a twentieth: a 10 s cap then lasts 2 s, room for a busy machine to send
    // the warning, which the flow schedules once the legs are bridged, before the cap ends the call.
    sys = await startTestSystem({ timeScale: 0.2, env: { CALL_END_WARNING_SECONDS: '5', CALL_END_WARNING_TONE: TONE } });
    await sys.app.bindings.importNumbers(sys.tenantId, Array.from({ length: 4 }, (_, i) => ({ x: xs(i), area: '010' })));
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const callX = async (caller: string, x: string): Promise<RowDataPacket> => (await sys.callX({ callerNumber: caller, destinationNumber: x })).cdr;

  it('click-to-dial: A and B each hear the tone once, endWarningSeconds before the cap, and the call still ends at the cap', async () => {
    const a = '13800063001';
    const b = '13900063001';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer' });
    const call = await sys.placeCall({ requestId: 'warn-1', a, b, maxDurationSeconds: 10, endWarningSeconds: 4 });
    const done = await sys.waitForCall(call.id);
    expect(done.result).toBe('connected');
    expect(done.cdr).toMatchObject({ hangupCause: 'ALLOTTED_TIMEOUT', hangupSide: 'platform' });
    expect(sys.sim.broadcastsTo(a).map((x) => x.path)).toEqual([TONE]);
    expect(sys.sim.broadcastsTo(b).map((x) => x.path)).toEqual([TONE]);
    // Scheduled at the cap minus the warning (10 - 4 = 6 s of the simulator's scaled clock): before the end.
    expect(sys.sim.broadcastsTo(b)[0]!.at).toBeLessThan(done.cdr!.endedAt);
  });

  it('click-to-dial with the switch\'s clock 3 s behind the controller\'s: the warning is still timed from B\'s answer, and the CDR\'s times are in order', async () => {
    const a = '13800063007';
    const b = '13900063007';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer' });
    sys.sim.skewClock(-3_000);
    try {
      // The controller learns the skew from the switch's events within two of its 2 s windows.
      await waitUntil('the controller has learnt the skew', async () => {
        await sys.app.esl.api('status');
        return sys.app.esl.clock.toLocal(0) >= 2_900;
      }, 10_000, 100);
      const from = sys.sim.received.length;
      const call = await sys.placeCall({ requestId: 'warn-skewed', a, b, maxDurationSeconds: 10, endWarningSeconds: 4 });
      const done = await sys.waitForCall(call.id);
      expect(done.result).toBe('connected');
      // 10 - 4 = 6 s after B's answer, less whole seconds already gone (none, unless the host stalled a second).
      const scheduled = sys.sim.received.slice(from).filter((c) => c.includes('sched_broadcast'));
      expect(scheduled).toHaveLength(1);
      expect(scheduled[0]).toMatch(/sched_broadcast \+[56] /);
      const cdr = done.cdr!;
      const times = [cdr.startedAt, cdr.aRingAt, cdr.aAnswerAt, cdr.bRingAt, cdr.bAnswerAt, cdr.endedAt];
      expect(times.every((t) => t !== null)).toBe(true);
      expect(times).toEqual([...times].sort((x, y) => x! - y!));
      expect(cdr.endedAt - cdr.startedAt).toBeLessThan(10_000);
    } finally {
      sys.sim.skewClock(0);
    }
  });

  it('click-to-dial: the platform default applies when the request names none; 0 turns it off', async () => {
    const a = '13800063002';
    const b = '13900063002';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer' });
    await sys.waitForCall((await sys.placeCall({ requestId: 'warn-default', a, b, maxDurationSeconds: 10 })).id);
    expect(sys.sim.broadcastsTo(b)).toHaveLength(1);
    await sys.waitForCall((await sys.placeCall({ requestId: 'warn-off', a, b, maxDurationSeconds: 10, endWarningSeconds: 0 })).id);
    expect(sys.sim.broadcastsTo(b)).toHaveLength(1);
  });

  it('click-to-dial: a tenant that turned the warning off gets none by default, but a request may still ask for one', async () => {
    await sys.tenants.update(sys.tenantId, { clickToDialEndWarning: false });
    // Calls read the tenant's policy through a short cache: the change applies once that has passed.
    await new Promise((resolve) => setTimeout(resolve, TENANT_POLICY_CACHE_MS + 100));
    try {
      const a = '13800063003';
      const b = '13900063003';
      sys.sim.setPhone(a, { answer: 'answer' });
      sys.sim.setPhone(b, { answer: 'answer' });
      await sys.waitForCall((await sys.placeCall({ requestId: 'warn-tenant-off', a, b, maxDurationSeconds: 10 })).id);
      expect(sys.sim.broadcastsTo(b)).toHaveLength(0);
      await sys.waitForCall((await sys.placeCall({ requestId: 'warn-tenant-off-asked', a, b, maxDurationSeconds: 10, endWarningSeconds: 3 })).id);
      expect(sys.sim.broadcastsTo(b)).toHaveLength(1);
    } finally {
      await sys.tenants.update(sys.tenantId, { clickToDialEndWarning: true });
    }
  });

  it('a call to X: the binding\'s own warning reaches the caller and the called party; the call ends at the binding\'s cap', async () => {
    const a = '13800063004';
    const b = '13900063004';
    sys.sim.setPhone(b, { answer: 'answer' });
    const created = await sys.api<{ id: string; endWarningSeconds: number | null }>('POST', '/v1/bindings', { mode: 'axb', a, b, x: xs(0), maxDurationSeconds: 10, endWarningSeconds: 3 });
    expect(created.status).toBe(201);
    expect(created.body.endWarningSeconds).toBe(3);
    const cdr = await callX(a, xs(0));
    expect(cdr).toMatchObject({ result: 'connected', hangup_cause: 'ALLOTTED_TIMEOUT' });
    expect(sys.sim.broadcastsTo(b).map((x) => x.path)).toEqual([TONE]);
    expect(sys.sim.broadcastsTo(a).map((x) => x.path)).toEqual([TONE]);
  });

  it('a binding set to 0 gets no warning; a binding updated back to null uses the platform default', async () => {
    const a = '13800063005';
    const b = '13900063005';
    sys.sim.setPhone(b, { answer: 'answer' });
    const created = await sys.api<{ id: string }>('POST', '/v1/bindings', { mode: 'axb', a, b, x: xs(1), maxDurationSeconds: 10, endWarningSeconds: 0 });
    await callX(a, xs(1));
    expect(sys.sim.broadcastsTo(b)).toHaveLength(0);
    const updated = await sys.api<{ endWarningSeconds: number | null }>('PATCH', `/v1/bindings/${created.body.id}`, { endWarningSeconds: null });
    expect(updated.status).toBe(200);
    expect(updated.body.endWarningSeconds).toBeNull();
    // Routing follows the change once the index has it.
    await new Promise((r) => setTimeout(r, 500));
    await callX(a, xs(1));
    expect(sys.sim.broadcastsTo(b)).toHaveLength(1);
  });

  it('refuses a bad warning with 400 and the field', async () => {
    const call = await sys.api<{ error: { code: string; field: string } }>('POST', '/v1/calls', { requestId: 'warn-bad', a: '13800063006', b: '13900063006', endWarningSeconds: -1 });
    expect(call.status).toBe(400);
    expect(call.body.error.field).toBe('endWarningSeconds');
    const binding = await sys.api<{ error: { code: string; field: string } }>('POST', '/v1/bindings', { mode: 'axb', a: '13800063006', b: '13900063006', endWarningSeconds: 4000 });
    expect(binding.status).toBe(400);
    expect(binding.body.error.field).toBe('endWarningSeconds');
  });
});

describe('the warning command and its configuration', () => {
  it('is scheduled at the cap minus the warning, for both legs; none when off, as long as the call, or without a tone', () => {
    const uuid = '2b0e7c4e-8a57-4f4b-9d3e-1f8d2f1f7a10';
    expect(endWarningCommand(uuid, 1800, 60, TONE)).toBe(`sched_broadcast +1740 ${uuid} ${TONE} both`);
    expect(endWarningCommand(uuid, 1800, 0, TONE)).toBeNull();
    expect(endWarningCommand(uuid, 60, 60, TONE)).toBeNull();
    expect(endWarningCommand(uuid, 1800, 60, '')).toBeNull();
  });

  it('the tone is the operator\'s: a value the switch would expand or split is refused, naming the variable', () => {
    expect(loadConfig({ ESL_PASSWORD: 'x' }).endWarning).toEqual({ seconds: 60, tone: 'tone_stream://%(300,200,880);loops=2' });
    for (const tone of ['tone_stream://${x}', "tone_stream://%(1,2,3)' both", 'a b', 'x^y']) {
      expect(() => loadConfig({ ESL_PASSWORD: 'x', CALL_END_WARNING_TONE: tone })).toThrow(/CALL_END_WARNING_TONE/);
    }
    expect(() => loadConfig({ ESL_PASSWORD: 'x', CALL_END_WARNING_SECONDS: '-1' })).toThrow(/CALL_END_WARNING_SECONDS/);
  });
});
