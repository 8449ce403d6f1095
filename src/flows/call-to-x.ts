import type { CallKind, CallResult, CdrRecord, HangupSide } from '../domain/call';
import type { ReportEvent } from '../events/platform-events';
import { formatChannelVars } from '../domain/caller-id';
import { resultOfBFailure } from '../domain/call-result';
import { deterministicUuid } from '../domain/ids';
import { parsePhoneNumber } from '../domain/phone-number';
import { EslError } from '../esl/errors';
import type { EslEvent } from '../esl/event';
import type { OutboundSession } from '../esl/outbound-server';
import { endWarningCommand } from './switch';
import type { Logger } from '../logger';
import type { CallOutcome } from '../stores/call-outcome';
import type { ExtensionDecision, ExtensionPrompt, RouteDecision, RouteIndex, RouteTarget } from '../stores/route-index';

/**
 * A call to a privacy number X (SPEC §5). The dialplan hands it to the controller's outbound
 * socket; the route is decided from Redis by (caller, X), never by waiting on MySQL.
 *  - bound: the other party is called with X as every caller and callee ID (trace 13e: setting
 *    only the number leaks the caller's real number as display name, and the called party's
 *    number back to the caller in 180/200), with ringback, announcement, recording and a
 *    maximum duration enforced by the switch;
 *  - not bound, past expiry, or restricted: the caller hears a "not in service" prompt as early
 *    media and gets UNALLOCATED_NUMBER (trace 13c: never answered, so never billed); its number
 *    is sent nowhere;
 *  - an X that takes AXE extensions, called by someone without a route of their own on it: the
 *    caller hears the extension prompt as early media and keys the extension (RFC 2833 or SIP INFO,
 *    whatever the switch takes), with a digit timeout and one retry; the binding holding it is
 *    routed like any other (B sees only X); a wrong or missing extension is refused like an unbound
 *    caller (result wrong_extension, X's tenant);
 *  - the route could not be decided within routingTimeoutMs (Redis did not answer): the caller
 *    hears a "temporarily unavailable" prompt as early media and gets NORMAL_TEMPORARY_FAILURE
 *    (SIP 503); its CDR says `failed`.
 * The caller hears ringing (180) from the start, while the route is looked up.
 */
/**
 * The events of the caller's channel a call to X reads (the bridge, the hangup, awaited apps' completions);
 * the outbound socket takes back the rest of `myevents`, about half of a routed call's events and bytes (trace 13a).
 */
export const CALL_TO_X_EVENTS: readonly string[] = ['CHANNEL_BRIDGE', 'CHANNEL_HANGUP', 'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_EXECUTE_COMPLETE'];

/** Why abuse control refuses a caller a routed call to X. */
export type CallerRefusal = 'rate_limited' | 'blacklisted';

/** The route could not be decided in time: a store did not answer. */
interface Unavailable {
  readonly refused: 'failed';
  readonly unavailable: true;
  readonly binding?: undefined;
}

/** A keyed extension reaches nobody (none keyed, none held, or held by a binding that only lets B call): X's tenant's refused call. */
interface ExtensionRefusal {
  readonly refused: 'wrong_extension' | 'restricted';
  readonly binding?: RouteTarget;
  readonly xTenantId: string;
}

/** The index's decision once any extension has been keyed. */
type Looked = Exclude<RouteDecision, { readonly extension: ExtensionPrompt }> | ExtensionRefusal;

/** The routing decision, with abuse control's refusal of a routed caller. */
type Decision = Looked | { readonly refused: CallerRefusal; readonly binding: RouteTarget } | Unavailable;

/** How a caller keys an AXE extension on X. */
export interface ExtensionKeying {
  /** What the caller hears before keying (a switch argument from the configuration: a tone or an operator's file, never tenant text). */
  readonly prompt: string;
  /** How long the caller has to start keying after the prompt, ms; the prompt is played once more when nothing (or too little) was keyed. */
  readonly timeoutMs: number;
  /** How long the caller may pause between two digits, ms. */
  readonly digitTimeoutMs: number;
}

/** The prompt and the wait, played at most this many times (one retry). */
const EXTENSION_TRIES = 2;
/** The channel variable play_and_get_digits leaves the keyed digits in. */
const EXTENSION_VARIABLE = 'ng_extension';

export interface CallToXDeps {
  readonly routes: Pick<RouteIndex, 'lookup' | 'lookupExtension'>;
  readonly extensions: ExtensionKeying;
  readonly dialString: (number: string) => string;
  readonly ringbackTone: string;
  readonly notInServicePrompt: string;
  /** What a caller hears when the route could not be decided within routingTimeoutMs. */
  readonly unavailablePrompt: string;
  /** The longest a routing decision (index lookup and abuse check) may take; past it the caller is told "temporarily unavailable". */
  readonly routingTimeoutMs: number;
  readonly bFailedPrompt: string;
  /** The `playback` argument of a media catalogue entry by id; null when the catalogue has no such entry. */
  readonly announcementOf: (mediaId: string) => Promise<string | null>;
  readonly ringTimeoutSeconds: number;
  readonly maxDurationSeconds: number;
  /** CALL_END_WARNING_SECONDS: the warning before the maximum duration when the binding sets none (0: none). */
  readonly endWarningSeconds?: number;
  /** CALL_END_WARNING_TONE: what both parties hear then. */
  readonly endWarningTone?: string;
  readonly recordingPath: (callId: string) => string;
  readonly finished: (outcome: CallOutcome) => Promise<void>;
  /** Progress for webhooks; never awaited. */
  readonly report?: ReportEvent;
  /** Milliseconds from the switch's connection to the bridge command being sent (the routing decision). */
  readonly routed?: (ms: number) => void;
  /** Abuse control: a refusal ends a routed call like an unbound one, with that result. */
  readonly admitCaller?: (tenantId: string, caller: string, target: string, now: number) => Promise<CallerRefusal | null>;
  /**
   * Graceful shutdown: lets go of a call that is still live (see CallToXOptions). Resolves true once
   * the switch keeps the call's figures and a durable record says who settles it; false when it could
   * not, or when the call turned out to be ending (hungUp() says whether the channel has hung up, as
   * far as its events tell so far): the flow then writes the CDR itself.
   */
  readonly handOver?: (session: OutboundSession, call: HandedOverCallToX, hungUp: () => boolean) => Promise<boolean>;
  /** What lets the call outlive this controller being killed (see DurableCallToX). */
  readonly durable?: DurableCallToX;
  readonly logger: Logger;
}

/**
 * A call to X outliving the controller whose socket carries it (killed, crashed): none of these is
 * awaited, so none adds a round trip to the call's path.
 */
export interface DurableCallToX {
  /** At the call's first moment: the switch keeps the call's figures when it ends, and ends a bridged call with its bridge. */
  keepFigures(session: OutboundSession): void;
  /** Once the call is decided: the record another controller settles it from, should this one die before its CDR is queued. */
  track(session: OutboundSession, call: HandedOverCallToX): void;
  /** The call's CDR is queued, or the call handed over: its record goes (and the switch's figures, when nobody needs them any more). */
  untrack(session: OutboundSession, callId: string, figuresToo: boolean): void;
}

/**
 * A call to X that this controller let go of while it was still live (the drain deadline of a
 * graceful shutdown), or that it carries and could die with (DurableCallToX.track): what the flow knew
 * once the call was decided, so that another controller can write its one CDR from the switch's own
 * figures (talk seconds, hangup cause, end time, bridge time) once the call is over.
 */
export interface HandedOverCallToX extends Pick<CdrRecord, 'callId' | 'tenantId' | 'kind' | 'bindingId' | 'x' | 'a' | 'b' | 'startedAt'> {
  /** The caller's channel on the switch (the outbound socket session). */
  readonly uuid: string;
  /** The fleet switch carrying it (absent: the controller's only switch). */
  readonly switchName?: string;
  /** The refusal, when the call was refused (the switch ends it after the prompt); null when it was routed. */
  readonly refused: CallResult | null;
  /** When the called party answered, if it had. */
  readonly bAnswerAt: number | null;
  /** The route's talk-time cap (already scheduled on the switch once bridged). */
  readonly maxDurationSeconds: number;
  /** Where the switch records the call, if the binding records (the CDR names it only when connected). */
  readonly recordingRef: string | null;
  readonly userData: string | null;
  readonly handedOverAt: number;
  /** The call cannot last longer than this from handedOverAt: past it, the settling controller ends it. */
  readonly lastsAtMostMs: number;
}

export interface CallToXOptions {
  /**
   * Resolves when this controller must let go of the call (the drain deadline of a graceful shutdown).
   * A call still live then is handed over through deps.handOver and handleCallToX resolves null:
   * no CDR is written here, nothing is sent to the channel, and the call goes on.
   */
  readonly handover?: Promise<unknown>;
}

const END_WAIT_MS = 10_000;

/** The call id of the call to X the switch handed over on this outbound socket session. */
export function callToXId(sessionUuid: string): string {
  return deterministicUuid('call-to-x', sessionUuid);
}

/** Handles one call to X; resolves with its CDR (queued through deps.finished), or null when it was handed over. */
export async function handleCallToX(deps: CallToXDeps, session: OutboundSession, opts: CallToXOptions = {}): Promise<CdrRecord | null> {
  const startedAt = Date.now();
  const callId = callToXId(session.uuid);
  const x = digitsOf(session.channelData.header('Caller-Destination-Number'));
  const caller = digitsOf(session.channelData.header('Caller-Caller-ID-Number'));
  const log = deps.logger.child({ callId, x });
  const seen: EslEvent[] = [];
  session.on('event', (e: EslEvent) => seen.push(e));
  const hungUp = new Promise<EslEvent | undefined>((resolve) => {
    session.once('hangup', resolve);
    session.once('end', () => resolve(undefined));
  });

  // Graceful shutdown: once the decision is made, a live call can be handed over (see CallToXOptions).
  let decided: Decision | undefined;
  let onDecided = (): void => undefined;
  const decidedOrFailed = new Promise<void>((resolve) => (onDecided = resolve));
  let finishing = false;
  // Set by the CHANNEL_BRIDGE listener (a callback TypeScript does not follow): declared so its reads are not narrowed to null.
  let bAnswerAt = null as number | null;
  let handingOver: Promise<boolean> | undefined;
  // What another controller needs to settle the call from the switch's figures.
  const recordOf = (decision: Decision): HandedOverCallToX => {
    const bound = 'route' in decision ? decision.route : decision.binding;
    return {
      uuid: session.uuid,
      callId,
      tenantId: bound?.tenantId ?? ('xTenantId' in decision ? decision.xTenantId : ''),
      kind: bound?.kind ?? ('xTenantId' in decision ? 'axe' : 'axb'),
      bindingId: bound?.bindingId ?? null,
      x: x ?? '',
      a: caller ?? '',
      b: 'route' in decision ? decision.route.target : '',
      startedAt,
      refused: 'refused' in decision ? decision.refused : null,
      bAnswerAt,
      maxDurationSeconds: ('route' in decision ? decision.route.maxDurationSeconds : null) ?? deps.maxDurationSeconds,
      recordingRef: 'route' in decision && decision.route.record ? deps.recordingPath(callId) : null,
      userData: bound?.userData ?? null,
      handedOverAt: Date.now(),
      lastsAtMostMs: 'route' in decision ? (deps.ringTimeoutSeconds + (decision.route.maxDurationSeconds ?? deps.maxDurationSeconds)) * 1000 + 60_000 : 120_000,
    };
  };
  const handOver = async (): Promise<boolean> => {
    await decidedOrFailed;
    const decision = decided;
    const hungUpNow = (): boolean => seen.some((e) => e.name === 'CHANNEL_HANGUP' || e.name === 'CHANNEL_HANGUP_COMPLETE');
    // A call that is ending is finished here: its HANGUP_COMPLETE is on its way on this socket.
    if (finishing || !decision || !deps.handOver || hungUpNow()) return false;
    const call = recordOf(decision);
    let handed = false;
    try {
      handed = await deps.handOver(session, call, hungUpNow);
    } catch (err) {
      log.error({ err }, 'could not hand the call over; keeping it');
    }
    if (!handed) return false;
    deps.durable?.untrack(session, callId, false);
    log.warn({ result: call.refused ?? (call.bAnswerAt !== null ? 'connected' : 'not yet connected') }, 'call to X handed over: another controller writes its record from the switch');
    await session.close().catch(() => undefined);
    return true;
  };
  void opts.handover?.then(() => {
    if (!finishing) handingOver ??= handOver();
  });

  // The caller hears ringing while the route is looked up, and the ringback for the bridge is set:
  // not awaited (the switch runs an outbound socket's api commands as it reads them, before any app
  // sent after them), so after the decision only the bridge is left to send. As api commands rather
  // than the ring_ready and set apps, nothing runs on the channel and no event reports them.
  deps.durable?.keepFigures(session);
  void session.api(`uuid_ring_ready ${session.uuid}`).catch((err: unknown) => log.debug({ err }, 'could not signal ringing'));
  void session.api(`uuid_setvar ${session.uuid} ringback ${deps.ringbackTone}`).catch((err: unknown) => log.debug({ err }, 'could not set ringback'));
  // Abuse control's word on a routed caller (a route is only looked up with a caller).
  const admitted = async (looked: Looked): Promise<Decision> => {
    const refusal = 'route' in looked && caller && deps.admitCaller ? await deps.admitCaller(looked.route.tenantId, caller, looked.route.target, startedAt) : null;
    return 'route' in looked && refusal ? { refused: refusal, binding: looked.route } : looked;
  };
  const notDecidedInTime = (err: unknown): Unavailable => {
    log.warn({ err: errorSummary(err), boundMs: deps.routingTimeoutMs }, 'route not decided in time: caller told the service is temporarily unavailable');
    return UNAVAILABLE;
  };
  let decision: Decision;
  try {
    const first = await decideWithin(deps.routingTimeoutMs, async () => {
      const looked = caller && x ? checkedRoute(await deps.routes.lookup(x, caller, startedAt)) : ({ refused: 'unbound' } as const);
      return 'extension' in looked ? looked : admitted(looked);
    }).catch(notDecidedInTime);
    if ('extension' in first && x !== null) {
      // An AXE X: the caller keys the extension (not bounded by the routing timeout: the caller takes its time), then it is looked up.
      const xTenantId = first.extension.tenantId;
      const keyed = await keyExtension(session, deps.extensions, first.extension.extensionLength).catch((err: unknown) => {
        log.info({ err: errorSummary(err) }, 'no extension keyed (the caller left?)');
        return null;
      });
      decision =
        keyed === null
          ? { refused: 'wrong_extension', xTenantId }
          : await decideWithin(deps.routingTimeoutMs, async () =>
              admitted(checkedExtension(await deps.routes.lookupExtension(x, keyed, Date.now()), xTenantId)),
            ).catch(notDecidedInTime);
    } else {
      decision = 'extension' in first ? { refused: 'unbound' } : first;
    }
    decided = decision;
    // A store that did not answer in time holds no record either: such a call is this controller's alone.
    if (!('unavailable' in decision)) deps.durable?.track(session, recordOf(decision));
  } finally {
    onDecided();
  }
  let result: CallResult;
  let route: RouteTarget | undefined;
  try {
    if ('unavailable' in decision) {
      result = 'failed';
      await session.execute('pre_answer', undefined, { awaitCompletion: true, timeoutMs: 10_000 });
      await session.execute('playback', deps.unavailablePrompt, { awaitCompletion: true, timeoutMs: 60_000 });
      await session.execute('hangup', 'NORMAL_TEMPORARY_FAILURE');
    } else if ('refused' in decision) {
      route = decision.binding;
      result = decision.refused;
      log.info({ caller, result }, 'call to X refused');
      await refuse(deps, session);
    } else {
      const routed = decision.route;
      route = routed;
      // A route is only looked up with a valid X (see above).
      if (x === null) throw new Error('a routed call to X has no valid X');
      const maxDuration = route.maxDurationSeconds ?? deps.maxDurationSeconds;
      const announcement = route.announcement ? await deps.announcementOf(route.announcement) : null;
      if (route.announcement && !announcement) log.warn({ mediaId: route.announcement }, 'announcement is not in the media catalogue; connecting without it');
      if (announcement) {
        await session.execute('pre_answer', undefined, { awaitCompletion: true, timeoutMs: 10_000 });
        await session.execute('playback', announcement, { awaitCompletion: true, timeoutMs: 60_000 });
      }
      const vars = formatChannelVars({
        origination_caller_id_number: x,
        origination_caller_id_name: x,
        origination_callee_id_number: x,
        origination_callee_id_name: x,
        originate_timeout: String(deps.ringTimeoutSeconds),
        ng_call_id: callId,
      });
      const onBridge = (e: EslEvent): void => {
        if (e.name !== 'CHANNEL_BRIDGE') return;
        bAnswerAt = Date.now();
        const bridged = { tenantId: routed.tenantId, callId, at: bAnswerAt, bindingId: routed.bindingId };
        deps.report?.({ type: 'call.answered', leg: 'b', ...bridged });
        deps.report?.({ type: 'call.bridged', ...bridged });
        void session.api(`sched_hangup +${maxDuration} ${session.uuid} ALLOTTED_TIMEOUT`).catch(() => undefined);
        const warning = endWarningCommand(session.uuid, maxDuration, routed.endWarningSeconds ?? deps.endWarningSeconds ?? 0, deps.endWarningTone);
        if (warning) void session.api(warning).catch(() => undefined);
        if (routed.record) void session.execute('record_session', deps.recordingPath(callId)).catch(() => undefined);
      };
      session.on('event', onBridge);
      const bridging = session.execute('bridge', `${vars}${deps.dialString(route.target)}`, {
        awaitCompletion: true,
        timeoutMs: (deps.ringTimeoutSeconds + maxDuration + 300) * 1000,
      });
      deps.routed?.(performance.now() - session.acceptedAt);
      // After the bridge is on its way: the line is not part of the caller's wait.
      log.info({ caller, target: route.target, kind: route.kind }, 'call to X routed');
      const done = await bridging;
      if (bAnswerAt !== null) {
        result = 'connected';
      } else {
        const cause = done?.variable('originate_disposition') ?? done?.variable('last_bridge_hangup_cause');
        result = resultOfBFailure(cause);
        log.info({ cause, result }, 'called party not reached');
        if (!seen.some((e) => e.name === 'CHANNEL_HANGUP')) {
          await session.execute('playback', deps.bFailedPrompt, { awaitCompletion: true, timeoutMs: 30_000 }).catch(() => undefined);
        }
      }
      if (!seen.some((e) => e.name === 'CHANNEL_HANGUP')) await session.execute('hangup', 'NORMAL_CLEARING').catch(() => undefined);
    }
  } catch (err) {
    // The caller hung up mid-way (commands to a gone channel fail): the call is over. Such a
    // failure's stack says nothing; anything else keeps its stack.
    log.info({ err: err instanceof EslError ? errorSummary(err) : err }, 'caller left');
    result = bAnswerAt !== null ? 'connected' : 'refused' in decision ? decision.refused : 'failed';
  }

  let endWait: NodeJS.Timeout | undefined;
  const end = await Promise.race([hungUp, new Promise<undefined>((r) => (endWait = setTimeout(() => r(undefined), END_WAIT_MS)))]);
  // Not left running for its 10 s after the hangup came: at 1,000 calls/s that is 10,000 live timers and their closures.
  clearTimeout(endWait);
  if (handingOver && (await handingOver)) return null;
  finishing = true;
  await session.close().catch(() => undefined);
  const endedAt = Date.now();
  const xTenantId = 'xTenantId' in decision ? decision.xTenantId : null;
  const kind: CallKind = route?.kind ?? (xTenantId !== null ? 'axe' : 'axb');
  const billsec = end?.variable('billsec');
  const firstHangup = seen.find((e) => e.name === 'CHANNEL_HANGUP');
  const cause = firstHangup?.header('Hangup-Cause') ?? end?.header('Hangup-Cause') ?? null;
  const cdr: CdrRecord = {
    callId,
    tenantId: route?.tenantId ?? xTenantId ?? '',
    kind,
    bindingId: route?.bindingId ?? null,
    x: x ?? '',
    a: caller ?? '',
    b: route && 'route' in decision ? route.target : '',
    startedAt,
    aRingAt: null,
    aAnswerAt: bAnswerAt,
    bRingAt: null,
    bAnswerAt,
    endedAt,
    talkSeconds: talkSecondsOf(result, billsec, bAnswerAt, endedAt),
    hangupCause: cause,
    hangupSide: 'unavailable' in decision ? 'platform' : sideOf(end, cause),
    result,
    recordingRef: result === 'connected' && route?.record ? deps.recordingPath(callId) : null,
    userData: route?.userData ?? null,
  };
  await deps.finished({ cdr });
  deps.durable?.untrack(session, callId, true);
  log.info({ result, cause, talkSeconds: cdr.talkSeconds }, 'call to X ended');
  return cdr;
}

/**
 * Every refusal of a call to X ends here, whatever its reason: the caller hears "not in service" as
 * early media and gets UNALLOCATED_NUMBER (trace 13c: never answered, never billed). The reason is
 * the CDR's result; a refusal result (REFUSAL_RESULTS, domain/call-result) makes the CDR X's
 * tenant's (the CDR writer's refusalAttribution, when no binding named the tenant) and its end a
 * `call.refused` event with the caller masked (completionEvents).
 */
async function refuse(deps: Pick<CallToXDeps, 'notInServicePrompt'>, session: OutboundSession): Promise<void> {
  await session.execute('pre_answer', undefined, { awaitCompletion: true, timeoutMs: 10_000 });
  await session.execute('playback', deps.notInServicePrompt, { awaitCompletion: true, timeoutMs: 60_000 });
  await session.execute('hangup', 'UNALLOCATED_NUMBER');
}

const UNAVAILABLE: Unavailable = { refused: 'failed', unavailable: true };

/** Runs a routing decision; rejects when it fails or takes longer than boundMs. */
async function decideWithin<T>(boundMs: number, decide: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no routing decision within ${boundMs} ms`)), boundMs);
  });
  try {
    return await Promise.race([decide(), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** An error's name and message only: a store's error may carry the command, and a command may hold a number. */
function errorSummary(err: unknown): { name: string; message: string } {
  return err instanceof Error ? { name: err.name, message: err.message.slice(0, 200) } : { name: 'unknown', message: String(err).slice(0, 200) };
}

/** A connected call's talk seconds: the switch's billsec when its end event had it, else counted from the bridge. */
function talkSecondsOf(result: CallResult, billsec: string | undefined, bAnswerAt: number | null, endedAt: number): number {
  if (result !== 'connected') return 0;
  if (billsec !== undefined) return Number(billsec);
  // A call is only ever 'connected' once its CHANNEL_BRIDGE set bAnswerAt.
  if (bAnswerAt === null) throw new Error('a connected call to X has no bridge time');
  return Math.round((endedAt - bAnswerAt) / 1000);
}

/**
 * The index lives in Redis, which is not where trust lives: a route whose number to dial is not a
 * real number is no route (nothing of it reaches a dial string).
 */
function checkedRoute(decision: RouteDecision): RouteDecision {
  if (!('route' in decision)) return decision;
  const target = digitsOf(decision.route.target);
  return target === decision.route.target ? decision : { refused: 'unbound' };
}

/** checkedRoute() for a keyed extension; a refusal belongs to X's tenant. */
function checkedExtension(decision: ExtensionDecision, xTenantId: string): Looked {
  if ('refused' in decision) return { ...decision, xTenantId };
  const target = digitsOf(decision.route.target);
  return target === decision.route.target ? decision : { refused: 'wrong_extension', xTenantId };
}

/**
 * Plays the extension prompt as early media and collects exactly `length` digits (the switch takes
 * RFC 2833 events and SIP INFO dtmf-relay alike), with one retry; the digits, or null when none (or
 * too few) were keyed in time.
 */
async function keyExtension(session: OutboundSession, keying: ExtensionKeying, length: number): Promise<string | null> {
  await session.execute('pre_answer', undefined, { awaitCompletion: true, timeoutMs: 10_000 });
  const args = [length, length, EXTENSION_TRIES, keying.timeoutMs, '#', keying.prompt, 'silence_stream://250', EXTENSION_VARIABLE, `\\d{${length}}`, keying.digitTimeoutMs];
  const done = await session.execute('play_and_get_digits', args.join(' '), {
    awaitCompletion: true,
    // The prompt's own length is the operator's; a minute on top of the waits covers any sane one.
    timeoutMs: EXTENSION_TRIES * (keying.timeoutMs + length * keying.digitTimeoutMs + 30_000),
  });
  const keyed = done?.variable(EXTENSION_VARIABLE);
  return keyed !== undefined && new RegExp(`^\\d{${length}}$`).test(keyed) ? keyed : null;
}

function digitsOf(value: string | undefined): string | null {
  if (!value) return null;
  try {
    return parsePhoneNumber(value, 'number').digits;
  } catch {
    return null;
  }
}

function sideOf(end: EslEvent | undefined, cause: string | null): HangupSide {
  return callToXHangupSide(cause, end?.variable('sip_hangup_disposition'));
}

/** Who ended a call to X, from the caller's channel: its hangup cause and sip_hangup_disposition. */
export function callToXHangupSide(cause: string | null, disposition: string | null | undefined): HangupSide {
  if (cause === 'ALLOTTED_TIMEOUT' || cause === 'UNALLOCATED_NUMBER') return 'platform';
  if (!disposition) return 'unknown';
  return disposition.startsWith('recv_') ? 'a' : 'b';
}
