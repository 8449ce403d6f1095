/**
 * SIGTERM (and SIGKILL) one second into a call to X, on the real switch (issue 12: the controller used to exit at
 * once, the call went on, and its CDR said 1 talk second, no hangup cause, ended at the shutdown).
 * The controller is src/main.ts in a child process listening on the switch's controller socket
 * (127.0.0.1:8084, as freeswitch-conf/ sets it); the caller and B are sipp phones; B hangs up.
 *
 * Skipped (with a warning) unless E2E_ESL_HOST is set; see test/e2e/README.md.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { startApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config';
import { EslClient } from '../../src/esl/client';
import type { EslEvent } from '../../src/esl/event';
import { createLogger } from '../../src/logger';
import { TenantStore } from '../../src/stores/tenant-store';
import { startControllerProcess, type ControllerProcess } from '../support/controller-process';
import { createTestDatabase } from '../support/mysql';
import { SCENARIO_DIR, eslAddressFromEnv, sippHostFromEnv, sippPortBaseFromEnv, startPhone, type Phone } from './support/sipp';
import { e2eControllerEnv, phoneDialStrings } from './support/controller-env';
import { waitUntil } from '../support/wait';

const X = '700100000000001';
const esl = eslAddressFromEnv();
if (!esl) console.warn('E2E skipped: set E2E_ESL_HOST (and E2E_ESL_PORT, E2E_ESL_PASSWORD) to run test/e2e (see test/e2e/README.md).');
const describeE2e = esl ? describe : describe.skip;

const base = sippPortBaseFromEnv() + 70;
const host = sippHostFromEnv();
/** B of each case (distinct numbers for distinct bindings on X), all reaching the one phone on this port. */
const B = { numbers: ['13900009701', '13900009704', '13900009705', '13900009708'], port: base };

/** A phone that calls X; resolves when its call is over, with sipp's exit code and the messages it saw. */
function dialX(caller: string, port: number): Promise<{ code: number | null; log: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'uac-'));
  const messageFile = path.join(dir, 'messages.log');
  const child = spawn(
    process.env.E2E_SIPP_BIN ?? 'sipp',
    [process.env.E2E_SWITCH_SIP ?? `${esl!.host}:5080`, '-sf', path.join(SCENARIO_DIR, 'uac-call-x.xml'), '-s', X, '-key', 'caller', caller,
      '-i', host, '-p', String(port), '-m', '1', '-nostdin', '-timeout', '60', '-trace_msg', '-message_file', messageFile],
    { cwd: dir, stdio: 'ignore' },
  );
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      let log = '';
      try {
        log = readFileSync(messageFile, 'utf8');
      } catch {
        /* no messages */
      }
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, log });
    });
  });
}

const until = <T,>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> =>
  waitUntil(what, probe, timeoutMs, 50);

describeE2e('graceful shutdown against a real FreeSWITCH with sipp phones', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let env: Record<string, string>;
  let api: App;
  let observer: EslClient;
  const seen: EslEvent[] = [];
  let tenantId: string;
  let child: ControllerProcess | undefined;
  let takeover: App | undefined;
  const phones: Phone[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    env = e2eControllerEnv(esl!, db.url, phoneDialStrings(host, B.numbers.map((number) => ({ number, port: B.port }))), {
      OUTBOUND_SOCKET_HOST: '127.0.0.1',
      OUTBOUND_SOCKET_PORT: '0',
      CALLS_PER_CALLER_PER_MINUTE: '0',
    });
    // Bindings are made here (API only); the controller under test is the child process.
    api = await startApp(loadConfig(env), createLogger('warn'), { workers: false });
    tenantId = (await new TenantStore(db.pool).create({ name: 'e2e-drain' })).id;
    await api.bindings.importNumbers(tenantId, [{ x: X, area: '010' }]);
    observer = new EslClient({
      host: esl!.host, port: esl!.port, password: esl!.password,
      events: ['CHANNEL_BRIDGE', 'CHANNEL_HANGUP', 'CHANNEL_HANGUP_COMPLETE'],
      commandTimeoutMs: 5000, reconnectMinMs: 100, reconnectMaxMs: 1000, logger: createLogger('silent'),
    });
    observer.on('event', (e: EslEvent) => seen.push(e));
    await observer.start();
  }, 60_000);

  afterEach(async () => {
    await child?.kill();
    child = undefined;
    await takeover?.stop();
    takeover = undefined;
    await Promise.all(phones.splice(0).map((p) => p.stop()));
  });
  afterAll(async () => {
    await observer?.stop();
    await api?.stop();
    await db?.drop();
  });

  /** The caller's channel (on the external profile) as the switch reported it. */
  const callerEvent = (caller: string, name: string): EslEvent | undefined =>
    seen.find((e) => e.name === name && e.header('Caller-Caller-ID-Number') === caller && e.header('Caller-Destination-Number') === X);

  async function cdrsOf(caller: string): Promise<RowDataPacket[]> {
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT * FROM cdrs WHERE a = ?', [caller]);
    return rows;
  }

  /** The caller dials X, B answers and hangs up talkMs later; `signal` (SIGTERM) reaches the controller one second into the call. */
  async function callAndSigterm(caller: string, b: string, callerPort: number, talkMs: number, drainSeconds: number, signal: NodeJS.Signals = 'SIGTERM') {
    await api.bindings.bind({ tenantId, mode: 'axb', a: caller, b, x: X });
    child = await startControllerProcess({ ...env, OUTBOUND_SOCKET_PORT: process.env.E2E_OUTBOUND_SOCKET_PORT ?? '8084', DRAIN_TIMEOUT_SECONDS: String(drainSeconds) });
    phones.push(await startPhone({ number: b, port: B.port, behaviour: 'answer-then-bye', talkMs }));
    const call = dialX(caller, callerPort);
    const bridged = await until('the call to X to be bridged', () => callerEvent(caller, 'CHANNEL_BRIDGE'));
    const bridgedAt = Math.floor(Number(bridged.header('Event-Date-Timestamp')) / 1000);
    await until('one second of talk', () => Date.now() - bridgedAt >= 1000);
    child.child.kill(signal);
    return { call, exited: child.exited, killedAt: Date.now() };
  }

  /** The switch's billsec and hangup cause for the caller's leg, once it has ended. */
  async function switchEnd(caller: string) {
    const end = await until('the caller’s CHANNEL_HANGUP_COMPLETE', () => callerEvent(caller, 'CHANNEL_HANGUP_COMPLETE'));
    return { billsec: Number(end.variable('billsec')), cause: end.header('Hangup-Cause')! };
  }

  it('the call goes on to its end, then the controller writes its CDR with the switch’s talk seconds and cause and exits 0', async () => {
    const caller = '13800009702';
    const { call, exited } = await callAndSigterm(caller, B.numbers[0]!, base + 1, 5000, 60);
    const exit = await exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    const dialled = await call;
    expect(dialled.code).toBe(0);
    const sw = await switchEnd(caller);
    expect(sw).toMatchObject({ cause: 'NORMAL_CLEARING' });
    expect(Math.abs(sw.billsec - 5)).toBeLessThanOrEqual(1);
    // The controller stayed until the call was over.
    expect(exit.at).toBeGreaterThanOrEqual(Math.floor(Number(callerEvent(caller, 'CHANNEL_HANGUP')!.header('Event-Date-Timestamp')) / 1000));
    const cdrs = await cdrsOf(caller);
    expect(cdrs).toHaveLength(1);
    expect(cdrs[0]).toMatchObject({ result: 'connected', hangup_cause: sw.cause });
    expect(Math.abs(Number(cdrs[0]!.talk_seconds) - sw.billsec)).toBeLessThanOrEqual(1);
  }, 90_000);

  it('past the drain time the call is handed over: it goes on, and a controller started afterwards writes its CDR from the switch', async () => {
    const caller = '13800009703';
    const { call, exited } = await callAndSigterm(caller, B.numbers[1]!, base + 2, 6000, 0);
    expect(await exited).toMatchObject({ code: 0, signal: null });
    expect(callerEvent(caller, 'CHANNEL_HANGUP')).toBeUndefined(); // not cut

    takeover = await startApp(loadConfig(env), createLogger('warn'));
    const dialled = await call;
    expect(dialled.code).toBe(0);
    // The caller's call ended with the bridge, as the controller would have ended it (not the dialplan's failure cause).
    const bye = dialled.log.split(/\n(?=SIP\/2\.0 |INVITE |ACK |BYE )/).find((m) => m.startsWith('BYE '));
    expect(bye).toContain('text="NORMAL_CLEARING"');
    const sw = await switchEnd(caller);
    expect(sw).toMatchObject({ cause: 'NORMAL_CLEARING' });
    expect(Math.abs(sw.billsec - 6)).toBeLessThanOrEqual(1);
    const cdrs = await until('the CDR', async () => {
      const rows = await cdrsOf(caller);
      return rows.length > 0 && rows;
    });
    expect(cdrs).toHaveLength(1);
    expect(cdrs[0]).toMatchObject({ result: 'connected', hangup_cause: sw.cause });
    expect(Math.abs(Number(cdrs[0]!.talk_seconds) - sw.billsec)).toBeLessThanOrEqual(1);
  }, 90_000);

  it('a handed-over call that ends while no controller runs gets its CDR from the figures the switch kept', async () => {
    const caller = '13800009706';
    const { call, exited } = await callAndSigterm(caller, B.numbers[2]!, base + 3, 3000, 0);
    expect(await exited).toMatchObject({ code: 0, signal: null });
    expect((await call).code).toBe(0);
    const sw = await switchEnd(caller); // seen by this test's own connection only
    expect(sw).toMatchObject({ cause: 'NORMAL_CLEARING' });
    expect(await cdrsOf(caller)).toHaveLength(0);

    takeover = await startApp(loadConfig(env), createLogger('warn'));
    const cdrs = await until('the CDR', async () => {
      const rows = await cdrsOf(caller);
      return rows.length > 0 && rows;
    });
    expect(cdrs).toHaveLength(1);
    expect(cdrs[0]).toMatchObject({ result: 'connected', hangup_cause: sw.cause });
    expect(Math.abs(Number(cdrs[0]!.talk_seconds) - sw.billsec)).toBeLessThanOrEqual(1);
    const endedAt = Math.floor(Number(callerEvent(caller, 'CHANNEL_HANGUP_COMPLETE')!.header('Event-Date-Timestamp')) / 1000);
    expect(Math.abs((cdrs[0]!.ended_at as Date).getTime() - endedAt)).toBeLessThan(1500);
  }, 90_000);

  it('killed outright (SIGKILL) mid-call: the call goes on, and the controller still running writes its one CDR from the switch within 15 s', async () => {
    const caller = '13800009707';
    takeover = await startApp(loadConfig(env), createLogger('warn'));
    const { call, exited, killedAt } = await callAndSigterm(caller, B.numbers[3]!, base + 4, 4000, 60, 'SIGKILL');
    expect(await exited).toMatchObject({ signal: 'SIGKILL' });
    expect(callerEvent(caller, 'CHANNEL_HANGUP')).toBeUndefined(); // not cut with its controller
    const dialled = await call;
    expect(dialled.code).toBe(0);
    // With nobody on its socket the caller's leg still ends with the bridge, not with the dialplan's failure cause.
    const bye = dialled.log.split(/\n(?=SIP\/2\.0 |INVITE |ACK |BYE )/).find((m) => m.startsWith('BYE '));
    expect(bye).toContain('text="NORMAL_CLEARING"');
    const sw = await switchEnd(caller);
    expect(Math.abs(sw.billsec - 4)).toBeLessThanOrEqual(1);
    const cdrs = await until('the CDR', async () => {
      const rows = await cdrsOf(caller);
      return rows.length > 0 && rows;
    }, 30_000);
    const writtenAt = Date.now();
    const endedAt = Math.floor(Number(callerEvent(caller, 'CHANNEL_HANGUP_COMPLETE')!.header('Event-Date-Timestamp')) / 1000);
    expect(writtenAt - Math.max(killedAt, endedAt)).toBeLessThan(15_000);
    expect(cdrs).toHaveLength(1);
    expect(cdrs[0]).toMatchObject({ result: 'connected', hangup_cause: sw.cause });
    expect(Math.abs(Number(cdrs[0]!.talk_seconds) - sw.billsec)).toBeLessThanOrEqual(1);
    expect(Math.abs((cdrs[0]!.ended_at as Date).getTime() - endedAt)).toBeLessThan(1500);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await cdrsOf(caller)).toHaveLength(1);
  }, 90_000);
});
