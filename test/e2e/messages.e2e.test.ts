/**
 * Text messages through X end to end on a real FreeSWITCH with mod_sms and freeswitch-conf/: a sipp
 * sender (A's carrier) sends a SIP MESSAGE to X on the external profile; the chatplan fires it to the
 * controller; the controller relays it by binding with `sendevent SMS::SEND_MESSAGE`; the carrier
 * stand-in (sipp UAS) receives the MESSAGE from X to B with the body intact and A's number nowhere.
 *
 * Skipped (with a warning) unless E2E_ESL_HOST is set; see test/e2e/README.md.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config';
import type { MessageRecord } from '../../src/domain/message';
import { createLogger } from '../../src/logger';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase } from '../support/mysql';
import { waitUntil } from '../support/wait';
import { SCENARIO_DIR, eslAddressFromEnv, sippHostFromEnv, sippPortBaseFromEnv, withTimeout } from './support/sipp';
import { e2eControllerEnv } from './support/controller-env';

const X = '700100000000001';
const A = '13800009101';
const B = '13900009102';
const esl = eslAddressFromEnv();
if (!esl) console.warn('E2E skipped: set E2E_ESL_HOST (and E2E_ESL_PORT, E2E_ESL_PASSWORD) to run test/e2e (see test/e2e/README.md).');
const describeE2e = esl ? describe : describe.skip;

const host = sippHostFromEnv();
const base = sippPortBaseFromEnv() + 60;
const CARRIER_PORT = base;

interface Sipp {
  readonly exited: Promise<number | null>;
  trace(): string;
  stop(): void;
}

function sipp(args: string[]): Sipp {
  const dir = mkdtempSync(path.join(tmpdir(), 'e2e-sms-'));
  const messageFile = path.join(dir, 'messages.log');
  const child = spawn(process.env.E2E_SIPP_BIN ?? 'sipp', [...args, '-i', host, '-m', '1', '-nostdin', '-timeout', '30', '-trace_msg', '-message_file', messageFile], {
    cwd: dir,
    stdio: 'ignore',
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    exited,
    trace: () => (existsSync(messageFile) ? readFileSync(messageFile, 'utf8') : ''),
    stop: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      void exited.then(() => rmSync(dir, { recursive: true, force: true }));
    },
  };
}

/** The MESSAGE request the carrier stand-in received, from its sipp trace (entries as parseFirstInvite reads them). */
function receivedMessage(trace: string): string | undefined {
  for (const entry of trace.split(/^-{20,} .*$/m)) {
    const m = /^\s*(?:UDP|TCP) message received \[\d+\] bytes :\r?\n\r?\n([\s\S]*)$/.exec(entry);
    if (m?.[1]?.startsWith('MESSAGE ')) return m[1].replace(/\r\n/g, '\n');
  }
  return undefined;
}

describeE2e('text messages through X on a real FreeSWITCH (SIP MESSAGE, mod_sms)', () => {
  let app: App;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let tenantId: string;
  const running: Sipp[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startApp(
      loadConfig(e2eControllerEnv(esl!, db.url, {}, {
        OUTBOUND_SOCKET_HOST: esl!.host,
        OUTBOUND_SOCKET_PORT: process.env.E2E_OUTBOUND_SOCKET_PORT ?? '8084',
        MESSAGE_TRANSPORT: 'sip',
        MESSAGE_SIP_URI_TEMPLATE: `sip:{number}@${host}:${CARRIER_PORT}`,
        MESSAGE_SIP_FROM_HOST: esl!.host,
      })),
      createLogger('warn'),
    );
    tenantId = (await new TenantStore(db.pool).create({ name: 'e2e-sms' })).id;
    await app.bindings.importNumbers(tenantId, [{ x: X, area: '010' }]);
    await app.bindings.bind({ tenantId, mode: 'axb', a: A, b: B, x: X });
  }, 60_000);

  afterEach(() => {
    for (const s of running.splice(0)) s.stop();
  });
  afterAll(async () => {
    await app?.stop();
    await db?.drop();
  });

  it('A texts X: the carrier receives the MESSAGE from X to B, body intact, A nowhere; delivered', async () => {
    const carrier = sipp(['-sf', path.join(SCENARIO_DIR, 'uas-message.xml'), '-p', String(CARRIER_PORT)]);
    running.push(carrier);
    await new Promise((r) => setTimeout(r, 500));
    const text = 'Parcel at the door — 请开门';
    const switchSip = process.env.E2E_SWITCH_SIP ?? `${esl!.host}:5080`;
    const sender = sipp([switchSip, '-sf', path.join(SCENARIO_DIR, 'uac-message.xml'), '-s', X, '-key', 'caller', A, '-key', 'body', text, '-p', String(base + 1)]);
    running.push(sender);
    expect(await sender.exited).toBe(0);
    expect(await withTimeout(carrier.exited, 20_000, 'the carrier stand-in still running after 20 s')).toBe(0);
    const received = receivedMessage(carrier.trace());
    expect(received).toBeDefined();
    expect(received).toMatch(new RegExp(`^MESSAGE sip:${B}@`, 'm'));
    expect(received).toMatch(new RegExp(`^From: .*<sip:${X}@`, 'm'));
    expect(received).toMatch(new RegExp(`^To: .*${B}`, 'm'));
    expect(received).toContain(text);
    expect(received).not.toContain(A);

    const record = await waitUntil('the record delivered', async () => {
      const page = await app.messaging.store.list(tenantId, {});
      return page.items.find((m: MessageRecord) => m.status === 'delivered');
    }, 20_000);
    expect(record).toMatchObject({ transport: 'sip', direction: 'a_to_b', senderMasked: '138****9101', recipientMasked: '139****9102' });
  }, 60_000);
});
