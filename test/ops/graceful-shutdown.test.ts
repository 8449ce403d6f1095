import { Writable } from 'node:stream';
import type { RowDataPacket } from 'mysql2/promise';
import { startApp, type App } from '../../src/app';
import { callIdFor } from '../../src/calls/click-to-dial-request';
import { ConfigError, loadConfig } from '../../src/config';
import { callToXId } from '../../src/flows/call-to-x';
import { legUuid } from '../../src/flows/click-to-dial';
import { createLogger } from '../../src/logger';
import { startControllerProcess, type ControllerProcess } from '../support/controller-process';
import { SwitchObserver } from '../support/switch-observer';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';

/**
 * SIGTERM to a controller (src/main.ts in a child process) while it carries a click-to-dial call and a
 * call to X, against the switch simulator at real time, real MariaDB and Redis. The calls must go on
 * uncut, and each must end up with exactly one CDR whose talk seconds and hangup cause are the
 * switch's (what the simulator sent in its events), whether the calls end within the drain time or
 * outlast it and are settled by another controller started afterwards.
 */

const until = <T,>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> =>
  waitUntil(what, probe, timeoutMs, 25);

describe('graceful shutdown: SIGTERM mid-call', () => {
  const X2 = '700100000000077';
  let sys: TestSystem;
  let observer: SwitchObserver;
  let child: ControllerProcess | undefined;
  let takeover: App | undefined;
  let takeoverLog: string[] = [];

  beforeEach(async () => {
    // The API runs here without workers; the controller under test is the child process.
    sys = await startTestSystem({ workers: false, timeScale: 1 });
    await sys.app.bindings.importNumbers(sys.tenantId, [{ x: X2, area: '010' }]);
    observer = await SwitchObserver.connect(sys);
  });
  afterEach(async () => {
    await child?.kill();
    child = undefined;
    await takeover?.stop();
    takeover = undefined;
    await observer?.stop();
    await sys?.stop();
  });

  async function startTakeover(): Promise<App> {
    takeoverLog = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        takeoverLog.push(String(chunk));
        cb();
      },
    });
    takeover = await startApp(loadConfig({ ...sys.env }), createLogger('info', sink));
    return takeover;
  }

  async function cdrsOf(callId: string): Promise<RowDataPacket[]> {
    const [rows] = await sys.app.pool.query<RowDataPacket[]>('SELECT * FROM cdrs WHERE call_id = ?', [callId]);
    return rows;
  }

  /** A click-to-dial call: A answers at once, B answers and hangs up talkMs later. */
  async function clickToDial(requestId: string, a: string, b: string, talkMs: number) {
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: talkMs });
    const id = callIdFor(sys.tenantId, requestId);
    const legs = { a: legUuid(id, 'a', 1), b: legUuid(id, 'b', 1) };
    observer.watch(legs.a);
    observer.watch(legs.b);
    const call = await sys.placeCall({ requestId, a, b });
    expect(call.id).toBe(id);
    return { id, legs, bridged: () => until('the click-to-dial call to be bridged', () => observer.event(legs.a, 'CHANNEL_BRIDGE')) };
  }

  /** A call to X through the child's outbound socket: the caller hangs up talkMs after B answers. */
  async function callToX(to: ControllerProcess, caller: string, b: string, talkMs: number) {
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a: caller, b, x: X2 });
    sys.sim.setPhone(b, { answer: 'answer' });
    const uuid = await sys.sim.connectOutbound(to.outboundAddress, { callerNumber: caller, destinationNumber: X2, caller: { hangupAfterMs: talkMs } });
    observer.watch(uuid);
    return { id: callToXId(uuid), uuid, bridged: () => until('the call to X to be bridged', () => observer.event(uuid, 'CHANNEL_BRIDGE')) };
  }

  /** The switch's figures of a call: the first hangup (cause, who) and the billed seconds. */
  function switchFigures(first: string[], billed: string) {
    const hangups = first.map((u) => observer.hangup(u)).filter((h) => h !== undefined);
    hangups.sort((p, q) => p.at - q.at);
    return { first: hangups[0]!, billsec: observer.billsec(billed)! };
  }

  it('calls that end within the drain time: the controller waits for them, writes one CDR each with the switch’s figures, exits 0', async () => {
    child = await startControllerProcess({ ...sys.env, DRAIN_TIMEOUT_SECONDS: '60' });
    const ctd = await clickToDial('drain-1', '13800060001', '13900060001', 4000);
    const tox = await callToX(child, '13800060002', '13900060002', 4000);
    await Promise.all([ctd.bridged(), tox.bridged()]);

    child.child.kill('SIGTERM');
    // Draining: not ready, and the switch's next call to X cannot reach this controller.
    const port = child.httpPort;
    const ready = await until('/readyz to answer 503', async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return res.status === 503 && ((await res.json()) as { checks: Record<string, boolean> });
    });
    expect(ready.checks).toMatchObject({ accepting: false, esl: true, redis: true, mysql: true });
    await expect(sys.sim.connectOutbound(child.outboundAddress, { callerNumber: '13800060003', destinationNumber: X2 })).rejects.toThrow();

    const exit = await child.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });

    // Both calls ended by their phones (recv_bye), at the time the phones chose, before the controller exited.
    const c = switchFigures([ctd.legs.a, ctd.legs.b], ctd.legs.b);
    const x = switchFigures([tox.uuid], tox.uuid);
    expect(c.first).toMatchObject({ cause: 'NORMAL_CLEARING', disposition: 'recv_bye' });
    expect(x.first).toMatchObject({ cause: 'NORMAL_CLEARING', disposition: 'recv_bye' });
    expect(c.billsec).toBe(4);
    expect(x.billsec).toBe(4);
    expect(c.first.at).toBeLessThanOrEqual(exit.at);
    expect(x.first.at).toBeLessThanOrEqual(exit.at);
    expect(child.logs.some((l) => l.msg === 'drained')).toBe(true);

    // CDRs were flushed before the exit: nobody else writes CDRs in this test.
    const [ctdCdrs, xCdrs] = await Promise.all([cdrsOf(ctd.id), cdrsOf(tox.id)]);
    expect(ctdCdrs).toHaveLength(1);
    expect(xCdrs).toHaveLength(1);
    expect(ctdCdrs[0]).toMatchObject({ result: 'connected', talk_seconds: c.billsec, hangup_cause: c.first.cause });
    expect(xCdrs[0]).toMatchObject({ result: 'connected', talk_seconds: x.billsec, hangup_cause: x.first.cause });
  }, 60_000);

  it('calls that outlast the drain time are handed over at its deadline; a controller started afterwards settles each from the switch', async () => {
    child = await startControllerProcess({ ...sys.env, DRAIN_TIMEOUT_SECONDS: '1' });
    const ctd = await clickToDial('drain-2', '13800060011', '13900060011', 9000);
    const tox = await callToX(child, '13800060012', '13900060012', 9000);
    await Promise.all([ctd.bridged(), tox.bridged()]);

    child.child.kill('SIGTERM');
    const exit = await child.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(child.logs.some((l) => l.msg === 'call to X handed over: another controller writes its record from the switch')).toBe(true);
    expect(child.logs.find((l) => l.msg === 'jobs given back to the queue for another controller')).toMatchObject({ clickToDial: 1 });
    // Nothing was cut: both calls are still up when the controller is gone.
    expect(observer.hangup(ctd.legs.a) ?? observer.hangup(ctd.legs.b) ?? observer.hangup(tox.uuid)).toBeUndefined();
    expect(await cdrsOf(ctd.id)).toHaveLength(0);
    expect(await cdrsOf(tox.id)).toHaveLength(0);

    await startTakeover();
    const [ctdCdr, xCdr] = await until('both CDRs', async () => {
      const [p, q] = await Promise.all([cdrsOf(ctd.id), cdrsOf(tox.id)]);
      return p.length > 0 && q.length > 0 && ([p, q] as const);
    });
    const c = switchFigures([ctd.legs.a, ctd.legs.b], ctd.legs.b);
    const x = switchFigures([tox.uuid], tox.uuid);
    // Ended by the phones, at the time they chose (not cut at the handover)...
    expect(c.first).toMatchObject({ cause: 'NORMAL_CLEARING', disposition: 'recv_bye' });
    expect(x.first).toMatchObject({ cause: 'NORMAL_CLEARING', disposition: 'recv_bye' });
    expect(c.billsec).toBe(9);
    expect(x.billsec).toBe(9);
    // ... and one CDR each, with the switch's figures.
    expect(ctdCdr).toHaveLength(1);
    expect(xCdr).toHaveLength(1);
    expect(ctdCdr[0]).toMatchObject({ result: 'connected', talk_seconds: c.billsec, hangup_cause: c.first.cause });
    expect(xCdr[0]).toMatchObject({ result: 'connected', talk_seconds: x.billsec, hangup_cause: x.first.cause, hangup_side: 'a' });
    expect(Math.abs((xCdr[0]!.ended_at as Date).getTime() - x.first.at)).toBeLessThan(1000);
    expect(sys.sim.invitesTo('13900060011')).toHaveLength(1);
    expect(sys.sim.invitesTo('13900060012')).toHaveLength(1);
    expect(takeoverLog.join('')).toContain('resuming an attempt that was already started');
    expect(takeoverLog.join('')).toContain('handed-over call to X settled from the switch');
  }, 60_000);

  it('a handed-over call to X that ends while no controller runs is settled from the figures the switch kept', async () => {
    child = await startControllerProcess({ ...sys.env, DRAIN_TIMEOUT_SECONDS: '0' });
    const tox = await callToX(child, '13800060021', '13900060021', 5000);
    await tox.bridged();

    child.child.kill('SIGTERM');
    expect(await child.exited).toMatchObject({ code: 0, signal: null });
    expect(observer.hangup(tox.uuid)).toBeUndefined();
    // The call ends with nobody watching it...
    const x = await until('the call to X to end', () => observer.hangup(tox.uuid) && switchFigures([tox.uuid], tox.uuid));
    expect(x.first).toMatchObject({ cause: 'NORMAL_CLEARING', disposition: 'recv_bye' });
    expect(x.billsec).toBe(5);
    expect(await cdrsOf(tox.id)).toHaveLength(0);

    // ... and the controller started afterwards writes its one CDR from what the switch kept.
    await startTakeover();
    const cdr = await until('the CDR', async () => {
      const rows = await cdrsOf(tox.id);
      return rows.length > 0 && rows;
    });
    expect(cdr).toHaveLength(1);
    expect(cdr[0]).toMatchObject({ result: 'connected', talk_seconds: x.billsec, hangup_cause: x.first.cause, hangup_side: 'a' });
    // Ended when the switch says, not when the controller stopped nor when the CDR was written.
    expect(Math.abs((cdr[0]!.ended_at as Date).getTime() - x.first.at)).toBeLessThan(1000);
  }, 60_000);
});

describe('DRAIN_TIMEOUT_SECONDS', () => {
  it('defaults to 20 s, takes 0 (hand over at once), and refuses what is not 0-86400 seconds, naming the variable', () => {
    expect(loadConfig({ ESL_PASSWORD: 'x' }).drainTimeoutSeconds).toBe(20);
    expect(loadConfig({ ESL_PASSWORD: 'x', DRAIN_TIMEOUT_SECONDS: '0' }).drainTimeoutSeconds).toBe(0);
    for (const bad of ['-1', '86401', '2.5', 'soon']) {
      expect(() => loadConfig({ ESL_PASSWORD: 'x', DRAIN_TIMEOUT_SECONDS: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ ESL_PASSWORD: 'x', DRAIN_TIMEOUT_SECONDS: bad })).toThrow(/DRAIN_TIMEOUT_SECONDS/);
    }
  });
});
