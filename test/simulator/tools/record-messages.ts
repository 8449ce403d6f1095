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
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SCENARIO_DIR } from '../../e2e/support/sipp';
import { sanitize } from './sanitize';

const X = '700100000000001';
const A = '13800000001';
const B = '13900000002';
const OUT_DIR = path.resolve(__dirname, '../recordings');
const EVENTS = 'MESSAGE CUSTOM SMS::DELIVERY_REPORT';
const TEXT_IN = 'Parcel at the door, 请开门';
const TEXT_OUT = 'On my way — 马上到';

type Entry = { dir: 'send' | 'recv'; t_ms: number; raw: string };

interface Session {
  log: Entry[];
  send(raw: string): void;
  until(pred: (raw: string) => boolean, ms?: number): Promise<void>;
  close(): Promise<'freeswitch' | null>;
}

async function session(host: string, port: number, password: string, started: number): Promise<Session> {
  const log: Entry[] = [];
  const sock = net.connect(port, host);
  let closedBy: 'freeswitch' | null = null;
  // Framed by bytes: a text's body is UTF-8, and Content-Length counts bytes.
  let pending = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    for (;;) {
      const end = pending.indexOf('\n\n');
      if (end < 0) return;
      const length = Number(/(?:^|\n)Content-Length: (\d+)/.exec(pending.subarray(0, end).toString('utf8'))?.[1] ?? 0);
      if (pending.length < end + 2 + length) return;
      log.push({ dir: 'recv', t_ms: Date.now() - started, raw: pending.subarray(0, end + 2 + length).toString('utf8') });
      pending = pending.subarray(end + 2 + length);
    }
  });
  sock.on('end', () => (closedBy = 'freeswitch'));
  const s: Session = {
    log,
    send(raw) {
      log.push({ dir: 'send', t_ms: Date.now() - started, raw });
      sock.write(raw);
    },
    async until(pred, ms = 20_000) {
      const deadline = Date.now() + ms;
      while (!log.some((m) => m.dir === 'recv' && pred(m.raw))) {
        if (Date.now() > deadline) throw new Error('timed out waiting for the switch');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      s.send('exit\n\n');
      await new Promise<void>((r) => sock.once('close', () => r()));
      return closedBy;
    },
  };
  await s.until((raw) => raw.startsWith('Content-Type: auth/request'));
  s.send(`auth ${password}\n\n`);
  await s.until((raw) => raw.includes('Reply-Text: +OK accepted'));
  const n = log.length;
  s.send(`event plain ${EVENTS}\n\n`);
  await s.until(() => log.length > n + 1);
  return s;
}

function sipp(args: string[], dir: string): Promise<{ code: number | null; trace: string }> {
  const messageFile = path.join(dir, 'messages.log');
  const child = spawn(process.env.E2E_SIPP_BIN ?? 'sipp', [...args, '-m', '1', '-nostdin', '-timeout', '30', '-trace_msg', '-message_file', messageFile], { cwd: dir, stdio: 'ignore' });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, trace: fs.existsSync(messageFile) ? fs.readFileSync(messageFile, 'utf8') : '' })));
}

async function main(): Promise<void> {
  const host = process.env.E2E_ESL_HOST ?? '127.0.0.1';
  const eslPort = Number(process.env.E2E_ESL_PORT ?? 8021);
  const password = process.env.E2E_ESL_PASSWORD ?? 'ClueCon';
  const sippHost = process.env.E2E_SIPP_HOST ?? host;
  const switchSip = process.env.E2E_SWITCH_SIP ?? `${host}:5080`;
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'record-sms-'));

  // 18a: a MESSAGE to X.
  let started = Date.now();
  let s = await session(host, eslPort, password, started);
  const inbound = sipp([switchSip, '-sf', path.join(SCENARIO_DIR, 'uac-message.xml'), '-s', X, '-key', 'caller', A, '-key', 'body', TEXT_IN, '-i', sippHost, '-p', '5290'], dir);
  await s.until((raw) => raw.includes('Event-Name: MESSAGE') && raw.includes('ng_relay: true'));
  const uac = await inbound;
  await new Promise((r) => setTimeout(r, 1500));
  let closed = await s.close();
  write('18a-message-in', s.log, closed, uac.trace, { phones: [{ label: 'A', number: A, address: `${sippHost}:5290`, behaviour: `UAC: MESSAGE to ${X} on the external profile, body "${TEXT_IN}"`, sipp_exit: uac.code }] });

  // 18b: a relayed MESSAGE out, from X to B.
  started = Date.now();
  s = await session(host, eslPort, password, started);
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
  closed = await s.close();
  write('18b-message-out', s.log, closed, uas.trace, { phones: [{ label: 'B', number: B, address: `${sippHost}:5291`, behaviour: 'UAS (carrier stand-in): receives one MESSAGE, answers 202 Accepted', sipp_exit: uas.code }] });
  fs.rmSync(dir, { recursive: true, force: true });
}

function write(name: string, log: Entry[], closedBy: 'freeswitch' | null, sip: string, extra: Record<string, unknown>): void {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const sanitized = log.map((m) => ({ ...m, raw: m.dir === 'recv' ? sanitize(m.raw) : m.raw }));
  fs.writeFileSync(path.join(OUT_DIR, `${name}.esl.jsonl`), sanitized.map((m) => JSON.stringify(m)).join('\n') + '\n');
  fs.writeFileSync(path.join(OUT_DIR, `${name}.sip.txt`), sip);
  const manifestFile = path.join(OUT_DIR, 'manifest.json');
  const manifest = (fs.existsSync(manifestFile) ? JSON.parse(fs.readFileSync(manifestFile, 'utf8')) : []) as Array<{ scenario: string }>;
  const entry = {
    scenario: name,
    recorded: new Date().toISOString().slice(0, 10),
    switch: 'FreeSWITCH 1.10.12-release, mod_sms, freeswitch-conf/ of this repository',
    transcripts: [{ file: `${name}.esl.jsonl`, closed_by_freeswitch_at_ms: closedBy ? log[log.length - 1]!.t_ms : null, closed_by_client_at_ms: null }],
    ...extra,
  };
  fs.writeFileSync(manifestFile, JSON.stringify([...manifest.filter((s) => s.scenario !== name), entry], null, 1) + '\n');
  console.log(`wrote ${name}: ${log.length} messages`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
