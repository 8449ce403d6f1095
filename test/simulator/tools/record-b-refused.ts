/**
 * Records, from a real FreeSWITCH, what the switch sends when the B leg of a two-step click-to-dial cannot
 * be created (the bridge's endpoint refuses before any SIP is sent), in the format of shared/fs-traces
 * (`{"dir","t_ms","raw"}` per ESL message), into test/simulator/recordings/.
 *
 *   npx tsx test/simulator/tools/record-b-refused.ts <name> <bridge endpoint> [A's sipp port]
 *   npx tsx test/simulator/tools/record-b-refused.ts 16a-b-refused-error-endpoint error/DESTINATION_OUT_OF_ORDER 6200
 *   npx tsx test/simulator/tools/record-b-refused.ts 16b-b-refused-unknown-profile sofia/nosuchprofile/13900000002@127.0.0.1:6201 6200
 *
 * The scenario follows 09b: the 03 originate (continue_on_fail=true) to A (a sipp phone that answers and
 * waits for BYE), then `sendmsg <uA>` bridge with Event-UUID; after its EXECUTE_COMPLETE a playback and
 * `hangup NORMAL_CLEARING`. The connection is filtered to this call's uuids and Job-UUID, so the traffic of
 * other users of the same switch is not recorded. Needs E2E_ESL_HOST/PORT/PASSWORD (default 127.0.0.1:8021,
 * ClueCon) and sipp. Sanitized as the shared traces: hostname → fs-node-1, non-loopback IPv4/IPv6 →
 * 127.0.0.1 / ::1, Content-Length recomputed.
 */
import { randomUUID } from 'node:crypto';
import { startPhone } from '../../e2e/support/sipp';
import { channelEvent, leave, recordEsl, saveRecording, subscribe, switchFromEnv } from './recording-session';

const BASE_EVENTS =
  'CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_PARK CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE BACKGROUND_JOB CHANNEL_DESTROY';
const X = '700100000000001';
const A = '13800000001';

async function main(): Promise<void> {
  const [name, endpoint, portArg] = process.argv.slice(2);
  if (!name || !endpoint) throw new Error('usage: record-b-refused.ts <name> <bridge endpoint> [A port]');
  const esl = switchFromEnv();
  const aPort = Number(portArg ?? 6200);
  const phone = await startPhone({ number: A, port: aPort, behaviour: 'answer' });
  const uA = randomUUID();
  const uB = randomUUID();
  const job = randomUUID();
  const bridgeEvent = randomUUID();
  const playbackEvent = randomUUID();
  const rec = recordEsl(esl);
  const completed = (eventUuid: string) => (raw: string) => raw.includes('Event-Name: CHANNEL_EXECUTE_COMPLETE') && raw.includes(`Application-UUID: ${eventUuid}`);
  try {
    await subscribe(rec, esl.password, BASE_EVENTS, [`Unique-ID ${uA}`, `Unique-ID ${uB}`, `Job-UUID ${job}`]);
    rec.send(
      `bgapi originate {origination_uuid=${uA},origination_caller_id_number=${X},origination_caller_id_name=${X},originate_timeout=20,continue_on_fail=true,hangup_after_bridge=true}${phone.dialString()} &park()\nJob-UUID: ${job}\n\n`,
    );
    await rec.until((raw) => raw.includes('Event-Name: CHANNEL_PARK'));
    rec.send(
      `sendmsg ${uA}\ncall-command: execute\nexecute-app-name: bridge\nexecute-app-arg: {origination_uuid=${uB},origination_caller_id_number=${X},origination_caller_id_name=${X},originate_timeout=20}${endpoint}\nEvent-UUID: ${bridgeEvent}\n\n`,
    );
    await rec.until(completed(bridgeEvent));
    await new Promise((r) => setTimeout(r, 500));
    rec.send(`sendmsg ${uA}\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: tone_stream://%(500,500,480,620);loops=1\nEvent-UUID: ${playbackEvent}\n\n`);
    await rec.until(completed(playbackEvent));
    rec.send(`sendmsg ${uA}\ncall-command: execute\nexecute-app-name: hangup\nexecute-app-arg: NORMAL_CLEARING\n\n`);
    await rec.until(channelEvent('CHANNEL_DESTROY', uA));
    await new Promise((r) => setTimeout(r, 300));
    await leave(rec);
  } finally {
    rec.socket.destroy();
    await phone.stop();
  }
  const phones = [{ label: 'A', number: A, address: `127.0.0.1:${aPort}`, behaviour: "UAS: 180 Ringing, 200 OK at once, then waits for FreeSWITCH's BYE" }];
  // a sofia endpoint names a phone the switch refused to create a channel to (no SIP was sent)
  const bNumber = /^sofia\/[^/]+\/([^@]+)@(.*)$/.exec(endpoint);
  const cause = /variable_originate_failed_cause: ([A-Z_]+)/.exec(rec.log.find((m) => m.dir === 'recv' && completed(bridgeEvent)(m.raw))?.raw ?? '')?.[1];
  if (bNumber && cause) phones.push({ label: 'B', number: bNumber[1]!, address: bNumber[2]!, behaviour: `refused by the switch: ${cause} (no channel, no SIP)` });
  saveRecording(name, [{ suffix: '', rec }], {
    bridgeEndpoint: endpoint,
    ids: { uA, uB, job_uuid: job, event_uuid: bridgeEvent, playback_event_uuid: playbackEvent },
    phones,
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
