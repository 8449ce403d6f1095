import type { ChildProcess } from 'node:child_process';
import type { RowDataPacket } from 'mysql2/promise';
import { startApp, type App } from '../../src/app';
import { callIdFor } from '../../src/calls/click-to-dial-request';
import { loadConfig } from '../../src/config';
import { legUuid } from '../../src/flows/click-to-dial';
import { FIGURES_REALM, parseKeptFigures, sweepStaleFigures } from '../../src/flows/switch-figures';
import { createLogger } from '../../src/logger';
import { SwitchObserver } from '../support/switch-observer';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';
import { distinctById, startReceiver, type ReceivedWebhook, type Receiver } from '../webhooks/receiver';
import { spawnWorkerProcess } from '../support/spawn-worker';

/**
 * A click-to-dial call whose controller (a child process) is killed with SIGKILL at several points, and
 * whose call then ends while no controller follows it: the controller that takes the job over afterwards
 * finds both legs gone, and settles the call from the figures each leg's reporting hook kept on the switch
 * (src/flows/switch-figures.ts): one CDR with the switch's result, talk seconds, cause and end time, each
 * progress webhook once per event id, and nothing left kept on the switch. Switch simulator at real time,
 * real MariaDB and Redis.
 */

const SECRET = 'ctd-killed-secret-0123456789abcdef';
const PROGRESS = ['call.ringing', 'call.answered', 'call.bridged', 'call.completed'];
const CONNECTED_CALL = ['call.ringing/a', 'call.answered/a', 'call.ringing/b', 'call.answered/b', 'call.bridged/-', 'call.completed/-'].sort();

const eventsOf = (received: readonly ReceivedWebhook[], callId: string): ReceivedWebhook[] => received.filter((w) => w.payload.data.callId === callId);
const kinds = (ws: readonly ReceivedWebhook[]): string[] => ws.map((w) => `${w.payload.type}/${w.payload.data.leg ?? '-'}`).sort();

describe('a click-to-dial call whose controller is killed, and which ends before another takes it over', () => {
  jest.setTimeout(90_000);
  let sys: TestSystem;
  let receiver: Receiver;
  let observer: SwitchObserver;
  let child: ChildProcess | undefined;
  let takeover: App | undefined;

  beforeEach(async () => {
    // The API runs here without workers; the controller running the call is the child process.
    sys = await startTestSystem({ workers: false, timeScale: 1 });
    receiver = await startReceiver(SECRET);
    expect((await sys.api('PUT', '/v1/webhook', { url: receiver.url, secret: SECRET, events: PROGRESS })).status).toBe(200);
    observer = await SwitchObserver.connect(sys);
    child = await spawnWorkerProcess(sys.env);
  });
  afterEach(async () => {
    child?.kill('SIGKILL');
    child?.stdout?.destroy();
    child?.stderr?.destroy();
    await takeover?.stop();
    takeover = undefined;
    await observer?.stop();
    await receiver?.close();
    await sys?.stop();
  });

  async function place(requestId: string, a: string, b: string) {
    const id = callIdFor(sys.tenantId, requestId);
    const legs = { a: legUuid(id, 'a', 1), b: legUuid(id, 'b', 1) };
    observer.watch(legs.a);
    observer.watch(legs.b);
    const call = await sys.placeCall({ requestId, a, b });
    expect(call.id).toBe(id);
    return { id, legs };
  }

  async function kill(signal: 'SIGKILL' | 'SIGSTOP' = 'SIGKILL'): Promise<void> {
    const proc = child!;
    if (signal === 'SIGSTOP') {
      proc.kill('SIGSTOP');
      return;
    }
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  }

  /** Both legs over on the switch, their figures kept; no CDR yet. */
  async function callEndsUnfollowed(call: { id: string; legs: { a: string; b: string } }): Promise<void> {
    await waitUntil('both legs to end', () => observer.event(call.legs.a, 'CHANNEL_HANGUP_COMPLETE') && observer.event(call.legs.b, 'CHANNEL_HANGUP_COMPLETE'), 20_000);
    for (const uuid of [call.legs.a, call.legs.b]) expect(parseKeptFigures(sys.sim.hashEntry(FIGURES_REALM, uuid) ?? '')).not.toBeNull();
    expect(await cdrsOf(call.id)).toHaveLength(0);
  }

  async function takeOver(): Promise<void> {
    takeover = await startApp(loadConfig({ ...sys.env }), createLogger('warn'), { lockDurationMs: 1000, stalledIntervalMs: 500 });
  }

  async function cdrsOf(callId: string): Promise<RowDataPacket[]> {
    const [rows] = await sys.app.pool.query<RowDataPacket[]>('SELECT * FROM cdrs WHERE call_id = ?', [callId]);
    return rows;
  }

  /** One CDR with the switch's figures; every progress webhook once per id; nothing left kept on the switch. */
  async function expectSettledFromSwitch(call: { id: string; legs: { a: string; b: string } }, firstToHangUp: 'a' | 'b'): Promise<void> {
    const rows = await waitUntil('the CDR', async () => {
      const r = await cdrsOf(call.id);
      return r.length > 0 && r;
    }, 30_000);
    expect(rows).toHaveLength(1);
    const first = observer.hangup(firstToHangUp === 'a' ? call.legs.a : call.legs.b)!;
    const ended = Math.max(observer.at(call.legs.a, 'CHANNEL_HANGUP_COMPLETE')!, observer.at(call.legs.b, 'CHANNEL_HANGUP_COMPLETE')!);
    expect(rows[0]).toMatchObject({ result: 'connected', talk_seconds: observer.billsec(call.legs.b), hangup_cause: first.cause, hangup_side: firstToHangUp });
    const near = (at: unknown, switchAt: number | undefined): void => expect(Math.abs((at as Date).getTime() - switchAt!)).toBeLessThan(1000);
    near(rows[0]!.ended_at, ended);
    near(rows[0]!.a_answer_at, observer.at(call.legs.a, 'CHANNEL_ANSWER'));
    near(rows[0]!.b_answer_at, observer.at(call.legs.b, 'CHANNEL_ANSWER'));
    await receiver.waitFor((ws) => distinctById(eventsOf(ws, call.id)).length >= CONNECTED_CALL.length, 20_000);
    // An event queued under a second id would be here by now: give it the time to arrive.
    await new Promise((r) => setTimeout(r, 1500));
    expect(kinds(distinctById(eventsOf(receiver.received, call.id)))).toEqual(CONNECTED_CALL);
    const completed = eventsOf(receiver.received, call.id).find((w) => w.payload.type === 'call.completed');
    expect(completed?.payload.data).toMatchObject({ cdr: { result: 'connected', talkSeconds: observer.billsec(call.legs.b) } });

    await waitUntil('the kept figures deleted', () => !sys.sim.hashEntry(FIGURES_REALM, call.legs.a) && !sys.sim.hashEntry(FIGURES_REALM, call.legs.b));
    expect(await cdrsOf(call.id)).toHaveLength(1);
    expect(sys.sim.originateCount(call.legs.a)).toBe(1);
    expect(sys.sim.originateCount(call.legs.b)).toBe(1);
  }

  it('killed while A rings', async () => {
    const [a, b] = ['13800064001', '13900064001'];
    sys.sim.setPhone(a, { answer: 'answer', ringMs: 2000 });
    sys.sim.setPhone(b, { answer: 'answer', ringMs: 500, hangupAfterMs: 2000 });
    const call = await place('ctd-killed-a-rings', a, b);
    await waitUntil('A to ring', () => sys.sim.invitesTo(a).length === 1);
    await new Promise((r) => setTimeout(r, 300));
    await kill();
    await callEndsUnfollowed(call);
    await takeOver();
    await expectSettledFromSwitch(call, 'b');
  });

  it('killed while B rings', async () => {
    const [a, b] = ['13800064002', '13900064002'];
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', ringMs: 2000, hangupAfterMs: 2000 });
    const call = await place('ctd-killed-b-rings', a, b);
    await waitUntil('B to ring', () => sys.sim.invitesTo(b).length === 1);
    await new Promise((r) => setTimeout(r, 300));
    await kill();
    await callEndsUnfollowed(call);
    await takeOver();
    await expectSettledFromSwitch(call, 'b');
  });

  it('killed while A and B talk (A hangs up)', async () => {
    const [a, b] = ['13800064003', '13900064003'];
    sys.sim.setPhone(a, { answer: 'answer', hangupAfterMs: 4000 });
    sys.sim.setPhone(b, { answer: 'answer', ringMs: 300 });
    const call = await place('ctd-killed-talking', a, b);
    await waitUntil('the bridge', () => observer.event(call.legs.a, 'CHANNEL_BRIDGE'), 15_000);
    await kill();
    await callEndsUnfollowed(call);
    await takeOver();
    await expectSettledFromSwitch(call, 'a');
  });

  it('the call ends while its controller is frozen, which is then killed before queueing the CDR', async () => {
    const [a, b] = ['13800064004', '13900064004'];
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', ringMs: 300, hangupAfterMs: 2000 });
    const call = await place('ctd-killed-after-end', a, b);
    await waitUntil('the bridge', () => observer.event(call.legs.a, 'CHANNEL_BRIDGE'), 15_000);
    await kill('SIGSTOP');
    await callEndsUnfollowed(call);
    await kill();
    await takeOver();
    await expectSettledFromSwitch(call, 'b');
  });

  it('with nothing kept (the switch restarted meanwhile), the takeover settles from what the live call says', async () => {
    const [a, b] = ['13800064005', '13900064005'];
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', ringMs: 300, hangupAfterMs: 1500 });
    const call = await place('ctd-killed-nothing-kept', a, b);
    await waitUntil('the bridge', () => observer.event(call.legs.a, 'CHANNEL_BRIDGE'), 15_000);
    await new Promise((r) => setTimeout(r, 300));
    await kill();
    await callEndsUnfollowed(call);
    await sys.app.esl.api(`hash delete/${FIGURES_REALM}/${call.legs.a}`);
    await sys.app.esl.api(`hash delete/${FIGURES_REALM}/${call.legs.b}`);
    await takeOver();
    const rows = await waitUntil('the CDR', async () => {
      const r = await cdrsOf(call.id);
      return r.length > 0 && r;
    }, 30_000);
    // The live call had recorded the bridge; the switch's cause and end are not known.
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ result: 'connected', hangup_cause: null });
  });
});

describe('figures nobody deleted', () => {
  let sys: TestSystem;
  beforeAll(async () => {
    sys = await startTestSystem({ workers: false });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('are deleted by the sweep once their leg ended over an hour ago, at most maxDeletes a sweep; recent ones and other realms are left', async () => {
    const now = Date.now();
    const uuid = (i: number): string => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    const entry = (endedAgoMs: number): string => `5|NORMAL_CLEARING|recv_bye|0|${(now - endedAgoMs) * 1000}|SUCCESS||${(now - endedAgoMs - 5000) * 1000}|0`;
    for (let i = 0; i < 5; i++) await sys.app.esl.api(`hash insert/${FIGURES_REALM}/${uuid(i)}/${entry(2 * 3_600_000)}`);
    await sys.app.esl.api(`hash insert/${FIGURES_REALM}/${uuid(10)}/${entry(60_000)}`);
    await sys.app.esl.api(`hash insert/${FIGURES_REALM}/${uuid(11)}/unreadable`);
    await sys.app.esl.api(`hash insert/someone_else/${uuid(0)}/${entry(2 * 3_600_000)}`);

    expect(await sweepStaleFigures(sys.app.esl, { olderThanMs: 3_600_000, maxDeletes: 4, now })).toBe(4);
    expect(sys.sim.hashKeys(FIGURES_REALM)).toHaveLength(3);
    expect(await sweepStaleFigures(sys.app.esl, { olderThanMs: 3_600_000, maxDeletes: 4, now })).toBe(2);
    expect(sys.sim.hashKeys(FIGURES_REALM)).toEqual([uuid(10)]);
    expect(sys.sim.hashEntry('someone_else', uuid(0))).toBeDefined();
  });
});
