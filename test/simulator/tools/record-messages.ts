/**
 * Records, from a real FreeSWITCH 1.10.12 with mod_sms and freeswitch-conf/ (its chatplan), what the switch
 * sends over ESL for text messages, in the format of shared/fs-traces (`{"dir","t_ms","raw"}` per ESL
 * message), into test/simulator/recordings/, with what the sipp phones saw (`.sip.txt`):
 *  - 18a-message-in: a carrier (sipp UAC) sends MESSAGE to X on the external profile; the chatplan fires it.
 *  - 18b-message-out: `sendevent CUSTOM` SMS::SEND_MESSAGE (blocking, dest_proto sip: sofia's chat interface) to a carrier stand-in (sipp UAS, 202),
 *    and the SMS::DELIVERY_REPORT that follows.
 *
 *   E2E_ESL_HOST=127.0.0.3 E2E_SIPP_HOST=127.0.0.3 npx tsx test/simulator/tools/record-messages.ts
 *
 * Sanitized like the shared traces (hostname → fs-node-1, non-loopback IPs → loopback, Content-Length recomputed).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SCENARIO_DIR } from '../../e2e/support/sipp';
import { leave, recordEsl, RECORDED_SWITCH, saveRecording, subscribe, switchFromEnv, type EslRecording } from './recording-session';

const X = '700100000000001';
const A = '13800000001';
const B = '13900000002';
const EVENTS = 'MESSAGE CUSTOM SMS::DELIVERY_REPORT';
const TEXT_IN = 'Parcel at the door, 请开门';
const TEXT_OUT = 'On my way — 马上到';

async function session(started: number): Promise<EslRecording> {
  const esl = switchFromEnv();
  const rec = recordEsl(esl, started);
  await subscribe(rec, esl.password, EVENTS);
  return rec;
}

function sipp(args: string[], dir: string): Promise<{ code: number | null; trace: string }> {
  const messageFile = path.join(dir, 'messages.log');
  const child = spawn(process.env.E2E_SIPP_BIN ?? 'sipp', [...args, '-m', '1', '-nostdin', '-timeout', '30', '-trace_msg', '-message_file', messageFile], { cwd: dir, stdio: 'ignore' });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, trace: fs.existsSync(messageFile) ? fs.readFileSync(messageFile, 'utf8') : '' })));
}

async function main(): Promise<void> {
  const { host } = switchFromEnv();
  const sippHost = process.env.E2E_SIPP_HOST ?? host;
  const switchSip = process.env.E2E_SWITCH_SIP ?? `${host}:5080`;
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'record-sms-'));

  // 18a: a MESSAGE to X.
  let started = Date.now();
  let s = await session(started);
  const inbound = sipp([switchSip, '-sf', path.join(SCENARIO_DIR, 'uac-message.xml'), '-s', X, '-key', 'caller', A, '-key', 'body', TEXT_IN, '-i', sippHost, '-p', '5290'], dir);
  await s.until((raw) => raw.includes('Event-Name: MESSAGE') && raw.includes('ng_relay: true'));
  const uac = await inbound;
  await new Promise((r) => setTimeout(r, 1500));
  await leave(s);
  write('18a-message-in', s, uac.trace, { phones: [{ label: 'A', number: A, address: `${sippHost}:5290`, behaviour: `UAC: MESSAGE to ${X} on the external profile, body "${TEXT_IN}"`, sipp_exit: uac.code }] });

  // 18b: a relayed MESSAGE out, from X to B.
  started = Date.now();
  s = await session(started);
  const carrier = sipp(['-sf', path.join(SCENARIO_DIR, 'uas-message.xml'), '-i', sippHost, '-p', '5291'], dir);
  await new Promise((r) => setTimeout(r, 500));
  const body = Buffer.from(TEXT_OUT, 'utf8');
  const headers = [
    'Event-Subclass: SMS::SEND_MESSAGE',
    'proto: global',
    'dest_proto: sip',
    `from: ${X}@${sippHost}`,
    `to: external/sip:${B}@${sippHost}:5291`,
    'sip_profile: external',
    'type: text/plain',
    'blocking: true',
    'ng_carrier_id: 5b0c8d1e-0000-4000-8000-000000000017',
  ];
  s.send(`sendevent CUSTOM\n${headers.join('\n')}\nContent-Length: ${body.length}\n\n${TEXT_OUT}`);
  await s.until((raw) => raw.includes('SMS%3A%3ADELIVERY_REPORT') || raw.includes('SMS::DELIVERY_REPORT'));
  const uas = await carrier;
  await new Promise((r) => setTimeout(r, 1000));
  await leave(s);
  write('18b-message-out', s, uas.trace, { phones: [{ label: 'B', number: B, address: `${sippHost}:5291`, behaviour: 'UAS (carrier stand-in): receives one MESSAGE, answers 202 Accepted', sipp_exit: uas.code }] });
  fs.rmSync(dir, { recursive: true, force: true });
}

function write(name: string, rec: EslRecording, sip: string, entry: Record<string, unknown>): void {
  saveRecording(name, [{ suffix: '', rec }], { switch: `${RECORDED_SWITCH}, mod_sms, freeswitch-conf/ of this repository`, ...entry }, sip);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
