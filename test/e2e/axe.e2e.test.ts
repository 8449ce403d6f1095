/**
 * AXE end to end: a sipp phone dials X on the switch's external profile, hears the extension prompt as
 * early media, keys the extension (RFC 2833 events from sip-tester's pcaps, or SIP INFO dtmf-relay), and
 * B's phone rings showing X and nothing of the caller's number; a wrong extension reaches nobody.
 *
 * Skipped (with a warning) unless E2E_ESL_HOST is set; see test/e2e/README.md. The controller's outbound
 * socket listens on E2E_OUTBOUND_SOCKET_HOST:E2E_OUTBOUND_SOCKET_PORT (default 127.0.0.1:8084), where the
 * switch's CONTROLLER_SOCKET_ADDRESS points.
 */
import { existsSync } from 'node:fs';
import type { RowDataPacket } from 'mysql2/promise';
import { startApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase } from '../support/mysql';
import { eslAddressFromEnv, sippHostFromEnv, sippPortBaseFromEnv, startPhone, type Phone } from './support/sipp';
import { e2eControllerEnv, phoneDialStrings } from './support/controller-env';
import { dialXKeying, type KeyingMethod } from './support/sipp-keys';

const X = '700100000000001';
const esl = eslAddressFromEnv();
const pcaps = existsSync(`${process.env.E2E_SIPP_PCAP_DIR ?? '/usr/share/sip-tester'}/dtmf_2833_1.pcap`);
if (!esl) console.warn('E2E skipped: set E2E_ESL_HOST (and E2E_ESL_PORT, E2E_ESL_PASSWORD) to run test/e2e (see test/e2e/README.md).');
else if (!pcaps) console.warn('AXE e2e skipped: no sip-tester pcaps (dtmf_2833_<digit>.pcap) in E2E_SIPP_PCAP_DIR or /usr/share/sip-tester');
const describeE2e = esl && pcaps ? describe : describe.skip;

const base = sippPortBaseFromEnv() + 60;
const host = sippHostFromEnv();
const A = '13800009201';
const B = { number: '13900009201', port: base };
const EXTENSION = '2468';

describeE2e('AXE calls against a real FreeSWITCH with sipp phones', () => {
  let app: App;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let tenantId: string;
  let bindingId: string;
  const phones: Phone[] = [];
  let callerPort = base + 10;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startApp(
      loadConfig(e2eControllerEnv(esl!, db.url, phoneDialStrings(host, [B]), {
        OUTBOUND_SOCKET_HOST: process.env.E2E_OUTBOUND_SOCKET_HOST ?? '127.0.0.1',
        OUTBOUND_SOCKET_PORT: process.env.E2E_OUTBOUND_SOCKET_PORT ?? '8084',
        NOT_IN_SERVICE_PROMPT: 'tone_stream://%(500,500,480,620);loops=1',
        EXTENSION_PROMPT: 'tone_stream://%(400,200,440);loops=1',
        EXTENSION_TIMEOUT_MS: '4000',
        EXTENSION_DIGIT_TIMEOUT_MS: '2000',
      })),
      createLogger('warn'),
    );
    tenantId = (await new TenantStore(db.pool).create({ name: 'e2e-axe' })).id;
    await app.bindings.importNumbers(tenantId, [{ x: X, area: '010' }]);
    bindingId = (await app.bindings.bind({ tenantId, mode: 'axe', a: A, b: B.number, x: X, extension: EXTENSION })).binding.id;
  }, 60_000);

  afterEach(async () => {
    await Promise.all(phones.splice(0).map((p) => p.stop()));
  });
  afterAll(async () => {
    await app?.stop();
    await db?.drop();
  });

  async function cdrOfCallFrom(caller: string, after: number): Promise<RowDataPacket> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const [rows] = await db.pool.query<RowDataPacket[]>('SELECT * FROM cdrs WHERE a = ? AND id > ? ORDER BY id DESC LIMIT 1', [caller, after]);
      if (rows[0]) return rows[0];
      if (Date.now() > deadline) throw new Error(`no CDR for a call from ${caller}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const lastCdrId = async (): Promise<number> => {
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT COALESCE(MAX(id), 0) AS id FROM cdrs');
    return Number(rows[0]!.id);
  };
  const dial = (method: KeyingMethod, digits: string) => {
    callerPort += 2;
    return dialXKeying({ switchSip: process.env.E2E_SWITCH_SIP ?? `${esl!.host}:5080`, x: X, caller: A, host, port: callerPort, method, digits, keyAfterMs: 1200 });
  };

  it.each(['rfc2833', 'info'] as const)('the right extension keyed by %s reaches B, whose INVITE shows X and no A number', async (method) => {
    const b = await startPhone({ number: B.number, port: B.port, behaviour: 'answer-then-bye', talkMs: 1000 });
    phones.push(b);
    const before = await lastCdrId();
    const call = await dial(method, EXTENSION);
    const invite = await b.receivedInvite(15_000);
    expect(invite.from).toContain(X);
    for (const header of [invite.from, invite.remotePartyId ?? '', invite.pAssertedIdentity ?? '']) expect(header).not.toContain(A);
    expect(invite.raw).not.toContain(A);
    if (call.code !== 0) console.log(call.log.slice(-6000));
    expect(call.code).toBe(0);
    expect(call.log).toMatch(/SIP\/2\.0 200 OK[\s\S]*CSeq: 1 INVITE/);
    expect(await cdrOfCallFrom(A, before)).toMatchObject({ result: 'connected', kind: 'axe', binding_id: bindingId, tenant_id: tenantId, x: X, b: B.number });
  }, 90_000);

  it('a wrong extension hears "not in service", gets 404 and reaches nobody', async () => {
    const b = await startPhone({ number: B.number, port: B.port, behaviour: 'answer' });
    phones.push(b);
    const before = await lastCdrId();
    const call = await dial('rfc2833', '1357');
    expect(call.log).toMatch(/SIP\/2\.0 404/);
    expect(await cdrOfCallFrom(A, before)).toMatchObject({ result: 'wrong_extension', kind: 'axe', tenant_id: tenantId, hangup_cause: 'UNALLOCATED_NUMBER', talk_seconds: 0 });
    await expect(b.receivedInvite(1000)).rejects.toThrow(/no INVITE/);
  }, 90_000);
});
