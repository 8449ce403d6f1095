/**
 * Records, from a real FreeSWITCH, the warning before the maximum duration (issue #10 item 4) in a one-command
 * click-to-dial of src/flows/click-to-dial.ts, in the format of shared/fs-traces, into test/simulator/recordings/:
 *
 *   npx tsx test/simulator/tools/record-end-warning.ts 19a-end-warning-both-legs [A port] [B port]
 *
 * As 17a (see record-one-command.ts), with the cap at 4 s; once A's CHANNEL_BRIDGE arrives the controller sends
 * `api sched_broadcast +2 <uB> tone_stream://%(300,200,880);loops=2 both`, as the flow does: what the switch
 * answers, what each leg reports of the broadcast, and that B is still hung up with ALLOTTED_TIMEOUT at the cap.
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
const TONE = 'tone_stream://%(300,200,880);loops=2';
const OUT_DIR = path.resolve(__dirname, '../recordings');

async function main(): Promise<void> {
  const [name, aPortArg, bPortArg] = process.argv.slice(2);
  const bBehaviour = 'answer' as const;
  if (!name) throw new Error('usage: record-end-warning.ts <name> [A port] [B port]');
  const host = process.env.E2E_ESL_HOST ?? '127.0.0.1';
  const eslPort = Number(process.env.E2E_ESL_PORT ?? 8021);
  const password = process.env.E2E_ESL_PASSWORD ?? 'ClueCon';
  const aPort = Number(aPortArg ?? 5094);
  const bPort = Number(bPortArg ?? 5095);
  const phoneA = await startPhone({ number: A, port: aPort, behaviour: 'answer' });
  const phoneB = await startPhone({ number: B, port: bPort, behaviour: bBehaviour, ringMs: 500 });
  const uA = randomUUID();
  const uB = randomUUID();
  const callId = randomUUID();
  const job = randomUUID();
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
      `api_on_answer='sched_hangup +4 ${uB} ALLOTTED_TIMEOUT'`,
    ].join(',');
    send(`bgapi originate {^^;${aVars}}${phoneA.dialString()} m:^:bridge:{${bVars}}${phoneB.dialString()}^park inline\nJob-UUID: ${job}\n\n`);
    await until(event('CHANNEL_BRIDGE', uA));
    send(`api sched_broadcast +2 ${uB} ${TONE} both\n\n`);
    await until(event('CHANNEL_HANGUP_COMPLETE', uA));
    await until(event('CHANNEL_HANGUP_COMPLETE', uB));
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
    ids: { uA, uB, job_uuid: job, ng_call_id: callId },
    phones: [
      { label: 'A', number: A, address: `127.0.0.1:${aPort}`, behaviour: "UAS: 180 Ringing, 200 OK at once, then waits for FreeSWITCH's BYE" },
      {
        label: 'B',
        number: B,
        address: `127.0.0.1:${bPort}`,
        behaviour: "UAS: 180 Ringing, 200 OK after 0.5 s, then waits for FreeSWITCH's BYE",
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
