import { randomUUID } from 'node:crypto';
import type { CallResult, CdrRecord, ClickToDialRequest, HangupSide } from '../domain/call';
import type { EventReporter, Leg, PlatformEventInput, PlatformEventType, PreparedReport } from '../events/platform-events';
import { formatChannelVars, planCallerId, type ChannelVars } from '../domain/caller-id';
import { deterministicUuid } from '../domain/ids';
import { CANCEL_CAUSE, parseOriginateReply, resultOfAFailure, resultOfBFailure } from '../domain/call-result';
import type { EslEvent } from '../esl/event';
import type { Logger } from '../logger';
import type { LiveCall, LiveCallPatch, LiveCallStore } from '../stores/live-calls';
import { CALL_ID_VARIABLE, endWarningCommand, eventTime, LegWatch, type SwitchControl } from './switch';
import { figuresOfEvent, forgetFigures, keepFiguresVariables, keptFigures, type SwitchFigures } from './switch-figures';

/**
 * Click-to-dial (回拨), SPEC §4: the platform calls A; when A answers, A hears ringback while the
 * platform calls B; when B answers the two are bridged, and the switch enforces the maximum
 * duration. B busy / no answer plays a short prompt to A and ends.
 *
 * The whole call is one command to the switch: an originate of A whose dialplan is the bridge to B
 * (then `park`, so A survives a failed bridge to hear the prompt), with B's maximum duration armed by
 * B's own answer. The controller sends nothing more unless B fails, the call is cancelled or recorded;
 * once the call is settled it deletes what the switch kept of each leg.
 *
 * Each leg keeps its own figures on the switch when it ends (A's reporting hook, in A's originate
 * variables, which A's bridge copies to B: switch-figures.ts), so a delivery that takes the call over after it ended unwatched settles
 * it from the switch's truth: result, B's billed seconds, cause, answer and end times.
 *
 * Never rings anyone twice: each leg's uuid derives from (call, attempt), and both legs are claimed
 * in Redis before A is dialled. A redelivered job that finds a claim taken follows the call that
 * is already there (or settles it) instead of dialling again.
 */
export interface ClickToDialDeps {
  readonly switch: SwitchControl;
  readonly live: LiveCallStore;
  readonly dialString: (number: string) => string;
  readonly ringbackTone: string;
  readonly bFailedPrompt: string;
  readonly recordingPath: (callId: string) => string;
  /** CALL_END_WARNING_TONE: played to both parties endWarningSeconds (of the request) before the maximum duration. */
  readonly endWarningTone?: string;
  /**
   * Progress for webhooks and the agent console; never awaited. A step the live call records is published
   * by its write (the same Redis command).
   */
  readonly events?: EventReporter;
  readonly logger: Logger;
  /** How often a call in progress looks at its cancel flag (default 500 ms). */
  readonly cancelCheckMs?: number;
  /** Told as A's originate leaves for the switch (back-pressure measures how late calls are dialled). */
  readonly dialling?: () => void;
}

export interface ClickToDialAttempt {
  readonly callId: string;
  readonly attempt: number;
  readonly request: ClickToDialRequest;
  readonly queuedAt: number;
}

export interface AttemptOutcome {
  readonly result: CallResult;
  /** A answered: the tenant's retry policy must not try again. */
  readonly aReached: boolean;
  /** B's phone was dialled and saw X: a callback binding is left for B. */
  readonly bDialled: boolean;
  /** The switch carrying the call was lost: settled failed, never dialled again. */
  readonly switchLost?: boolean;
  readonly cdr: CdrRecord;
}

/** How long to wait for an event the switch sends promptly once its cause has happened (a hangup's HANGUP_COMPLETE). */
const SETTLE_MS = 10_000;
/** How long a leg's HANGUP_COMPLETE may lag its hangup (milliseconds, normally) before the switch is asked whether the channel is still there. */
const FOLLOW_UP_MS = 1000;
/** How often a call in progress looks for a cancel it was not told about by uuid_kill (e.g. A not created yet). */
const CANCEL_CHECK_MS = 500;
/**
 * The same once A's channel has been seen: from then on the API's uuid_kill of A reaches it (and ends B
 * with it), so looking is only a safety net, e.g. for a cancel whose uuid_kill could not be sent.
 */
const CANCEL_SAFETY_CHECK_MS = 5000;
/** Slack on top of a ring timeout the switch enforces itself, before the flow gives up on the switch. */
const SWITCH_SLACK_MS = 15_000;

/** Separates the apps of A's inline dialplan (`m:^:`): none of them has a `^`, and their arguments have commas. */
const INLINE_APP_SEPARATOR = '^';

/** What a leg's bridge app ended with, in the variables of its CHANNEL_EXECUTE_COMPLETE (fs-traces 09b/10b/10c, 16a/16b). */
const BRIDGE_CAUSE_VARIABLES = ['originate_failed_cause', 'originate_disposition', 'last_bridge_hangup_cause'] as const;

/** What a new attempt clears, so nothing of an earlier attempt is mistaken for this one's. */
const FRESH_ATTEMPT = {
  aRingAt: null,
  aAnswerAt: null,
  bRingAt: null,
  bAnswerAt: null,
  endedAt: null,
  result: null,
  hangupCause: null,
  hangupSide: null,
  finalCdr: null,
} as const;

/** Deterministic uuid (v4 layout) for a leg of one attempt of one call (and its originate's Job-UUID, its callback binding). */
export function legUuid(callId: string, leg: 'a' | 'b' | 'originate-job' | 'callback-binding', attempt: number): string {
  return deterministicUuid(callId, leg, String(attempt));
}

export async function runClickToDial(deps: ClickToDialDeps, call: ClickToDialAttempt): Promise<AttemptOutcome> {
  const flow = new ClickToDialFlow(deps, call);
  try {
    return await flow.runUnlessSwitchLost();
  } finally {
    flow.dispose();
  }
}

/** When each leg rang and answered (epoch ms), as the CDR gives them. */
interface LegTimes {
  aRingAt: number | null;
  aAnswerAt: number | null;
  bRingAt: number | null;
  bAnswerAt: number | null;
}
const LEG_TIME_FIELDS = ['aRingAt', 'aAnswerAt', 'bRingAt', 'bAnswerAt'] as const;

type CallEnd = {
  result: CallResult;
  cause: string | null;
  side: HangupSide;
  talkSeconds?: number;
  /** The switch's own figures, when the end is settled from what it kept of legs nobody watched end. */
  switchSaid?: { readonly times: LegTimes; readonly endedAt: number | null; readonly bDialled: boolean };
};

/** How long after its settlement a leg whose end was not seen here has its kept figures deleted (its reporting hook may still be to run). */
const FORGET_UNSEEN_END_AFTER_MS = 5000;

/**
 * One attempt. Every wait has two ways out besides the event it waits for: A's channel ending (its
 * CHANNEL_HANGUP_COMPLETE, which FreeSWITCH sends after every app of A has completed) and a time bound.
 * Nothing waits for an event that only a command's success would produce (an app queued on a channel that
 * hangs up at that moment never runs: no EXECUTE_COMPLETE comes) or that a leg that was never created would send.
 */
class ClickToDialFlow {
  private readonly log: Logger;
  private readonly uA: string;
  private readonly uB: string;
  private readonly a: LegWatch;
  private readonly b: LegWatch;
  private readonly req: ClickToDialRequest;
  private bDialled = false;
  /** A cancel was seen (API flag in Redis); the legs are hung up until the attempt ends. */
  private cancelSeen = false;
  private cancelTimer: NodeJS.Timeout | undefined;
  /** When the cancel flag was last read: by a look, by the attempt's start or by a write of the call (each reads it). */
  private cancelFlagReadAt = 0;
  /** One look at the cancel flag (hanging up the legs once it is set); set by watchForCancel. */
  private cancelTick: (() => Promise<void>) | undefined;
  private disposed = false;
  /**
   * The leg times this delivery wrote to the live call. Once this delivery has started the attempt (its
   * claims cleared the times of any earlier one) they are all the live call holds, and the end needs not read
   * them back; otherwise (another delivery started it, or it never started) the live call is read at the end.
   */
  private readonly legTimes: LegTimes = { aRingAt: null, aAnswerAt: null, bRingAt: null, bAnswerAt: null };
  private startedHere = false;
  /** The live call as a resumed delivery found it. */
  private prior: LiveCall | null = null;
  /** The one settlement of this attempt (the flow's own, or the switch's loss, whichever came first). */
  private settled: Promise<AttemptOutcome> | undefined;
  private readonly onSwitchReady = (): void => void this.checkLegsStillExist();

  constructor(
    private readonly deps: ClickToDialDeps,
    private readonly call: ClickToDialAttempt,
  ) {
    this.req = call.request;
    this.log = deps.logger.child({ callId: call.callId, attempt: call.attempt });
    this.uA = legUuid(call.callId, 'a', call.attempt);
    this.uB = legUuid(call.callId, 'b', call.attempt);
    this.a = new LegWatch(deps.switch, this.uA);
    this.b = new LegWatch(deps.switch, this.uB);
    deps.switch.on('ready', this.onSwitchReady);
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.cancelTimer);
    this.a.dispose();
    this.b.dispose();
    this.deps.switch.off('ready', this.onSwitchReady);
  }

  /** Runs the attempt; should its switch be lost meanwhile, the attempt settles failed at once, with the loss as cause. */
  async runUnlessSwitchLost(): Promise<AttemptOutcome> {
    const sw = this.deps.switch;
    if (sw.lost) return this.switchLost(sw.lost);
    let onLost: (cause: string) => void = () => undefined;
    const lost = new Promise<AttemptOutcome>((resolve) => {
      onLost = (cause) => resolve(this.switchLost(cause));
    });
    sw.on('lost', onLost);
    try {
      const run = this.run();
      run.catch((err: unknown) => this.log.debug({ err }, 'attempt on a lost switch ended'));
      return await Promise.race([run, lost]);
    } finally {
      sw.off('lost', onLost);
    }
  }

  private async switchLost(cause: string): Promise<AttemptOutcome> {
    this.log.error({ cause }, 'the switch of this call was lost: settling it as failed');
    const prior = this.settled ? null : await this.deps.live.get(this.call.callId).catch(() => null);
    if (prior?.finalCdr && prior.attempt === this.call.attempt) {
      return this.outcomeOf(prior.finalCdr, prior.aAnswerAt !== null, prior.state !== 'calling_a' && prior.state !== 'queued');
    }
    // Settled first, then the waits let go: what they wake up to finds the call settled.
    const settling = this.settle({ result: 'failed', cause, side: 'platform' });
    this.a.abandonWaits();
    this.b.abandonWaits();
    const outcome = await settling;
    return { ...outcome, switchLost: outcome.result === 'failed' && outcome.cdr.hangupCause === cause };
  }

  async run(): Promise<AttemptOutcome> {
    // Both legs are claimed before A is dialled (B is dialled by the switch itself once A answers), in
    // the one round trip that also reads the call as it was and, if the attempt is this delivery's, reports it.
    const calling = this.progress('call.calling', 'a');
    this.cancelFlagReadAt = Date.now();
    const { start, prior } = await this.deps.live.startAttempt(
      this.call.callId,
      this.call.attempt,
      { ...FRESH_ATTEMPT, state: 'calling_a', attempt: this.call.attempt, aUuid: this.uA, bUuid: this.uB },
      calling ? [calling.publication] : [],
    );
    this.startedHere = start !== 'taken';
    if (start === 'settled' && prior?.finalCdr) {
      this.log.info('attempt already settled by an earlier delivery');
      return this.outcomeOf(prior.finalCdr, prior.aAnswerAt !== null, prior.state !== 'calling_a' && prior.state !== 'queued');
    }
    // A cancel before the claims found no leg to kill: nobody is rung then.
    if (start === 'cancelled' || prior?.cancelRequested) return this.settle({ result: 'cancelled', cause: CANCEL_CAUSE, side: 'platform' });
    if (start === 'taken') {
      this.watchForCancel();
      return this.resume(prior);
    }
    this.watchForCancel();
    if (calling) this.deps.events?.reportLocally(calling.event);
    return this.callA();
  }

  // ---- cancel ---------------------------------------------------------------------------------

  /**
   * The API's cancel sets a flag and kills the legs it knows of; a leg that did not exist yet (the
   * originate or the bridge on its way) escapes that. So the attempt looks at the flag itself, and once
   * it is set hangs up whatever legs exist until the attempt ends. Once A's channel exists (it has sent
   * an event) a uuid_kill of A ends the call, B included, so the flag is looked at only rarely from then on.
   * Each write of the call reads the flag as well, so a look is only made when no write has read it for an interval.
   */
  private watchForCancel(): void {
    const interval = (): number =>
      this.cancelSeen || !this.a.seenAny ? (this.deps.cancelCheckMs ?? CANCEL_CHECK_MS) : Math.max(this.deps.cancelCheckMs ?? 0, CANCEL_SAFETY_CHECK_MS);
    const tick = async (): Promise<void> => {
      this.cancelTimer = undefined;
      // A write of the call read the flag since the last look: the next look is one interval after that read.
      const due = this.cancelFlagReadAt + interval();
      if (!this.cancelSeen && due > Date.now()) {
        if (!this.disposed) this.cancelTimer = setTimeout(() => void tick(), due - Date.now());
        return;
      }
      try {
        await this.cancelled();
        if (this.cancelSeen && !this.disposed) await Promise.all([this.kill(this.uA, CANCEL_CAUSE), this.kill(this.uB, CANCEL_CAUSE)]);
      } catch (err) {
        this.log.warn({ err }, 'cancel check failed');
      }
      if (!this.disposed) this.cancelTimer = setTimeout(() => void tick(), interval());
    };
    this.cancelTick = tick;
    this.cancelTimer = setTimeout(() => void tick(), interval());
  }

  private async cancelled(): Promise<boolean> {
    if (!this.cancelSeen) {
      this.cancelFlagReadAt = Date.now();
      this.noteCancelFlag(await this.deps.live.isCancelRequested(this.call.callId));
    }
    return this.cancelSeen;
  }

  /** The cancel flag as just read. A cancel seen for the first time by a write brings the watch's next look (which hangs up the legs) forward. */
  private noteCancelFlag(requested: boolean): void {
    if (!requested || this.cancelSeen) return;
    this.cancelSeen = true;
    this.log.info('cancel requested: hanging up the legs');
    // No timer: the watch is looking right now (it hangs up the legs next), or has not started.
    if (this.cancelTimer !== undefined && this.cancelTick && !this.disposed) {
      clearTimeout(this.cancelTimer);
      this.cancelTimer = setTimeout(() => void this.cancelTick?.(), 0);
    }
  }

  // ---- A leg ----------------------------------------------------------------------------------

  private async callA(): Promise<AttemptOutcome> {
    const { req, deps } = this;
    const originate = attemptOriginate({
      request: req,
      callId: this.call.callId,
      uA: this.uA,
      uB: this.uB,
      dialString: deps.dialString,
      ringbackTone: deps.ringbackTone,
    });
    this.trackRinging(this.a, 'aRingAt');
    deps.dialling?.();
    this.log.info({ a: req.a, b: req.b, x: req.x, mode: req.displayMode }, 'calling A, then B');

    let reply: string;
    try {
      reply = await deps.switch.bgapi(originate, {
        jobUuid: legUuid(this.call.callId, 'originate-job', this.call.attempt),
        timeoutMs: req.ringTimeoutASeconds * 1000 + 20_000,
      });
    } catch (err) {
      // The originate may or may not be ringing A: never send another; find out from the switch.
      this.log.warn({ err }, 'originate reply lost; asking the switch about A');
      return this.awaitAnswerOfExistingA();
    }
    const parsed = parseOriginateReply(reply);
    if (!parsed.ok) return this.aFailed(parsed.cause);
    return this.aAnswered();
  }

  private async awaitAnswerOfExistingA(): Promise<AttemptOutcome> {
    if (await this.legExists(this.uA)) {
      // The answer may have gone to a worker that died: ask the switch first. The watch was
      // subscribed before this question, so an answer after it cannot be missed.
      if (this.a.first('CHANNEL_ANSWER')) return this.aAnswered();
      // Answered while no controller followed it: the switch may have bridged B already, or failed to.
      if (await this.answeredPerSwitch(this.uA)) return this.aAnswered(!this.startedHere);
      const next = await this.a.waitForAny((e) => e.name === 'CHANNEL_ANSWER' || e.name === 'CHANNEL_HANGUP_COMPLETE', this.req.ringTimeoutASeconds * 1000 + 5000);
      if (this.a.first('CHANNEL_ANSWER')) return this.aAnswered();
      if (!next) await this.kill(this.uA, 'NORMAL_CLEARING');
    }
    const end = await this.aEnd();
    // A delivery that took the call over late: an answer it did not see is in A's figures, and the call is settled from the switch's.
    if (!this.startedHere && end) {
      const a = figuresOfEvent(end, this.deps.switch.clock);
      if (a.answeredAt !== null) return this.settleFromSwitch(a, await this.figuresOfB(a), this.prior);
    }
    return this.aFailed(end?.header('Hangup-Cause') ?? 'UNKNOWN');
  }

  private async aFailed(cause: string): Promise<AttemptOutcome> {
    // A channel the switch could not create (e.g. `-ERR DESTINATION_OUT_OF_ORDER`) sends no event at all;
    // a created one's events came before the job's reply, on the same connection.
    const end = this.a.seenAny ? await this.aEnd() : undefined;
    const cancelled = cause === CANCEL_CAUSE || (await this.cancelled());
    // Answered and gone before the originate returned: A was reached and left (not A's failure, and no retry).
    if (!cancelled && this.a.first('CHANNEL_ANSWER')) {
      await this.markAAnswered();
      return this.aLeft();
    }
    const result: CallResult = cancelled ? 'cancelled' : resultOfAFailure(cause);
    this.log.info({ cause, result }, 'A not reached');
    // no event at all: the switch refused to create A's channel itself
    return this.settle({ result, cause, side: cancelled || !this.a.seenAny ? 'platform' : sideOf(end, 'a') });
  }

  /**
   * A answered: recorded and reported. When the switch is calling B (A's dialplan is the bridge), the same
   * write records and reports that too. The write reads the cancel flag, as cancelled() would.
   */
  private async markAAnswered(callingB = false): Promise<void> {
    const answer = this.a.first('CHANNEL_ANSWER');
    const aAnswerAt = answer ? this.at(answer) : Date.now();
    const answered = this.progress('call.answered', 'a', aAnswerAt);
    if (callingB) await this.record({ state: 'calling_b', aAnswerAt }, answered, this.progress('call.calling', 'b'));
    else await this.record({ state: 'a_answered', aAnswerAt }, answered);
    this.log.info('A answered');
  }

  /** `unseen`: A answered before this delivery followed the call; what became of the bridge is asked of the switch. */
  private async aAnswered(unseen = false): Promise<AttemptOutcome> {
    // A's BYE raced the originate's reply, before its dialplan reached B: nobody was called for.
    const aLeftFirst = (): boolean => this.a.first('CHANNEL_HANGUP') !== undefined && !this.bridgeStarted();
    const callingBRecorded = !aLeftFirst();
    await this.markAAnswered(callingBRecorded);
    if (this.cancelSeen) return this.endCancelled();
    if (aLeftFirst()) return this.aLeft();
    if (unseen) {
      this.trackRinging(this.b, 'bRingAt');
      return this.followToEnd('calling_b');
    }
    return this.callingB(!callingBRecorded);
  }

  /** A answered: the switch is already calling B (A's dialplan is the bridge); the controller only follows it. */
  private async callingB(record: boolean): Promise<AttemptOutcome> {
    if (record) {
      try {
        await this.record({ state: 'calling_b' }, this.progress('call.calling', 'b'));
      } catch (err) {
        this.log.warn({ err }, 'could not record calling_b');
      }
    }
    this.trackRinging(this.b, 'bRingAt');
    this.log.info('calling B');
    return this.afterBridgeStarted();
  }

  /** Whether the switch has begun the bridge to B: B's channel said something, or the bridge already ended on A. */
  private bridgeStarted(): boolean {
    return this.b.seenAny || this.a.firstWhere(isBridgeEnd) !== undefined;
  }

  /** A hung up before B answered (or before B was called): the call is abandoned by A. */
  private async aLeft(): Promise<AttemptOutcome> {
    const end = await this.aEnd();
    if (await this.cancelled()) return this.settle({ result: 'cancelled', cause: CANCEL_CAUSE, side: 'platform' });
    this.log.info('A hung up before B answered');
    const cause = this.a.first('CHANNEL_HANGUP')?.header('Hangup-Cause') ?? end?.header('Hangup-Cause') ?? null;
    const side = sideOf(end, 'a');
    return this.settle({ result: 'cancelled', cause, side: side === 'unknown' ? 'a' : side });
  }

  /** Cancelled while A is up: A (and B, if any) are hung up, then the call settles as cancelled. */
  private async endCancelled(): Promise<AttemptOutcome> {
    await this.kill(this.uA, CANCEL_CAUSE);
    await this.kill(this.uB, CANCEL_CAUSE);
    await this.aEnd();
    return this.settle({ result: 'cancelled', cause: CANCEL_CAUSE, side: 'platform' });
  }

  /**
   * A's HANGUP_COMPLETE. It follows A's hangup within milliseconds; when it has not come within a second
   * the switch is asked, so a channel that is gone (its events lost on a reconnect) is not waited for.
   */
  private async aEnd(): Promise<EslEvent | undefined> {
    const end = await this.a.waitFor('CHANNEL_HANGUP_COMPLETE', FOLLOW_UP_MS);
    if (end || !(await this.legExists(this.uA))) return end;
    return this.a.waitFor('CHANNEL_HANGUP_COMPLETE', SETTLE_MS);
  }

  // ---- B leg ----------------------------------------------------------------------------------

  /**
   * Whichever comes first on A: CHANNEL_BRIDGE (B answered), the bridge's EXECUTE_COMPLETE without a
   * bridge (B not reached, with the switch's cause), or A's HANGUP_COMPLETE (A is gone; a bridge that ran
   * has completed before it). Bounded by A's ring timeout (the bridge starts when A answers) and B's, which
   * the switch itself enforces.
   */
  private async afterBridgeStarted(): Promise<AttemptOutcome> {
    const first = await this.a.waitForAny(
      (e) =>
        e.name === 'CHANNEL_BRIDGE' ||
        e.name === 'CHANNEL_HANGUP_COMPLETE' ||
        isBridgeEnd(e),
      (this.req.ringTimeoutASeconds + this.req.ringTimeoutBSeconds) * 1000 + SWITCH_SLACK_MS,
    );
    if (first?.name === 'CHANNEL_BRIDGE') return this.bridged(first);
    if (first?.name === 'CHANNEL_EXECUTE_COMPLETE') return this.bFailed(bridgeCause(first));
    if (first?.name === 'CHANNEL_HANGUP_COMPLETE') {
      // A bridge this delivery did not see (it began following the call late) is in A's figures.
      const bridgedAt = figuresOfEvent(first, this.deps.switch.clock).bridgedAt;
      if (bridgedAt !== null) return this.bridgedUnseen(bridgedAt);
      return this.bFailed(undefined);
    }
    return this.bridgeOverdue();
  }

  /**
   * Nothing came within B's ring timeout, which the switch enforces itself: its events were lost (a
   * reconnect) or the bridge was never run. Ask the switch what is left.
   */
  private async bridgeOverdue(): Promise<AttemptOutcome> {
    if (!(await this.legExists(this.uA))) return this.aLeft();
    if (await this.legExists(this.uB)) {
      // an unanswered B would have been ended by its originate_timeout: B answered
      this.log.warn('B is up but its bridge was not seen: following the connected call');
      return this.connectedCallEnded();
    }
    this.log.warn('no outcome of the bridge to B within its ring timeout');
    return this.bFailed(await this.variableOf(this.uA, 'originate_disposition'));
  }

  /** A was bridged to B before this delivery watched, and the call is over: recorded and reported now, then settled from the legs' ends. */
  private async bridgedUnseen(bridgedAt: number): Promise<AttemptOutcome> {
    this.bDialled = true;
    await this.record({ state: 'bridged', bAnswerAt: bridgedAt }, this.progress('call.answered', 'b', bridgedAt), this.progress('call.bridged', undefined, bridgedAt)).catch((err: unknown) =>
      this.log.warn({ err }, 'could not record the bridge'),
    );
    return this.connectedCallEnded();
  }

  private async bridged(bridge: EslEvent): Promise<AttemptOutcome> {
    const bAnswer = this.b.first('CHANNEL_ANSWER');
    const bAnswerAt = bAnswer ? this.at(bAnswer) : this.at(bridge);
    try {
      await this.record({ state: 'bridged', bAnswerAt }, this.progress('call.answered', 'b', bAnswerAt), this.progress('call.bridged', undefined, this.at(bridge)));
      this.log.info('bridged');
      // The warning tone before the cap, scheduled on the switch as the cap was (from B's answer). Not in B's
      // api_on_answer: a tone has commas, which B's variables in the inline dialplan cannot carry.
      const elapsed = Math.max(0, Math.floor((Date.now() - bAnswerAt) / 1000));
      const warning = endWarningCommand(this.uB, this.req.maxDurationSeconds - elapsed, this.req.endWarningSeconds ?? 0, this.deps.endWarningTone);
      if (warning) void this.deps.switch.api(warning, { quick: true }).catch((err: unknown) => this.log.warn({ err }, 'could not schedule the end warning'));
      if (this.req.record) {
        await this.deps.switch.execute(this.uA, 'record_session', this.deps.recordingPath(this.call.callId));
      }
    } catch (err) {
      this.log.warn({ err }, 'post-bridge setup failed');
    }
    return this.connectedCallEnded();
  }

  /**
   * B was not reached. `switchCause` is the bridge's own cause (its EXECUTE_COMPLETE); undefined when the
   * bridge never ran or was not seen. The first leg to hang up decides: A leaving while B rings abandons the
   * call; B refusing, being busy or not answering is B's result, with the switch's cause.
   */
  private async bFailed(switchCause: string | undefined): Promise<AttemptOutcome> {
    const bHangup = this.b.first('CHANNEL_HANGUP');
    const aHangup = this.a.first('CHANNEL_HANGUP');
    if (await this.cancelled()) {
      if (!aHangup) return this.endCancelled();
      await this.aEnd();
      return this.settle({ result: 'cancelled', cause: CANCEL_CAUSE, side: 'platform' });
    }
    // Without a B channel the switch's cause says whether A's leaving cancelled the bridge (ORIGINATOR_CANCEL)
    // or the switch refused B first (e.g. DESTINATION_OUT_OF_ORDER).
    const aFirst = aHangup !== undefined && (bHangup ? earliest(aHangup, bHangup) === aHangup : switchCause === undefined || switchCause === CANCEL_CAUSE);
    if (aFirst) return this.aLeft();

    const cause = switchCause ?? bHangup?.header('Hangup-Cause') ?? 'UNKNOWN';
    const result = resultOfBFailure(cause);
    this.log.info({ cause, result }, 'B not reached');
    if (!aHangup) {
      await this.runOnA('playback', this.deps.bFailedPrompt, 30_000);
      if (!this.a.first('CHANNEL_HANGUP')) {
        await this.deps.switch.execute(this.uA, 'hangup', result === 'b_busy' ? 'USER_BUSY' : 'NORMAL_CLEARING').catch((err: unknown) => {
          this.log.info({ err }, 'A left before the prompt ended');
        });
      }
    }
    if (!(await this.aEnd()) && (await this.legExists(this.uA))) {
      this.log.error('A outlived its hangup; hanging it up');
      await this.kill(this.uA, 'NORMAL_CLEARING');
      await this.aEnd();
    }
    // A B channel that existed ends before its bridge completes; one that was never created has no side of its own.
    const bEnd = bHangup ? await this.b.waitFor('CHANNEL_HANGUP_COMPLETE', FOLLOW_UP_MS) : undefined;
    return this.settle({ result, cause, side: bHangup ? sideOf(bEnd, 'b') : 'platform' });
  }

  /** Runs an app on A; resolves when it completes or A is gone, whichever first (undefined when it could not be sent or timed out). */
  private async runOnA(app: string, arg: string, timeoutMs: number): Promise<EslEvent | undefined> {
    const id = randomUUID();
    try {
      await this.deps.switch.execute(this.uA, app, arg, { eventUuid: id });
    } catch (err) {
      this.log.info({ err, app }, 'A is gone');
      return undefined;
    }
    return this.a.waitForAny(
      (e) => e.name === 'CHANNEL_HANGUP_COMPLETE' || (e.name === 'CHANNEL_EXECUTE_COMPLETE' && e.header('Application-UUID') === id),
      timeoutMs,
    );
  }

  private async connectedCallEnded(): Promise<AttemptOutcome> {
    const [aEnd, bEnd] = await Promise.all([
      this.waitForEnd(this.a, this.uA, (this.req.maxDurationSeconds + 60) * 1000),
      this.waitForEnd(this.b, this.uB, (this.req.maxDurationSeconds + 60) * 1000),
    ]);
    // The first leg to hang up decides the cause; its HANGUP_COMPLETE says who (phone or platform).
    const firstHangup = earliest(this.a.first('CHANNEL_HANGUP'), this.b.first('CHANNEL_HANGUP'));
    const firstLeg = firstHangup?.uuid === this.uB ? 'b' : 'a';
    const cause = firstHangup?.header('Hangup-Cause') ?? aEnd?.header('Hangup-Cause') ?? 'NORMAL_CLEARING';
    const side: HangupSide =
      cause === 'ALLOTTED_TIMEOUT' || cause === CANCEL_CAUSE
        ? 'platform'
        : firstHangup === undefined
          ? 'unknown'
          : sideOf(firstLeg === 'b' ? bEnd : aEnd, firstLeg);
    const billsec = bEnd?.variable('billsec');
    return this.settle({ result: 'connected', cause, side, talkSeconds: billsec === undefined ? undefined : Number(billsec) });
  }

  // ---- redelivery -----------------------------------------------------------------------------

  /** Another delivery of this job already dialled A. Follow what exists; dial nothing already dialled. */
  private async resume(prior: LiveCall | null): Promise<AttemptOutcome> {
    this.prior = prior;
    this.log.warn({ state: prior?.state }, 'resuming an attempt that was already started');
    this.reportKnownProgress(prior);
    if (!(await this.legExists(this.uA))) {
      const kept = await this.keptFiguresOfLegs();
      if (kept) return this.settleFromSwitch(kept.a, kept.b, prior);
      // Nothing kept (the switch restarted): what the live call says.
      const result: CallResult = prior?.state === 'bridged' ? 'connected' : (prior?.result ?? 'failed');
      return this.settle({ result, cause: prior?.hangupCause ?? null, side: prior?.hangupSide ?? 'unknown' });
    }
    if (prior?.state === 'calling_a' || prior?.state === 'queued' || prior === null) return this.awaitAnswerOfExistingA();
    if (prior.state === 'a_answered') return this.aAnswered();
    // B may still ring: its ringing is this delivery's to report.
    if (prior.bRingAt === null) this.trackRinging(this.b, 'bRingAt');
    return this.followToEnd(prior.state);
  }

  /** What the switch kept of A and B (switch-figures.ts); null when it kept nothing of A. */
  private async keptFiguresOfLegs(): Promise<{ a: SwitchFigures; b: SwitchFigures | null } | null> {
    const a = await this.keptFiguresOf(this.uA);
    return a ? { a, b: await this.figuresOfB(a) } : null;
  }

  private keptFiguresOf(uuid: string): Promise<SwitchFigures | null> {
    return keptFigures(this.deps.switch, uuid).catch((err: unknown) => {
      this.log.warn({ err, uuid }, 'could not read what the switch kept of a leg');
      return null;
    });
  }

  /** B's figures once A is over: its end as seen here, or as the switch kept it (a B still up, as it ends with A, is waited for). */
  private async figuresOfB(a: SwitchFigures): Promise<SwitchFigures | null> {
    const seen = this.b.first('CHANNEL_HANGUP_COMPLETE');
    if (seen) return figuresOfEvent(seen, this.deps.switch.clock);
    const kept = await this.keptFiguresOf(this.uB);
    if (kept || a.answeredAt === null || !(await this.legExists(this.uB))) return kept;
    const end = await this.waitForEnd(this.b, this.uB, SETTLE_MS);
    return end ? figuresOfEvent(end, this.deps.switch.clock) : this.keptFiguresOf(this.uB);
  }

  /**
   * The call ended while no controller followed it: settled from the figures the switch kept of each leg, as
   * the flow would have settled it from their events (who hung up first, the cause, B's billed seconds).
   */
  private async settleFromSwitch(a: SwitchFigures, b: SwitchFigures | null, prior: LiveCall | null): Promise<AttemptOutcome> {
    const sameAttempt = prior?.attempt === this.call.attempt ? prior : null;
    const times: LegTimes = {
      aRingAt: a.ringingAt ?? sameAttempt?.aRingAt ?? null,
      aAnswerAt: a.answeredAt ?? sameAttempt?.aAnswerAt ?? null,
      bRingAt: b?.ringingAt ?? sameAttempt?.bRingAt ?? null,
      bAnswerAt: a.bridgedAt ?? b?.answeredAt ?? sameAttempt?.bAnswerAt ?? null,
    };
    const ends = [a.endedAt, b?.endedAt ?? null].filter((t): t is number => t !== null);
    const switchSaid = { times, endedAt: ends.length > 0 ? Math.max(...ends) : null, bDialled: b !== null || times.bRingAt !== null };
    this.log.warn({ a: a.hangupCause, b: b?.hangupCause }, 'the call ended while no controller followed it: settling it from the switch’s figures');
    const aByPhone = a.disposition?.startsWith('recv_') === true;
    if (times.aAnswerAt === null) {
      const cause = a.hangupCause ?? 'UNKNOWN';
      const cancelled = cause === CANCEL_CAUSE || (await this.cancelled());
      return this.settle({ result: cancelled ? 'cancelled' : resultOfAFailure(cause), cause, side: cancelled ? 'platform' : aByPhone ? 'a' : 'platform', switchSaid });
    }
    if (times.bAnswerAt !== null) {
      // Bridged: the first leg to hang up decides the cause. A hung up by its phone went first; otherwise B ended A (hangup_after_bridge).
      const cause = aByPhone ? a.hangupCause : (b?.hangupCause ?? a.hangupCause);
      const side: HangupSide =
        cause === 'ALLOTTED_TIMEOUT' || cause === CANCEL_CAUSE ? 'platform' : aByPhone ? 'a' : b?.disposition ? (b.disposition.startsWith('recv_') ? 'b' : 'platform') : 'unknown';
      const talkSeconds = b?.billsec ?? (a.endedAt !== null ? Math.max(0, Math.round((a.endedAt - times.bAnswerAt) / 1000)) : undefined);
      return this.settle({ result: 'connected', cause, side, talkSeconds, switchSaid });
    }
    // A answered, B was never bridged: B not reached, or A left first (B's cause is then A's cancel of it).
    const failure = a.bFailureCause && a.bFailureCause.toUpperCase() !== 'SUCCESS' ? a.bFailureCause : (b?.hangupCause ?? null);
    const aFirst = aByPhone && (failure === null || failure === CANCEL_CAUSE || (b?.endedAt != null && a.endedAt !== null && a.endedAt < b.endedAt));
    if (aFirst || (await this.cancelled())) {
      const cancelled = this.cancelSeen;
      return this.settle({ result: 'cancelled', cause: cancelled ? CANCEL_CAUSE : a.hangupCause, side: cancelled ? 'platform' : 'a', switchSaid });
    }
    const side: HangupSide = b?.disposition ? (b.disposition.startsWith('recv_') ? 'b' : 'platform') : 'platform';
    return this.settle({ result: resultOfBFailure(failure ?? undefined), cause: failure, side, switchSaid });
  }

  /**
   * A takeover reports at once what the live record says already happened. Same event ids as the
   * first owner's reports: what it queued before dying is not sent twice, what it did not is sent now.
   */
  private reportKnownProgress(prior: LiveCall | null): void {
    if (!prior || prior.attempt !== this.call.attempt) return;
    if (prior.aRingAt !== null) this.report('call.ringing', 'a', prior.aRingAt);
    if (prior.aAnswerAt !== null) this.report('call.answered', 'a', prior.aAnswerAt);
    if (prior.bRingAt !== null) this.report('call.ringing', 'b', prior.bRingAt);
    if (prior.bAnswerAt !== null) this.report('call.answered', 'b', prior.bAnswerAt);
    if (prior.state === 'bridged' && prior.bAnswerAt !== null) this.report('call.bridged', undefined, prior.bAnswerAt);
  }

  /**
   * B was claimed by another delivery. A bridge that ended before this one subscribed left its outcome in
   * A's variables (originate_disposition: SUCCESS, or the failure cause); otherwise its events are still to come.
   */
  private async followToEnd(state: LiveCall['state']): Promise<AttemptOutcome> {
    this.bDialled = true;
    if (state === 'bridged') return this.connectedCallEnded();
    const disposition = await this.variableOf(this.uA, 'originate_disposition');
    if (disposition?.toUpperCase() === 'SUCCESS') {
      // B answered while no controller followed the call: recorded and reported now.
      const bAnsweredAt = Date.now();
      await this.record({ state: 'bridged', bAnswerAt: bAnsweredAt }, this.progress('call.answered', 'b', bAnsweredAt), this.progress('call.bridged', undefined, bAnsweredAt)).catch((err: unknown) =>
        this.log.warn({ err }, 'could not record the bridge'),
      );
      return this.connectedCallEnded();
    }
    if (disposition) return this.bFailed(disposition);
    return this.afterBridgeStarted();
  }

  // ---- settling -------------------------------------------------------------------------------

  private settle(end: CallEnd): Promise<AttemptOutcome> {
    this.settled ??= this.settleOnce(end);
    return this.settled;
  }

  private async settleOnce(end: CallEnd): Promise<AttemptOutcome> {
    // B's phone was dialled if its channel said anything (a channel the switch refused to create says nothing)
    this.bDialled ||= this.b.seenAny || end.switchSaid?.bDialled === true;
    const times: LegTimes = end.switchSaid?.times ?? (this.startedHere ? this.legTimes : ((await this.deps.live.get(this.call.callId)) ?? this.legTimes));
    const endedAt = end.switchSaid?.endedAt ?? Date.now();
    const bAnswerAt = times.bAnswerAt;
    const talkSeconds =
      end.result !== 'connected' ? 0 : end.talkSeconds ?? (bAnswerAt ? Math.max(0, Math.round((endedAt - bAnswerAt) / 1000)) : 0);
    const cdr: CdrRecord = {
      callId: this.call.callId,
      tenantId: this.req.tenantId,
      kind: 'click_to_dial',
      bindingId: null,
      x: this.req.x,
      a: this.req.a,
      b: this.req.b,
      startedAt: this.call.queuedAt,
      aRingAt: times.aRingAt,
      aAnswerAt: times.aAnswerAt,
      bRingAt: times.bRingAt,
      bAnswerAt,
      endedAt,
      talkSeconds,
      hangupCause: end.cause,
      hangupSide: end.side,
      result: end.result,
      recordingRef: end.result === 'connected' && this.req.record ? this.deps.recordingPath(this.call.callId) : null,
      userData: this.req.userData,
    };
    await this.deps.live.update(this.call.callId, {
      state: 'completed',
      endedAt,
      result: end.result,
      hangupCause: end.cause,
      hangupSide: end.side,
      finalCdr: cdr,
    });
    this.forgetKeptFigures();
    this.log.info({ result: end.result, cause: end.cause, side: end.side, talkSeconds }, 'call ended');
    return this.outcomeOf(cdr, cdr.aAnswerAt !== null, this.bDialled);
  }

  /**
   * The settlement is written: nobody needs what the switch kept of the legs any more. A leg this delivery started
   * and never heard of was never created (nothing kept); one whose end it did not see may not have run its
   * reporting hook yet, so its entry is deleted a little later (should this controller die meanwhile, the
   * stale-figures sweep deletes it).
   */
  private forgetKeptFigures(): void {
    const sw = this.deps.switch;
    for (const [leg, uuid] of [
      [this.a, this.uA],
      [this.b, this.uB],
    ] as const) {
      if (this.startedHere && !leg.seenAny) continue;
      if (!leg.seenAny || leg.first('CHANNEL_HANGUP_COMPLETE')) void forgetFigures(sw, uuid);
      else setTimeout(() => void forgetFigures(sw, uuid), FORGET_UNSEEN_END_AFTER_MS).unref();
    }
  }

  private outcomeOf(cdr: CdrRecord, aReached: boolean, bDialled: boolean): AttemptOutcome {
    return { result: cdr.result, aReached, bDialled, cdr };
  }

  /** When the switch says event `e` happened, on this controller's clock (the clock of `startedAt` and timers). */
  private at(e: EslEvent): number {
    return eventTime(e, this.deps.switch.clock);
  }

  private report(type: PlatformEventType, leg?: Leg, at = Date.now()): void {
    this.deps.events?.report(this.eventOf(type, leg, at));
  }

  private eventOf(type: PlatformEventType, leg: Leg | undefined, at: number): PlatformEventInput {
    return { type, tenantId: this.req.tenantId, callId: this.call.callId, at, ...(leg ? { leg } : {}) };
  }

  /** A progress event to report with a write of the live call (record). */
  private progress(type: PlatformEventType, leg?: Leg, at = Date.now()): PreparedReport | undefined {
    return this.deps.events?.prepare(this.eventOf(type, leg, at));
  }

  /**
   * Writes a step of the call and publishes what it reports, in one round trip; this instance's listeners
   * (webhooks) hear of it once the write is done, or failed. The cancel flag, read by the same command, is noted.
   */
  private async record(patch: LiveCallPatch, ...reports: ReadonlyArray<PreparedReport | undefined>): Promise<void> {
    const prepared = reports.filter((r): r is PreparedReport => r !== undefined);
    for (const k of LEG_TIME_FIELDS) if (patch[k] !== undefined) this.legTimes[k] = patch[k];
    try {
      const sentAt = Date.now();
      const cancelRequested = await this.deps.live.update(this.call.callId, patch, prepared.map((r) => r.publication));
      this.cancelFlagReadAt = Math.max(this.cancelFlagReadAt, sentAt);
      this.noteCancelFlag(cancelRequested);
    } finally {
      for (const r of prepared) this.deps.events?.reportLocally(r.event);
    }
  }

  // ---- switch helpers -------------------------------------------------------------------------

  private trackRinging(leg: LegWatch, field: 'aRingAt' | 'bRingAt'): void {
    const timeoutMs = (field === 'aRingAt' ? this.req.ringTimeoutASeconds : this.req.ringTimeoutBSeconds) * 1000 + 5000;
    void leg.waitFor('CHANNEL_PROGRESS', timeoutMs).then(async (e) => {
      if (!e) return;
      await this.record({ [field]: this.at(e) }, this.progress('call.ringing', field === 'aRingAt' ? 'a' : 'b', this.at(e))).catch((err: unknown) => {
        this.log.warn({ err }, 'could not record ringing');
      });
    });
  }

  private async waitForEnd(leg: LegWatch, uuid: string, timeoutMs: number): Promise<EslEvent | undefined> {
    const end = await leg.waitFor('CHANNEL_HANGUP_COMPLETE', timeoutMs);
    if (!end && (await this.legExists(uuid))) {
      this.log.error({ uuid }, 'leg outlived every limit; hanging it up');
      await this.kill(uuid, 'ALLOTTED_TIMEOUT');
      return leg.waitFor('CHANNEL_HANGUP_COMPLETE', SETTLE_MS);
    }
    return end;
  }

  /** After a reconnect, events sent while we were away are gone: a leg that vanished meanwhile must not be waited for. */
  private async checkLegsStillExist(): Promise<void> {
    for (const [leg, uuid] of [
      [this.a, this.uA],
      [this.b, this.uB],
    ] as const) {
      if (!(await this.legExists(uuid))) leg.abandonWaits();
    }
  }

  private async legExists(uuid: string): Promise<boolean> {
    try {
      return (await this.deps.switch.api(`uuid_exists ${uuid}`)).trim() === 'true';
    } catch (err) {
      this.log.warn({ err }, 'uuid_exists failed');
      return false;
    }
  }

  /** A channel variable, or undefined when unset (`_undef_`), the channel is gone or the switch cannot be asked. */
  private async variableOf(uuid: string, name: string): Promise<string | undefined> {
    try {
      const value = (await this.deps.switch.api(`uuid_getvar ${uuid} ${name}`)).trim();
      return value === '' || value === '_undef_' || value.startsWith('-ERR') ? undefined : value;
    } catch {
      return undefined;
    }
  }

  private async answeredPerSwitch(uuid: string): Promise<boolean> {
    try {
      const epoch = (await this.deps.switch.api(`uuid_getvar ${uuid} answer_epoch`)).trim();
      return /^\d+$/.test(epoch) && epoch !== '0';
    } catch {
      return false;
    }
  }

  private async kill(uuid: string, cause: string): Promise<void> {
    try {
      await this.deps.switch.api(`uuid_kill ${uuid} ${cause}`);
    } catch (err) {
      this.log.warn({ err }, 'uuid_kill failed');
    }
  }
}

/** What an attempt's originate is made of. */
export interface AttemptDial {
  readonly request: Pick<ClickToDialRequest, 'a' | 'b' | 'x' | 'displayMode' | 'ringTimeoutASeconds' | 'ringTimeoutBSeconds' | 'maxDurationSeconds'>;
  readonly callId: string;
  readonly uA: string;
  readonly uB: string;
  readonly dialString: (number: string) => string;
  readonly ringbackTone: string;
}

/** The one command that places an attempt (the module's doc): A's originate, its inline dialplan the bridge to B, then `park`. */
export function attemptOriginate(d: AttemptDial): string {
  const req = d.request;
  const callerId = planCallerId(req.displayMode, req.x, req.a);
  const aVars = aLegVars(
    {
      ...callerId.aLeg,
      origination_uuid: d.uA,
      originate_timeout: String(req.ringTimeoutASeconds),
      // A survives a failed bridge so it can hear why (trace 09b), and ends with the bridged call (trace 04).
      continue_on_fail: 'true',
      hangup_after_bridge: 'true',
      [CALL_ID_VARIABLE]: d.callId,
    },
    d.ringbackTone,
    keepFiguresVariables(),
  );
  const bVars = formatChannelVars({
    ...callerId.bLeg,
    origination_uuid: d.uB,
    originate_timeout: String(req.ringTimeoutBSeconds),
    [CALL_ID_VARIABLE]: d.callId,
  });
  // Enforced by the switch from B's answer on, even if this controller dies (recording 17a). Quoted:
  // the API command has spaces, which would otherwise split the originate's arguments.
  const maxDuration = `api_on_answer='sched_hangup +${req.maxDurationSeconds} ${d.uB} ALLOTTED_TIMEOUT'`;
  // B keeps its figures too, from its first moment: the bridge copies A's hook to it (switch-figures.ts).
  const bVarsWithMaxDuration = `${bVars.slice(0, -1)},${maxDuration}}`;
  const dialplan = inlineDialplan([
    ['bridge', `${bVarsWithMaxDuration}${d.dialString(req.b)}`],
    // only reached when the bridge failed (continue_on_fail): A waits here for the prompt
    ['park', ''],
  ]);
  return `originate ${aVars}${d.dialString(req.a)} ${dialplan} inline`;
}

/**
 * A's `{}`, with the variables that make A and B keep their figures. The ringback tone has commas (`%(2000,4000,440,480)`), so the list is separated by a character
 * none of the values has (`{^^;name=value;...}`, switch_event_create_brackets).
 */
function aLegVars(vars: ChannelVars, ringbackTone: string, keepFigures: Readonly<Record<string, string>>): string {
  const plain = formatChannelVars(vars).slice(1, -1);
  const figures = Object.entries(keepFigures).map(([k, v]) => `${k}=${v}`);
  const separator = [';', '|', '!', '~'].find((c) => !ringbackTone.includes(c) && !plain.includes(c) && !figures.some((f) => f.includes(c)));
  if (separator === undefined || /[\s'^]/.test(ringbackTone)) throw new Error('the ringback tone cannot be carried in a dial string');
  return `{^^${separator}${[...plain.split(','), ...figures, `ringback=${ringbackTone}`].join(separator)}}`;
}

/** `m:^:app:arg^app:arg`: apps the switch runs on A, in order, once it answers (mod_dptools inline dialplan). */
function inlineDialplan(apps: ReadonlyArray<readonly [string, string]>): string {
  for (const [, arg] of apps) {
    if (arg.includes(INLINE_APP_SEPARATOR) || /[\r\n]/.test(arg)) throw new Error('an inline dialplan app argument cannot carry ^ or a line break');
  }
  return `m:${INLINE_APP_SEPARATOR}:` + apps.map(([app, arg]) => (arg ? `${app}:${arg}` : app)).join(INLINE_APP_SEPARATOR);
}

/** The bridge app of A's dialplan has ended (B answered and hung up, or was not reached). */
function isBridgeEnd(e: EslEvent): boolean {
  return e.name === 'CHANNEL_EXECUTE_COMPLETE' && e.header('Application') === 'bridge';
}

/** The cause a bridge app ended with (its EXECUTE_COMPLETE), if the switch gave one. */
function bridgeCause(complete: EslEvent): string | undefined {
  for (const name of BRIDGE_CAUSE_VARIABLES) {
    const v = complete.variable(name);
    if (v && v.toUpperCase() !== 'SUCCESS') return v;
  }
  return undefined;
}

/** Which side ended a leg, from its HANGUP_COMPLETE: the phone (recv_*) or the platform (send_*). */
function sideOf(e: EslEvent | undefined, leg: 'a' | 'b'): HangupSide {
  const disposition = e?.variable('sip_hangup_disposition');
  if (!disposition) return 'unknown';
  return disposition.startsWith('recv_') ? leg : 'platform';
}

/** The event FreeSWITCH emitted first (Event-Sequence is the switch's own global order). */
function earliest(x: EslEvent | undefined, y: EslEvent | undefined): EslEvent | undefined {
  if (!x) return y;
  if (!y) return x;
  return Number(y.header('Event-Sequence')) < Number(x.header('Event-Sequence')) ? y : x;
}
