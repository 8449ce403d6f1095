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
import * as net from 'node:net';
import { dialXKeying, type KeyingMethod } from '../../e2e/support/sipp-keys';
import { leave, recordEsl, saveRecording, subscribe, switchFromEnv } from './recording-session';
import { sanitize } from './sanitize';

const STANDARD_EVENTS =
  'CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_PARK CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE BACKGROUND_JOB CHANNEL_DESTROY DTMF';
const X = '700100000000001';
const CALLER = '13700000003';
export const DIGITS_ARGS = (length: number) => `${length} ${length} 2 3000 # tone_stream://%(400,200,440);loops=1 silence_stream://250 ng_extension \\d{${length}} 2000`;

async function main(): Promise<void> {
  const [name, method, digitsArg, portArg] = process.argv.slice(2);
  if (!name || !method || !['rfc2833', 'info', 'none'].includes(method)) throw new Error('usage: record-axe-dtmf.ts <name> <rfc2833|info|none> [digits] [port]');
  const digits = method === 'none' ? '' : (digitsArg ?? '2468');
  const esl = switchFromEnv();
  const [ctlHost, ctlPort] = (process.env.RECORD_CONTROLLER_ADDRESS ?? '127.0.0.1:8084').split(':');
  const sippHost = process.env.E2E_SIPP_HOST ?? '127.0.0.1';
  const callerPort = Number(portArg ?? 5290);
  const started = Date.now();

  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(ctlPort), ctlHost, () => resolve());
  });
  const observer = recordEsl(esl, started);
  await subscribe(observer, esl.password, STANDARD_EVENTS);

  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const caller = dialXKeying({
    switchSip: process.env.E2E_SWITCH_SIP ?? `${esl.host}:5080`, x: X, caller: CALLER, host: sippHost, port: callerPort,
    method: method as KeyingMethod | 'none', digits, keyAfterMs: 1500,
  });
  const ctl = recordEsl(await accepted, started);
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
  await leave(observer);
  const phone = await caller;
  server.close();

  const entry = {
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
  saveRecording(
    name,
    [
      { suffix: '', rec: ctl, connection: `OUTBOUND socket: FreeSWITCH connected to the recording tool at ${ctlHost}:${ctlPort}` },
      { suffix: '-observer', rec: observer, connection: 'inbound ESL connection subscribed to the standard channel events and DTMF, open during the call' },
    ],
    entry,
    sanitize(phone.log),
  );
  console.log(`sipp exit ${String(phone.code)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
