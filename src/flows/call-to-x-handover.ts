import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { CallResult, CdrRecord } from '../domain/call';
import { resultOfBFailure } from '../domain/call-result';
import type { OutboundSession } from '../esl/outbound-server';
import type { JobsInFlight } from '../lifecycle/jobs-in-flight';
import type { Logger } from '../logger';
import type { CallOutcome } from '../stores/call-outcome';
import { callToXHangupSide, callToXId, type CallToXDeps, type DurableCallToX, type HandedOverCallToX } from './call-to-x';
import { LegWatch, type SwitchControl } from './switch';
import { figuresOfEvent, forgetFigures, keepFiguresCommand, keptFigures, type SwitchFigures } from './switch-figures';
import type { CallsToXOwners } from '../stores/calls-to-x-owners';
import { queueNames } from '../stores/keys';

/**
 * Calls to X handed over at the drain deadline of a graceful shutdown, and how they are settled.
 *
 * A call to X belongs to the outbound socket the switch opened to one controller; that socket dies
 * with the controller, but the call does not (the switch keeps a running bridge when its controlling
 * socket goes away). So the controller that lets go of a live call:
 *  1. asks the switch to keep the call's own figures when it ends (switch-figures.ts);
 *  2. sets `hangup_after_bridge=true`, so the caller's leg ends with the bridge (NORMAL_CLEARING, as
 *     the controller would have done) instead of falling back into the dialplan's hangup after
 *     `socket` (NORMAL_TEMPORARY_FAILURE); a call not yet bridged gets the talk-time cap scheduled
 *     on the switch (ring timeout + cap: the flow would have scheduled the cap at the bridge);
 *  3. queues a durable job (Redis, BullMQ) naming the channel, with what it knew of the call.
 * Steps 1 and 2 were already taken at the call's first moment (durableCallsToX, for a controller that
 * is killed); they are taken again here because the reply tells whether the channel still exists.
 * Any controller running workers (another one now, or this one after its restart) takes the job,
 * waits for the call's end — its CHANNEL_HANGUP_COMPLETE if the call is still up, the figures kept
 * on the switch if it ended while nobody watched — and queues the one CDR with the switch's talk
 * seconds, hangup cause and end time. The CDR job id is the call's, so it is written once.
 */
/** Makes the caller's leg end with its bridge (NORMAL_CLEARING-like, B's cause) rather than fall back into the dialplan's hangup after `socket`. */
function endWithBridgeCommand(uuid: string): string {
  return `uuid_setvar ${uuid} hangup_after_bridge true`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const handoverQueueName = queueNames.callToXHandover;
const handoverJobId = (callId: string): string => `handover-${callId}`;

export class CallToXHandoverQueue {
  readonly queue: Queue<HandedOverCallToX>;

  constructor(opts: { connection: ConnectionOptions; prefix: string }) {
    this.queue = new Queue<HandedOverCallToX>(handoverQueueName(opts.prefix), {
      connection: opts.connection,
      prefix: opts.prefix,
      defaultJobOptions: { attempts: 1000, backoff: { type: 'fixed', delay: 5000 }, removeOnComplete: { age: 24 * 3600 }, removeOnFail: false },
    });
  }

  async enqueue(call: HandedOverCallToX): Promise<void> {
    await this.queue.add('settle', call, { jobId: handoverJobId(call.callId) });
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

/** CallToXDeps.handOver: the switch keeps the figures, the call ends with its bridge, a job says who settles it. */
export function callToXHandOver(opts: { queue: CallToXHandoverQueue; ringTimeoutSeconds: number }): NonNullable<CallToXDeps['handOver']> {
  return async (session: OutboundSession, call: HandedOverCallToX, hungUp: () => boolean): Promise<boolean> => {
    const uuid = session.uuid;
    const kept = await session.api(keepFiguresCommand(uuid));
    if (!kept.trim().startsWith('+OK')) return false; // the channel is gone: the flow has its end
    if (call.refused === null) {
      await session.api(endWithBridgeCommand(uuid));
      if (call.bAnswerAt === null) {
        await session.api(`sched_hangup +${opts.ringTimeoutSeconds + call.maxDurationSeconds} ${uuid} ALLOTTED_TIMEOUT`);
      }
    }
    // Hung up meanwhile: its HANGUP_COMPLETE is on its way to the flow, which writes the CDR itself.
    if (hungUp()) return false;
    await opts.queue.enqueue(call);
    return true;
  };
}

/**
 * CallToXDeps.durable: a call to X survives its controller being killed. From its first moment the
 * switch keeps the call's figures (the handover's reporting hook) and ends a bridged call with its
 * bridge (`hangup_after_bridge`: what the flow does itself after a connected bridge, so the live call
 * goes as before); once decided, the call is recorded as this controller instance's in Redis
 * (CallsToXOwners) until its CDR is queued. When the instance stops beating, any controller's sweep
 * (sweepOrphanedCallsToX) queues the same settle job a graceful handover queues.
 */
export function durableCallsToX(opts: {
  owners: CallsToXOwners;
  /** The fleet switch carrying a session's call (null: unknown), named in the record and asked once the socket is closed. */
  switchOf: (session: OutboundSession) => (Pick<SwitchControl, 'api'> & { readonly name: string }) | null;
  /** How long after the call's end its figures are deleted (the reporting hook runs just after HANGUP_COMPLETE). Default 5000 ms. */
  forgetFiguresAfterMs?: number;
  logger: Logger;
}): DurableCallToX {
  const log = opts.logger.child({ component: 'durable-calls-to-x' });
  return {
    keepFigures(session) {
      const uuid = session.uuid;
      for (const command of [keepFiguresCommand(uuid), endWithBridgeCommand(uuid)]) {
        void session.api(command).catch((err: unknown) => log.debug({ err, uuid }, 'could not prepare the call to outlive its controller'));
      }
    },
    track(session, call) {
      const sw = opts.switchOf(session);
      const record: HandedOverCallToX = sw ? { ...call, switchName: sw.name } : call;
      opts.owners.track(call.callId, JSON.stringify(record)).catch((err: unknown) => log.warn({ err, callId: call.callId }, 'call to X not recorded: it would not outlive this controller'));
    },
    untrack(session, callId, figuresToo) {
      opts.owners.untrack(callId).catch((err: unknown) => log.warn({ err, callId }, 'record of a finished call to X not removed'));
      const sw = figuresToo ? opts.switchOf(session) : null;
      if (!sw) return;
      const uuid = session.uuid;
      setTimeout(() => {
        void forgetFigures(sw, uuid);
      }, opts.forgetFiguresAfterMs ?? 5000).unref();
    },
  };
}

/** Queues the settlement of every call to X whose controller instance died before queueing its CDR; resolves with how many. */
export async function sweepOrphanedCallsToX(owners: CallsToXOwners, queue: CallToXHandoverQueue, logger: Logger): Promise<number> {
  let queued = 0;
  for (const orphan of await owners.orphans()) {
    let call: HandedOverCallToX | null = null;
    try {
      call = JSON.parse(orphan.record) as HandedOverCallToX;
    } catch {
      logger.error({ callId: orphan.callId, owner: orphan.owner }, 'unreadable record of a call to X; dropped');
    }
    // Same job id as a graceful handover of the call: queued once, whoever queues it.
    if (call) await queue.enqueue(call);
    await owners.release(orphan);
    if (call) {
      queued++;
      logger.warn({ callId: orphan.callId, owner: orphan.owner }, 'call to X of a controller that died: settling it from the switch');
    }
  }
  return queued;
}

/** Rejects what is not a handed-over call this platform could have queued. */
function validateHandedOver(data: unknown): HandedOverCallToX {
  const c = data as Partial<HandedOverCallToX> | null;
  const nums = (v: unknown): boolean => typeof v === 'string' && /^\d{0,32}$/.test(v);
  if (
    !c ||
    typeof c.uuid !== 'string' ||
    !UUID.test(c.uuid) ||
    c.callId !== callToXId(c.uuid) ||
    typeof c.tenantId !== 'string' ||
    !nums(c.x) ||
    !nums(c.a) ||
    !nums(c.b) ||
    typeof c.startedAt !== 'number' ||
    typeof c.handedOverAt !== 'number'
  ) {
    throw new UnrecoverableError('malformed handover job');
  }
  return c as HandedOverCallToX;
}

export interface SettleDeps {
  readonly switch: SwitchControl;
  readonly logger: Logger;
  /** How often the switch is asked whether the call is over, should its end event be missed. Default 2000 ms. */
  readonly pollMs?: number;
}

/** Waits for the end of a handed-over call and makes its CDR from the switch's figures. */
export async function settleHandedOverCall(deps: SettleDeps, call: HandedOverCallToX): Promise<CdrRecord> {
  const log = deps.logger.child({ callId: call.callId, component: 'handover' });
  const watch = new LegWatch(deps.switch, call.uuid);
  let figures: SwitchFigures | null;
  try {
    figures = await awaitFigures(deps, watch, call, log);
  } finally {
    watch.dispose();
  }
  if (!figures) log.error({ uuid: call.uuid }, 'handed-over call is gone and the switch kept no figures of it; its CDR has none');
  const bridgedAt = call.bAnswerAt ?? figures?.bridgedAt ?? null;
  const result: CallResult =
    call.refused ?? (bridgedAt !== null ? 'connected' : figures ? resultOfBFailure(figures.bFailureCause ?? undefined) : 'failed');
  const cause = figures?.hangupCause ?? null;
  const cdr: CdrRecord = {
    callId: call.callId,
    tenantId: call.tenantId,
    kind: call.kind,
    bindingId: call.bindingId,
    x: call.x,
    a: call.a,
    b: call.b,
    startedAt: call.startedAt,
    aRingAt: null,
    aAnswerAt: bridgedAt,
    bRingAt: null,
    bAnswerAt: bridgedAt,
    endedAt: figures?.endedAt ?? Date.now(),
    talkSeconds: result === 'connected' ? (figures?.billsec ?? 0) : 0,
    hangupCause: cause,
    hangupSide: callToXHangupSide(cause, figures?.disposition),
    result,
    recordingRef: result === 'connected' ? call.recordingRef : null,
    userData: call.userData,
  };
  log.info({ result, cause, talkSeconds: cdr.talkSeconds }, 'handed-over call to X settled from the switch');
  return cdr;
}

async function awaitFigures(deps: SettleDeps, watch: LegWatch, call: HandedOverCallToX, log: Logger): Promise<SwitchFigures | null> {
  const sw = deps.switch;
  const kept = (): Promise<SwitchFigures | null> => keptFigures(sw, call.uuid);
  let warned = false;
  for (;;) {
    const end = watch.first('CHANNEL_HANGUP_COMPLETE');
    if (end) return figuresOfEvent(end, sw.clock);
    try {
      const figures = await kept();
      if (figures) return figures;
      if ((await sw.api(`uuid_exists ${call.uuid}`)).trim() !== 'true') {
        // Gone. Its hook ran before the channel was destroyed; ask once more in case it landed between the questions.
        const late = watch.first('CHANNEL_HANGUP_COMPLETE');
        return late ? figuresOfEvent(late, sw.clock) : await kept();
      }
    } catch (err) {
      log.warn({ err }, 'switch not answering about a handed-over call; asking again');
    }
    if (!warned && Date.now() > call.handedOverAt + call.lastsAtMostMs) {
      warned = true;
      log.error({ uuid: call.uuid }, 'handed-over call outlived its talk-time cap; still waiting for its end');
    }
    await watch.waitFor('CHANNEL_HANGUP_COMPLETE', deps.pollMs ?? 2000);
  }
}

export interface CallToXSettlerOptions extends SettleDeps {
  readonly connection: ConnectionOptions;
  readonly prefix: string;
  readonly finished: (outcome: CallOutcome) => Promise<void>;
  /** Jobs in progress, for a graceful shutdown of this controller. */
  readonly inFlight?: JobsInFlight;
  /** With a fleet: the switch carrying a handed-over call (by the name the handover recorded). */
  readonly switchOf?: (switchName: string | undefined) => SwitchControl;
}

/** The worker that settles handed-over calls to X (every controller that runs workers runs one). */
export function startCallToXSettler(opts: CallToXSettlerOptions): Worker<HandedOverCallToX> {
  const log = opts.logger.child({ component: 'handover-settler' });
  const processor = async (job: Job<HandedOverCallToX>): Promise<void> => {
    const call = validateHandedOver(job.data);
    const sw = opts.switchOf?.(call.switchName) ?? opts.switch;
    const cdr = await settleHandedOverCall({ ...opts, switch: sw }, call);
    await opts.finished({ cdr });
    await forgetFigures(sw, call.uuid);
  };
  const worker = new Worker<HandedOverCallToX>(
    handoverQueueName(opts.prefix),
    (job, token) => (opts.inFlight ? opts.inFlight.run(job, token, () => processor(job)) : processor(job)),
    {
      connection: opts.connection,
      prefix: opts.prefix,
      // Each job mostly waits for a call to end.
      concurrency: 1000,
      maxStalledCount: 1_000_000,
    },
  );
  worker.on('failed', (job, err) => log.error({ callId: job?.data.callId, err }, 'settling a handed-over call failed'));
  worker.on('error', (err) => log.error({ err }, 'handover settler error'));
  return worker;
}
