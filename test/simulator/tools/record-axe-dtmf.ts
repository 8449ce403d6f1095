/**
 * Records, from a real FreeSWITCH, a call to an AXE X whose caller keys digits: what the switch sends
 * to the controller's outbound socket and to an observer while `play_and_get_digits` prompts, takes the
 * digits (RFC 2833 telephone-events played by sipp from Debian's sip-tester pcaps, or SIP INFO
 * application/dtmf-relay in the early dialog) and completes; then `playback` and `hangup UNALLOCATED_NUMBER`
 * as for a refused caller (the bridge after it is recorded in 13e). Format of shared/fs-traces (13x:
 * the controller's transcript and an `-observer` one), into test/simulator/recordings/.
 *
 *   npx tsx test/simulator/tools/record-axe-dtmf.ts <name> <rfc2833|info|none> [digits] [caller's sipp port]
 *   npx tsx test/simulator/tools/record-axe-dtmf.ts 20a-axe-digits-rfc2833 rfc2833 2468 5290
 *   npx tsx test/simulator/tools/record-axe-dtmf.ts 20b-axe-digits-sip-info info 2468 5290
 *   npx tsx test/simulator/tools/record-axe-dtmf.ts 20c-axe-no-digits none '' 5290
 *
 * Needs a switch started with this repository's freeswitch-conf (CONTROLLER_SOCKET_ADDRESS pointing at
 * RECORD_CONTROLLER_ADDRESS, default 127.0.0.1:8084, where this tool listens), E2E_ESL_HOST/PORT/PASSWORD
 * and sipp. Sanitized as the shared traces.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Framer } from '../trace-replay';
import { dialXKeying, type KeyingMethod } from '../../e2e/support/sipp-keys';
import { recordEsl, type RecordedMessage } from './recording-session';
import { sanitize } from './sanitize';

const STANDARD_EVENTS =
  'CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_PARK CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE BACKGROUND_JOB CHANNEL_DESTROY DTMF';
const X = '700100000000001';
const CALLER = '13700000003';
const OUT_DIR = path.resolve(__dirname, '../recordings');
export const DIGITS_ARGS = (length: number) => `${length} ${length} 2 3000 # tone_stream://%(400,200,440);loops=1 silence_stream://250 ng_extension \\d{${length}} 2000`;

/** The controller's side of an outbound-socket session, every message logged both ways. */
function controllerSession(sock: net.Socket, started: number) {
  const log: RecordedMessage[] = [];
  let wake: (() => void) | undefined;
  const framer = new Framer((raw) => {
    log.push({ dir: 'recv', t_ms: Date.now() - started, raw });
    wake?.();
  });
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => framer.push(d));
  let closedByFreeswitch = false;
  sock.on('end', () => (closedByFreeswitch = true));
  const until = async (pred: (raw: string) => boolean, ms = 30_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!log.some((m) => m.dir === 'recv' && pred(m.raw))) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the switch');
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 20);
      });
    }
  };
  const count = () => log.filter((m) => m.dir === 'recv').length;
  return {
    log,
    send: (raw: string) => {
      log.push({ dir: 'send', t_ms: Date.now() - started, raw });
      sock.write(raw);
    },
    until,
    next: async () => {
      const n = count();
      await until(() => count() > n);
    },
    closedByFreeswitch: () => closedByFreeswitch,
  };
}

async function main(): Promise<void> {
  const [name, method, digitsArg, portArg] = process.argv.slice(2);
  if (!name || !method || !['rfc2833', 'info', 'none'].includes(method)) throw new Error('usage: record-axe-dtmf.ts <name> <rfc2833|info|none> [digits] [port]');
  const digits = method === 'none' ? '' : (digitsArg ?? '2468');
  const host = process.env.E2E_ESL_HOST ?? '127.0.0.1';
  const eslPort = Number(process.env.E2E_ESL_PORT ?? 8021);
  const password = process.env.E2E_ESL_PASSWORD ?? 'ClueCon';
  const [ctlHost, ctlPort] = (process.env.RECORD_CONTROLLER_ADDRESS ?? '127.0.0.1:8084').split(':');
  const sippHost = process.env.E2E_SIPP_HOST ?? '127.0.0.1';
  const callerPort = Number(portArg ?? 5290);
  const started = Date.now();

  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(ctlPort), ctlHost, () => resolve());
  });
  const observer = recordEsl(host, eslPort);
  await observer.until((raw) => raw.startsWith('Content-Type: auth/request'));
  observer.send(`auth ${password}\n\n`);
  await observer.next();
  observer.send(`event plain ${STANDARD_EVENTS}\n\n`);
  await observer.next();

  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const caller = dialXKeying({
    switchSip: process.env.E2E_SWITCH_SIP ?? `${host}:5080`, x: X, caller: CALLER, host: sippHost, port: callerPort,
    method: method as KeyingMethod | 'none', digits, keyAfterMs: 1500,
  });
  const ctl = controllerSession(await accepted, started);
  ctl.send('connect\n\n');
  await ctl.next();
  const uC = /Unique-ID: ([0-9a-f-]{36})/.exec(ctl.log.find((m) => m.dir === 'recv')?.raw ?? '')?.[1] ?? '';
  ctl.send('myevents\n\n');
  await ctl.next();
  ctl.send('linger\n\n');
  await ctl.next();
  ctl.send('sendmsg\ncall-command: execute\nexecute-app-name: pre_answer\n\n');
  await ctl.until((raw) => raw.includes('Event-Name: CHANNEL_EXECUTE_COMPLETE') && raw.includes('Application: pre_answer'));
  ctl.send(`sendmsg\ncall-command: execute\nexecute-app-name: play_and_get_digits\nexecute-app-arg: ${DIGITS_ARGS(Math.max(digits.length, 4))}\n\n`);
  await ctl.until((raw) => raw.includes('Event-Name: CHANNEL_EXECUTE_COMPLETE') && raw.includes('Application: play_and_get_digits'), 40_000);
  ctl.send('sendmsg\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: tone_stream://%(500,500,480,620);loops=1\n\n');
  await ctl.until((raw) => raw.includes('Event-Name: CHANNEL_EXECUTE_COMPLETE') && raw.includes('Application: playback'));
  ctl.send('sendmsg\ncall-command: execute\nexecute-app-name: hangup\nexecute-app-arg: UNALLOCATED_NUMBER\n\n');
  await ctl.until((raw) => raw.includes('Content-Disposition: linger'));
  await new Promise((r) => setTimeout(r, 1000));
  ctl.send('exit\n\n');
  await ctl.until((raw) => raw.includes('Content-Disposition: disconnect')).catch(() => undefined);
  await observer.until((raw) => raw.includes('Event-Name: CHANNEL_DESTROY') && raw.includes(uC));
  await new Promise((r) => setTimeout(r, 300));
  observer.send('exit\n\n');
  await new Promise<void>((r) => observer.socket.once('close', () => r()));
  const phone = await caller;
  server.close();

  fs.mkdirSync(OUT_DIR, { recursive: true });
  const write = (file: string, log: readonly RecordedMessage[]) =>
    fs.writeFileSync(path.join(OUT_DIR, file), log.map((m) => JSON.stringify({ ...m, raw: m.dir === 'recv' ? sanitize(m.raw) : m.raw })).join('\n') + '\n');
  write(`${name}.esl.jsonl`, ctl.log);
  write(`${name}-observer.esl.jsonl`, observer.log);
  fs.writeFileSync(path.join(OUT_DIR, `${name}.sip.txt`), sanitize(phone.log));
  const manifestFile = path.join(OUT_DIR, 'manifest.json');
  const manifest = (fs.existsSync(manifestFile) ? JSON.parse(fs.readFileSync(manifestFile, 'utf8')) : []) as Array<{ scenario: string }>;
  const lastAt = (log: readonly RecordedMessage[]) => log[log.length - 1]?.t_ms ?? null;
  const entry = {
    scenario: name,
    recorded: new Date().toISOString().slice(0, 10),
    switch: 'FreeSWITCH 1.10.12-release',
    transcripts: [
      { file: `${name}.esl.jsonl`, connection: `OUTBOUND socket: FreeSWITCH connected to the recording tool at ${ctlHost}:${ctlPort}`, closed_by_freeswitch_at_ms: ctl.closedByFreeswitch() ? lastAt(ctl.log) : null, closed_by_client_at_ms: null },
      { file: `${name}-observer.esl.jsonl`, connection: 'inbound ESL connection subscribed to the standard channel events and DTMF, open during the call', closed_by_freeswitch_at_ms: observer.closedByFreeswitch() ? lastAt(observer.log) : null, closed_by_client_at_ms: null },
    ],
    ids: { uC },
    phones: [
      {
        label: 'C', number: CALLER, address: `${sippHost}:${callerPort}`,
        behaviour: `UAC: INVITE sip:${X} (profile external, context public), SDP offering PCMU and telephone-event/8000 (101); after the 183 it keys ${
          method === 'rfc2833' ? `"${digits}" as RFC 2833 events (sip-tester dtmf_2833_<d>.pcap)` : method === 'info' ? `"${digits}" as SIP INFO application/dtmf-relay` : 'nothing'
        }; waits for the final response`,
        sipp_exit_code: phone.code,
      },
    ],
    sip: `${name}.sip.txt`,
  };
  fs.writeFileSync(manifestFile, JSON.stringify([...manifest.filter((s) => s.scenario !== name), entry], null, 1) + '\n');
  console.log(`wrote ${name}: ${ctl.log.length} + ${observer.log.length} messages, sipp exit ${String(phone.code)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
