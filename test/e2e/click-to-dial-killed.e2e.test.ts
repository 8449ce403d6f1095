/**
 * A click-to-dial controller killed outright (SIGKILL) while A and B talk, on the real switch: the call goes
 * on, B hangs up while no controller runs, and the controller started afterwards finds both legs gone and
 * writes the one CDR from the figures each leg's reporting hook kept on the switch (A's originate variables, exported
 * to B, src/flows/switch-figures.ts): connected, B's billed seconds, the cause, the end time. Checks on the way that
 * the switch really kept both legs' figures (`hash select`), that they are deleted once settled, and that the
 * switch logged no ERR or CRIT line meanwhile (a dial string carrying `${` into the bridge's argument would cost
 * one per call: `Invalid data (${last_arg} contains a variable)`).
 *
 * Skipped (with a warning) unless E2E_ESL_HOST is set; see test/e2e/README.md.
 */
import type { RowDataPacket } from 'mysql2/promise';
import { startApp, type App } from '../../src/app';
import { callIdFor } from '../../src/calls/click-to-dial-request';
import { loadConfig } from '../../src/config';
import { EslClient } from '../../src/esl/client';
import type { EslEvent } from '../../src/esl/event';
import { legUuid } from '../../src/flows/click-to-dial';
import { FIGURES_REALM, parseKeptFigures } from '../../src/flows/switch-figures';
import { createLogger } from '../../src/logger';
import { TenantStore } from '../../src/stores/tenant-store';
import { startControllerProcess, type ControllerProcess } from '../support/controller-process';
import { createTestDatabase } from '../support/mysql';
import { RawEsl } from './support/raw-esl';
import { eslAddressFromEnv, sippHostFromEnv, sippPortBaseFromEnv, startPhone, type Phone } from './support/sipp';
import { e2eControllerEnv, phoneDialStrings } from './support/controller-env';
import { waitUntil } from '../support/wait';

const X = '700100000000001';
const esl = eslAddressFromEnv();
if (!esl) console.warn('E2E skipped: set E2E_ESL_HOST (and E2E_ESL_PORT, E2E_ESL_PASSWORD) to run test/e2e (see test/e2e/README.md).');
const describeE2e = esl ? describe : describe.skip;

const base = sippPortBaseFromEnv() + 90;
const A = { number: '13800009901', port: base };
const B = { number: '13900009901', port: base + 1 };

const until = <T,>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> =>
  waitUntil(what, probe, timeoutMs, 50);

describeE2e('click-to-dial whose controller is killed mid-call, on a real FreeSWITCH', () => {
  jest.setTimeout(120_000);
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let env: Record<string, string>;
  let api: App;
  let observer: EslClient;
  let switchLog: RawEsl | undefined;
  const complaints: string[] = [];
  const seen: EslEvent[] = [];
  let key: string;
  let tenantId: string;
  let child: ControllerProcess | undefined;
  let takeover: App | undefined;
  const phones: Phone[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    const host = sippHostFromEnv();
    env = e2eControllerEnv(esl!, db.url, phoneDialStrings(host, [A, B]), {
      OUTBOUND_SOCKET_HOST: '127.0.0.1',
      OUTBOUND_SOCKET_PORT: '0',
      CALLBACK_LOCK_SECONDS: '2',
    });
    // The API runs here without workers; the controller that runs the call is the child process.
    api = await startApp(loadConfig(env), createLogger('warn'), { workers: false });
    const tenants = new TenantStore(db.pool);
    const tenant = await tenants.create({ name: 'e2e-ctd-killed', defaultX: X });
    tenantId = tenant.id;
    await api.bindings.importNumbers(tenant.id, [{ x: X, area: '010' }]);
    key = (await tenants.createApiKey(tenant.id, 'e2e')).key;
    observer = new EslClient({
      host: esl!.host, port: esl!.port, password: esl!.password,
      events: ['CHANNEL_ANSWER', 'CHANNEL_BRIDGE', 'CHANNEL_HANGUP', 'CHANNEL_HANGUP_COMPLETE'],
      commandTimeoutMs: 5000, reconnectMinMs: 100, reconnectMaxMs: 1000, logger: createLogger('silent'),
    });
    observer.on('event', (e: EslEvent) => seen.push(e));
    await observer.start();
    switchLog = await RawEsl.connect(esl!);
    await switchLog.watchLog('err', (line) => complaints.push(line));
  }, 60_000);

  afterEach(async () => {
    await child?.kill();
    child = undefined;
    await takeover?.stop();
    takeover = undefined;
    await Promise.all(phones.splice(0).map((p) => p.stop()));
  });
  afterAll(async () => {
    switchLog?.close();
    await observer?.stop();
    await api?.stop();
    await db?.drop();
  });

  const eventOf = (uuid: string, name: string): EslEvent | undefined => seen.find((e) => e.name === name && e.uuid === uuid);
  const at = (e: EslEvent): number => Math.floor(Number(e.header('Event-Date-Timestamp')) / 1000);

  async function cdrsOf(callId: string): Promise<RowDataPacket[]> {
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT * FROM cdrs WHERE call_id = ?', [callId]);
    return rows;
  }

  it('killed while A and B talk, B hangs up unwatched: the controller started afterwards writes one connected CDR with the switch’s talk seconds', async () => {
    child = await startControllerProcess(env);
    phones.push(await startPhone({ number: A.number, port: A.port, behaviour: 'answer', ringMs: 300 }));
    phones.push(await startPhone({ number: B.number, port: B.port, behaviour: 'answer-then-bye', ringMs: 500, talkMs: 5000 }));
    const requestId = `e2e-ctd-killed-${Date.now()}`;
    const id = callIdFor(tenantId, requestId);
    const legs = { a: legUuid(id, 'a', 1), b: legUuid(id, 'b', 1) };
    const addr = api.http.server.address();
    const res = await fetch(`http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/v1/calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ requestId, a: A.number, b: B.number }),
    });
    expect(res.status).toBe(202);

    await until('the bridge', () => eventOf(legs.a, 'CHANNEL_BRIDGE'), 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    child.child.kill('SIGKILL');
    expect(await child.exited).toMatchObject({ signal: 'SIGKILL' });

    // The call goes on and ends with nobody following it; the switch kept both legs' figures.
    const bEnd = await until('B to end', () => eventOf(legs.b, 'CHANNEL_HANGUP_COMPLETE'), 30_000);
    const aEnd = await until('A to end', () => eventOf(legs.a, 'CHANNEL_HANGUP_COMPLETE'), 10_000);
    const keptA = parseKeptFigures(await observer.api(`hash select/${FIGURES_REALM}/${legs.a}`));
    const keptB = parseKeptFigures(await observer.api(`hash select/${FIGURES_REALM}/${legs.b}`));
    expect(keptA).toMatchObject({ hangupCause: aEnd.header('Hangup-Cause'), billsec: Number(aEnd.variable('billsec')) });
    expect(keptB).toMatchObject({ hangupCause: bEnd.header('Hangup-Cause'), billsec: Number(bEnd.variable('billsec')), disposition: 'recv_bye' });
    expect(keptA!.bridgedAt).not.toBeNull();
    expect(await cdrsOf(id)).toHaveLength(0);

    takeover = await startApp(loadConfig(env), createLogger('warn'), { lockDurationMs: 2000, stalledIntervalMs: 1000 });
    const rows = await until('the CDR', async () => {
      const r = await cdrsOf(id);
      return r.length > 0 && r;
    }, 30_000);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ result: 'connected', talk_seconds: Number(bEnd.variable('billsec')), hangup_cause: bEnd.header('Hangup-Cause'), hangup_side: 'b' });
    expect(Math.abs((rows[0]!.ended_at as Date).getTime() - at(aEnd))).toBeLessThan(1000);
    expect(Math.abs((rows[0]!.b_answer_at as Date).getTime() - at(eventOf(legs.a, 'CHANNEL_BRIDGE')!))).toBeLessThan(1000);
    // Settled: nothing of the call is kept on the switch any more.
    await until('the kept figures deleted', async () =>
      parseKeptFigures(await observer.api(`hash select/${FIGURES_REALM}/${legs.a}`)) === null &&
      parseKeptFigures(await observer.api(`hash select/${FIGURES_REALM}/${legs.b}`)) === null, 10_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await cdrsOf(id)).toHaveLength(1);
    expect(complaints).toEqual([]);
  });
});
