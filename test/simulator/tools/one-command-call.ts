import { randomUUID } from 'node:crypto';
import { startPhone } from '../../e2e/support/sipp';
import { channelEvent, leave, recordEsl, saveRecording, subscribe, switchFromEnv, type EslRecording } from './recording-session';

/**
 * The one-command click-to-dial of src/flows/click-to-dial.ts on a real switch, recorded for the simulator: a
 * connection that subscribes and filters as the controller does (its events, minus HEARTBEAT whose timing a
 * replay cannot reproduce; `filter Event-Name BACKGROUND_JOB`, `filter variable_ng_call_id /./`), then one
 * `bgapi originate {^^;...;ringback=%(2000,4000,440,480)}A m:^:bridge:{...,api_on_answer='sched_hangup +<cap> <uB>
 * ALLOTTED_TIMEOUT'}B^park inline`. A (sipp) answers at once; B answers after 0.5 s (`answer`, then waits for the
 * switch's BYE at the cap) or 486 (`busy`). `during` is what the controller does while the call is up.
 */
const CONTROLLER_EVENTS = 'CHANNEL_PROGRESS CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE_COMPLETE BACKGROUND_JOB';
const X = '700100000000001';
const A = '13800000001';
const B = '13900000002';

export interface OneCommandIds {
  readonly uA: string;
  readonly uB: string;
  readonly callId: string;
  readonly job: string;
}

export async function recordOneCommandCall(opts: {
  readonly name: string;
  readonly bBehaviour: 'answer' | 'busy';
  readonly capSeconds: number;
  readonly aPort: number;
  readonly bPort: number;
  readonly during?: (rec: EslRecording, ids: OneCommandIds) => Promise<void>;
  /** More ids the scenario's `during` used, for the manifest. */
  readonly moreIds?: Record<string, string>;
}): Promise<void> {
  const esl = switchFromEnv();
  const phoneA = await startPhone({ number: A, port: opts.aPort, behaviour: 'answer' });
  const phoneB = await startPhone({ number: B, port: opts.bPort, behaviour: opts.bBehaviour, ringMs: 500 });
  const ids: OneCommandIds = { uA: randomUUID(), uB: randomUUID(), callId: randomUUID(), job: randomUUID() };
  const rec = recordEsl(esl);
  try {
    await subscribe(rec, esl.password, CONTROLLER_EVENTS, ['Event-Name BACKGROUND_JOB', 'variable_ng_call_id /./']);
    const aVars = [
      `origination_caller_id_number=${X}`,
      `origination_caller_id_name=${X}`,
      'ignore_display_updates=true',
      `origination_uuid=${ids.uA}`,
      'originate_timeout=20',
      'continue_on_fail=true',
      'hangup_after_bridge=true',
      `ng_call_id=${ids.callId}`,
      'ringback=%(2000,4000,440,480)',
    ].join(';');
    const bVars = [
      `origination_caller_id_number=${X}`,
      `origination_caller_id_name=${X}`,
      `origination_callee_id_number=${X}`,
      `origination_callee_id_name=${X}`,
      `origination_uuid=${ids.uB}`,
      'originate_timeout=20',
      `ng_call_id=${ids.callId}`,
      `api_on_answer='sched_hangup +${opts.capSeconds} ${ids.uB} ALLOTTED_TIMEOUT'`,
    ].join(',');
    rec.send(`bgapi originate {^^;${aVars}}${phoneA.dialString()} m:^:bridge:{${bVars}}${phoneB.dialString()}^park inline\nJob-UUID: ${ids.job}\n\n`);
    await opts.during?.(rec, ids);
    await rec.until(channelEvent('CHANNEL_HANGUP_COMPLETE', ids.uA));
    if (opts.bBehaviour === 'answer') await rec.until(channelEvent('CHANNEL_HANGUP_COMPLETE', ids.uB));
    await new Promise((r) => setTimeout(r, 500));
    await leave(rec);
  } finally {
    rec.socket.destroy();
    await phoneA.stop();
    await phoneB.stop();
  }
  saveRecording(opts.name, [{ suffix: '', rec }], {
    ids: { uA: ids.uA, uB: ids.uB, job_uuid: ids.job, ng_call_id: ids.callId, ...opts.moreIds },
    phones: [
      { label: 'A', number: A, address: `127.0.0.1:${opts.aPort}`, behaviour: "UAS: 180 Ringing, 200 OK at once, then waits for FreeSWITCH's BYE" },
      {
        label: 'B',
        number: B,
        address: `127.0.0.1:${opts.bPort}`,
        behaviour: opts.bBehaviour === 'answer' ? "UAS: 180 Ringing, 200 OK after 0.5 s, then waits for FreeSWITCH's BYE" : 'UAS: 486 Busy Here',
      },
    ],
  });
}
