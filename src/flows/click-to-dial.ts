import type { CallResult, CdrRecord, ClickToDialRequest, HangupSide } from '../domain/call';
import type { Leg, PlatformEventType, ReportEvent } from '../events/platform-events';
import { formatChannelVars, planCallerId } from '../domain/caller-id';
import { deterministicUuid } from '../domain/ids';
import { CANCEL_CAUSE, parseOriginateReply, resultOfAFailure, resultOfBFailure } from '../domain/call-result';
import type { EslEvent } from '../esl/event';
import type { Logger } from '../logger';
import type { LiveCall, LiveCallStore } from '../stores/live-calls';
import { eventTime, LegWatch, type SwitchControl } from './switch';

/**
 * Click-to-dial (回拨), SPEC §4: the platform calls A; when A answers, A hears ringback while the
 * platform calls B; when B answers the two are bridged, and the switch enforces the maximum
 * duration. B busy / no answer plays a short prompt to A and ends.
 *
 * Never rings anyone twice: each leg's uuid derives from (call, attempt), and each leg is claimed
 * in Redis before it is dialled. A redelivered job that finds a claim taken follows the call that
 * is already there (or settles it) instead of dialling again.
 */
export interface ClickToDialDeps {
  readonly switch: SwitchControl;
  readonly live: LiveCallStore;
  readonly dialString: (number: string) => string;
  readonly ringbackTone: string;
  readonly bFailedPrompt: string;
  readonly recordingPath: (callId: string) => string;
  /** Progress for webhooks and the agent console; never awaited. */
  readonly report?: ReportEvent;
  readonly logger: Logger;
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
  readonly cdr: CdrRecord;
}

const SETTLE_MS = 10_000;

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

/** Deterministic uuid (v4 layout) for a leg of one attempt of one call. */
export function legUuid(callId: string, leg: 'a' | 'b' | 'originate-job' | 'callback-binding', attempt: number): string {
  return deterministicUuid(callId, leg, String(attempt));
}

export async function runClickToDial(deps: ClickToDialDeps, call: ClickToDialAttempt): Promise<AttemptOutcome> {
  const flow = new ClickToDialFlow(deps, call);
  try {
    return await flow.run();
  } finally {
    flow.dispose();
  }
}

class ClickToDialFlow {
  private readonly log: Logger;
  private readonly uA: string;
  private readonly uB: string;
  private readonly a: LegWatch;
  private readonly b: LegWatch;
  private readonly req: ClickToDialRequest;
  private bDialled = false;
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
    this.a.dispose();
    this.b.dispose();
    this.deps.switch.off('ready', this.onSwitchReady);
  }

  async run(): Promise<AttemptOutcome> {
    const { live } = this.deps;
    const prior = await live.get(this.call.callId);
    if (prior?.finalCdr && prior.attempt === this.call.attempt) {
      this.log.info('attempt already settled by an earlier delivery');
      return this.outcomeOf(prior.finalCdr, prior.aAnswerAt !== null, prior.state !== 'calling_a' && prior.state !== 'queued');
    }
    if (prior?.cancelRequested) return this.settle({ result: 'cancelled', cause: CANCEL_CAUSE, side: 'platform' });
    if (!(await live.claim(this.call.callId, `a:${this.call.attempt}`))) return this.resume(prior);

    await live.update(this.call.callId, {
      ...FRESH_ATTEMPT,
      state: 'calling_a',
      attempt: this.call.attempt,
      aUuid: this.uA,
      bUuid: this.uB,
    });
    this.report('call.calling', 'a');
    return this.callA();
  }

  // ---- A leg ----------------------------------------------------------------------------------

  private async callA(): Promise<AttemptOutcome> {
    const { req } = this;
    const callerId = planCallerId(req.displayMode, req.x, req.a);
    const vars = formatChannelVars({
      ...callerId.aLeg,
      origination_uuid: this.uA,
      originate_timeout: String(req.ringTimeoutASeconds),
      // A survives a failed bridge so it can hear why (trace 09b), and ends with the bridged call (trace 04).
      continue_on_fail: 'true',
      hangup_after_bridge: 'true',
      ng_call_id: this.call.callId,
    });
    this.trackRinging(this.a, 'aRingAt');
    this.log.info({ a: req.a, x: req.x, mode: req.displayMode }, 'calling A');

    let reply: string;
    try {
      reply = await this.deps.switch.bgapi(`originate ${vars}${this.deps.dialString(req.a)} &park()`, {
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
      if (this.a.first('CHANNEL_ANSWER') || (await this.answeredPerSwitch(this.uA))) return this.aAnswered();
      const answered = await this.a.waitFor('CHANNEL_ANSWER', this.req.ringTimeoutASeconds * 1000 + 5000);
      if (answered) return this.aAnswered();
      await this.kill(this.uA, 'NORMAL_CLEARING');
    }
    const end = await this.a.waitFor('CHANNEL_HANGUP_COMPLETE', SETTLE_MS);
    return this.aFailed(end?.header('Hangup-Cause') ?? 'UNKNOWN');
  }

  private async aFailed(cause: string): Promise<AttemptOutcome> {
    const end = await this.a.waitFor('CHANNEL_HANGUP_COMPLETE', SETTLE_MS);
    const cancelled = cause === CANCEL_CAUSE || (await this.deps.live.isCancelRequested(this.call.callId));
    const result: CallResult = cancelled ? 'cancelled' : resultOfAFailure(cause);
    this.log.info({ cause, result }, 'A not reached');
    return this.settle({ result, cause, side: cancelled ? 'platform' : sideOf(end, 'a') });
  }

  private async aAnswered(): Promise<AttemptOutcome> {
    const answer = this.a.first('CHANNEL_ANSWER');
    await this.deps.live.update(this.call.callId, { state: 'a_answered', aAnswerAt: answer ? eventTime(answer) : Date.now() });
    this.report('call.answered', 'a', answer ? eventTime(answer) : undefined);
    this.log.info('A answered');
    if (await this.deps.live.isCancelRequested(this.call.callId)) {
      await this.kill(this.uA, CANCEL_CAUSE);
      await this.a.waitFor('CHANNEL_HANGUP_COMPLETE', SETTLE_MS);
      return this.settle({ result: 'cancelled', cause: CANCEL_CAUSE, side: 'platform' });
    }
    if (!(await this.deps.live.claim(this.call.callId, `b:${this.call.attempt}`))) return this.followToEnd();
    return this.callB();
  }

  // ---- B leg ----------------------------------------------------------------------------------

  private async callB(): Promise<AttemptOutcome> {
    const { req, deps } = this;
    const callerId = planCallerId(req.displayMode, req.x, req.a);
    const vars = formatChannelVars({
      ...callerId.bLeg,
      origination_uuid: this.uB,
      originate_timeout: String(req.ringTimeoutBSeconds),
      ng_call_id: this.call.callId,
    });
    try {
      await deps.switch.execute(this.uA, 'set', `ringback=${deps.ringbackTone}`);
      await deps.live.update(this.call.callId, { state: 'calling_b' });
      this.report('call.calling', 'b');
      this.trackRinging(this.b, 'bRingAt');
      this.bDialled = true;
      this.log.info({ b: req.b }, 'calling B');
      const bridgeDone = deps.switch.execute(this.uA, 'bridge', `${vars}${deps.dialString(req.b)}`, {
        awaitCompletion: true,
        timeoutMs: (req.ringTimeoutBSeconds + req.maxDurationSeconds + 300) * 1000,
      });
      void this.onBridged();
      await bridgeDone;
    } catch (err) {
      // A hung up before or during the bridge (sendmsg to a gone channel), or the switch went away.
      this.log.info({ err }, 'bridge did not complete normally');
    }
    if (this.a.first('CHANNEL_BRIDGE')) return this.connectedCallEnded();
    return this.bFailed();
  }

  private async onBridged(): Promise<void> {
    const bridge = await this.a.waitFor('CHANNEL_BRIDGE', this.req.ringTimeoutBSeconds * 1000 + 15_000);
    if (!bridge) return;
    const bAnswer = this.b.first('CHANNEL_ANSWER');
    try {
      await this.deps.live.update(this.call.callId, { state: 'bridged', bAnswerAt: bAnswer ? eventTime(bAnswer) : eventTime(bridge) });
      this.report('call.answered', 'b', bAnswer ? eventTime(bAnswer) : eventTime(bridge));
      this.report('call.bridged', undefined, eventTime(bridge));
      this.log.info('bridged');
      // Enforced by the switch itself (trace 12): holds even if this controller dies now.
      await this.deps.switch.api(`sched_hangup +${this.req.maxDurationSeconds} ${this.uA} ALLOTTED_TIMEOUT`);
      if (this.req.record) {
        await this.deps.switch.execute(this.uA, 'record_session', this.deps.recordingPath(this.call.callId));
      }
    } catch (err) {
      this.log.warn({ err }, 'post-bridge setup failed');
    }
  }

  private async bFailed(): Promise<AttemptOutcome> {
    // B may never have been dialled (A left first): nothing of B's to wait for then.
    const bEnd = this.bDialled ? await this.b.waitFor('CHANNEL_HANGUP', SETTLE_MS) : undefined;
    const cause = bEnd?.header('Hangup-Cause') ?? 'UNKNOWN';
    const cancelled = await this.deps.live.isCancelRequested(this.call.callId);
    // A hanging up while B still rings abandons the call: not B's failure.
    const aLeft = earliest(this.a.first('CHANNEL_HANGUP'), bEnd)?.uuid === this.uA;
    if (aLeft && !cancelled) {
      this.log.info('A hung up while B was being called');
      await this.a.waitFor('CHANNEL_HANGUP_COMPLETE', SETTLE_MS);
      return this.settle({ result: 'cancelled', cause: this.a.first('CHANNEL_HANGUP')?.header('Hangup-Cause') ?? null, side: 'a' });
    }
    const result: CallResult = cancelled ? 'cancelled' : resultOfBFailure(cause);
    this.log.info({ cause, result }, 'B not reached');
    if (!this.a.first('CHANNEL_HANGUP') && !cancelled) {
      try {
        await this.deps.switch.execute(this.uA, 'playback', this.deps.bFailedPrompt, { awaitCompletion: true, timeoutMs: 30_000 });
        await this.deps.switch.execute(this.uA, 'hangup', result === 'b_busy' ? 'USER_BUSY' : 'NORMAL_CLEARING');
      } catch (err) {
        this.log.info({ err }, 'A left before the prompt ended');
      }
    }
    await this.a.waitFor('CHANNEL_HANGUP_COMPLETE', SETTLE_MS);
    const bComplete = this.bDialled ? await this.b.waitFor('CHANNEL_HANGUP_COMPLETE', SETTLE_MS) : undefined;
    return this.settle({ result, cause, side: cancelled ? 'platform' : sideOf(bComplete, 'b') });
  }

  private async connectedCallEnded(): Promise<AttemptOutcome> {
    const [aEnd, bEnd] = await Promise.all([
      this.waitForEnd(this.a, this.uA, (this.req.maxDurationSeconds + 60) * 1000),
      this.waitForEnd(this.b, this.uB, SETTLE_MS),
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
    this.log.warn({ state: prior?.state }, 'resuming an attempt that was already started');
    if (!(await this.legExists(this.uA))) {
      const result: CallResult = prior?.state === 'bridged' ? 'connected' : (prior?.result ?? 'failed');
      return this.settle({ result, cause: prior?.hangupCause ?? null, side: prior?.hangupSide ?? 'unknown' });
    }
    if (prior?.state === 'calling_a' || prior?.state === 'queued' || prior === null) return this.awaitAnswerOfExistingA();
    if (prior.state === 'a_answered') return this.aAnswered();
    this.bDialled = true;
    return this.followToEnd();
  }

  private async followToEnd(): Promise<AttemptOutcome> {
    this.bDialled = true;
    await this.waitForEnd(this.a, this.uA, (this.req.ringTimeoutBSeconds + this.req.maxDurationSeconds + 60) * 1000);
    if (this.a.first('CHANNEL_BRIDGE') || (await this.deps.live.get(this.call.callId))?.state === 'bridged') {
      return this.connectedCallEnded();
    }
    return this.bFailed();
  }

  // ---- settling -------------------------------------------------------------------------------

  private async settle(end: { result: CallResult; cause: string | null; side: HangupSide; talkSeconds?: number }): Promise<AttemptOutcome> {
    const live = await this.deps.live.get(this.call.callId);
    const endedAt = Date.now();
    const bAnswerAt = live?.bAnswerAt ?? null;
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
      aRingAt: live?.aRingAt ?? null,
      aAnswerAt: live?.aAnswerAt ?? null,
      bRingAt: live?.bRingAt ?? null,
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
    this.log.info({ result: end.result, cause: end.cause, side: end.side, talkSeconds }, 'call ended');
    return this.outcomeOf(cdr, cdr.aAnswerAt !== null, this.bDialled);
  }

  private outcomeOf(cdr: CdrRecord, aReached: boolean, bDialled: boolean): AttemptOutcome {
    return { result: cdr.result, aReached, bDialled, cdr };
  }

  private report(type: PlatformEventType, leg?: Leg, at = Date.now()): void {
    this.deps.report?.({ type, tenantId: this.req.tenantId, callId: this.call.callId, at, ...(leg ? { leg } : {}) });
  }

  // ---- switch helpers -------------------------------------------------------------------------

  private trackRinging(leg: LegWatch, field: 'aRingAt' | 'bRingAt'): void {
    const timeoutMs = (field === 'aRingAt' ? this.req.ringTimeoutASeconds : this.req.ringTimeoutBSeconds) * 1000 + 5000;
    void leg.waitFor('CHANNEL_PROGRESS', timeoutMs).then(async (e) => {
      if (!e) return;
      this.report('call.ringing', field === 'aRingAt' ? 'a' : 'b', eventTime(e));
      await this.deps.live.update(this.call.callId, { [field]: eventTime(e) }).catch((err: unknown) => {
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
