/**
 * Records, from a real FreeSWITCH, the one-command click-to-dial of src/flows/click-to-dial.ts in the format of
 * shared/fs-traces (`{"dir","t_ms","raw"}` per ESL message), into test/simulator/recordings/:
 *
 *   npx tsx test/simulator/tools/record-one-command.ts 17a-one-command-connected-max-duration answer [A port] [B port]
 *   npx tsx test/simulator/tools/record-one-command.ts 17b-one-command-b-busy busy [A port] [B port]
 *
 * The connection subscribes and filters as the controller does (its events, minus HEARTBEAT whose timing a
 * replay cannot reproduce; `filter Event-Name BACKGROUND_JOB`, `filter variable_ng_call_id /./`). One
 * `bgapi originate {^^;...;ringback=%(2000,4000,440,480)}A m:^:bridge:{...,api_on_answer='sched_hangup +2 <uB>
 * ALLOTTED_TIMEOUT'}B^park inline`. A (sipp) answers at once. `answer`: B answers after 0.5 s and waits for
 * BYE; the switch hangs B up 2 s after its answer. `busy`: B answers 486; the controller then plays the
 * prompt to A and hangs it up with USER_BUSY (sendmsg with Event-UUID, as the flow does). Needs
 * E2E_ESL_HOST/PORT/PASSWORD (default 127.0.0.1:8021, ClueCon) and sipp. Sanitized as the shared traces.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startPhone } from '../../e2e/support/sipp';
import { recordEsl } from './recording-session';
import { sanitize } from './sanitize';

const CONTROLLER_EVENTS = 'CHANNEL_PROGRESS CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE_COMPLETE BACKGROUND_JOB';
const X = '700100000000001';
const A = '13800000001';
const B = '13900000002';
const OUT_DIR = path.resolve(__dirname, '../recordings');

async function main(): Promise<void> {
  const [name, bBehaviour, aPortArg, bPortArg] = process.argv.slice(2);
  if (!name || (bBehaviour !== 'answer' && bBehaviour !== 'busy')) throw new Error('usage: record-one-command.ts <name> answer|busy [A port] [B port]');
  const host = process.env.E2E_ESL_HOST ?? '127.0.0.1';
  const eslPort = Number(process.env.E2E_ESL_PORT ?? 8021);
  const password = process.env.E2E_ESL_PASSWORD ?? 'ClueCon';
  const aPort = Number(aPortArg ?? 6210);
  const bPort = Number(bPortArg ?? 6211);
  const phoneA = await startPhone({ number: A, port: aPort, behaviour: 'answer' });
  const phoneB = await startPhone({ number: B, port: bPort, behaviour: bBehaviour, ringMs: 500 });
  const uA = randomUUID();
  const uB = randomUUID();
  const callId = randomUUID();
  const job = randomUUID();
  const playbackEvent = randomUUID();
  const { socket: sock, log, send, until, next, closedByFreeswitch } = recordEsl(host, eslPort);
  const event = (name: string, uuid: string) => (raw: string) => raw.includes(`Event-Name: ${name}\n`) && raw.includes(`Unique-ID: ${uuid}\n`);
  try {
    await until((raw) => raw.startsWith('Content-Type: auth/request'));
    send(`auth ${password}\n\n`);
    await next();
    send(`event plain ${CONTROLLER_EVENTS}\n\n`);
    await next();
    for (const f of ['Event-Name BACKGROUND_JOB', 'variable_ng_call_id /./']) {
      send(`filter ${f}\n\n`);
      await next();
    }
    const aVars = [
      `origination_caller_id_number=${X}`,
      `origination_caller_id_name=${X}`,
      'ignore_display_updates=true',
      `origination_uuid=${uA}`,
      'originate_timeout=20',
      'continue_on_fail=true',
      'hangup_after_bridge=true',
      `ng_call_id=${callId}`,
      'ringback=%(2000,4000,440,480)',
    ].join(';');
    const bVars = [
      `origination_caller_id_number=${X}`,
      `origination_caller_id_name=${X}`,
      `origination_callee_id_number=${X}`,
      `origination_callee_id_name=${X}`,
      `origination_uuid=${uB}`,
      'originate_timeout=20',
      `ng_call_id=${callId}`,
      `api_on_answer='sched_hangup +2 ${uB} ALLOTTED_TIMEOUT'`,
    ].join(',');
    send(`bgapi originate {^^;${aVars}}${phoneA.dialString()} m:^:bridge:{${bVars}}${phoneB.dialString()}^park inline\nJob-UUID: ${job}\n\n`);
    if (bBehaviour === 'busy') {
      await until((raw) => event('CHANNEL_EXECUTE_COMPLETE', uA)(raw) && raw.includes('Application: bridge\n'));
      send(`sendmsg ${uA}\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: tone_stream://%(500,500,480,620);loops=1\nEvent-UUID: ${playbackEvent}\n\n`);
      await until((raw) => raw.includes('Event-Name: CHANNEL_EXECUTE_COMPLETE') && raw.includes(`Application-UUID: ${playbackEvent}`));
      send(`sendmsg ${uA}\ncall-command: execute\nexecute-app-name: hangup\nexecute-app-arg: USER_BUSY\n\n`);
    }
    await until(event('CHANNEL_HANGUP_COMPLETE', uA));
    if (bBehaviour === 'answer') await until(event('CHANNEL_HANGUP_COMPLETE', uB));
    await new Promise((r) => setTimeout(r, 500));
    send('exit\n\n');
    await new Promise<void>((r) => sock.once('close', () => r()));
  } finally {
    sock.destroy();
    await phoneA.stop();
    await phoneB.stop();
  }
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const sanitized = log.map((m) => ({ ...m, raw: m.dir === 'recv' ? sanitize(m.raw) : m.raw }));
  fs.writeFileSync(path.join(OUT_DIR, `${name}.esl.jsonl`), sanitized.map((m) => JSON.stringify(m)).join('\n') + '\n');
  const manifestFile = path.join(OUT_DIR, 'manifest.json');
  const manifest = (fs.existsSync(manifestFile) ? JSON.parse(fs.readFileSync(manifestFile, 'utf8')) : []) as Array<{ scenario: string }>;
  const entry = {
    scenario: name,
    recorded: new Date().toISOString().slice(0, 10),
    switch: 'FreeSWITCH 1.10.12-release',
    transcripts: [{ file: `${name}.esl.jsonl`, closed_by_freeswitch_at_ms: closedByFreeswitch() ? log[log.length - 1]!.t_ms : null, closed_by_client_at_ms: null }],
    ids: { uA, uB, job_uuid: job, ng_call_id: callId, ...(bBehaviour === 'busy' ? { playback_event_uuid: playbackEvent } : {}) },
    phones: [
      { label: 'A', number: A, address: `127.0.0.1:${aPort}`, behaviour: "UAS: 180 Ringing, 200 OK at once, then waits for FreeSWITCH's BYE" },
      {
        label: 'B',
        number: B,
        address: `127.0.0.1:${bPort}`,
        behaviour: bBehaviour === 'answer' ? "UAS: 180 Ringing, 200 OK after 0.5 s, then waits for FreeSWITCH's BYE" : 'UAS: 486 Busy Here',
      },
    ],
  };
  fs.writeFileSync(manifestFile, JSON.stringify([...manifest.filter((s) => s.scenario !== name), entry], null, 1) + '\n');
  console.log(`wrote ${name}: ${log.length} messages`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
