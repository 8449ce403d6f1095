import type { CallResult, CallState, CdrRecord, HangupSide } from '../domain/call';
import { redisKeys } from './keys';
import { LuaScript, type RedisClient } from './redis';

/** Claims both legs of an attempt, records it and reads the cancel flag, in one round trip; see the script. */
const START_ATTEMPT = LuaScript.load('start-attempt');
/** Places an attempt on a switch (first writer wins) and reads who holds it, in one round trip; see the script. */
const PLACE_ATTEMPT = LuaScript.load('place-attempt');

/**
 * The state of calls in progress, in Redis so any controller instance can follow, cancel or
 * take over a call. MySQL is written once, at the end, through the CDR queue.
 *
 * Claims are the guard against ringing anyone twice: before a leg is dialled its step is
 * claimed with SET NX (both legs of an attempt at once, start-attempt.lua); a redelivered job finds
 * the claim taken and never dials that leg again.
 */
export interface LiveCall {
  readonly state: CallState;
  readonly attempt: number;
  readonly aUuid: string | null;
  readonly bUuid: string | null;
  readonly aRingAt: number | null;
  readonly aAnswerAt: number | null;
  readonly bRingAt: number | null;
  readonly bAnswerAt: number | null;
  readonly endedAt: number | null;
  readonly result: CallResult | null;
  readonly hangupCause: string | null;
  readonly hangupSide: HangupSide | null;
  readonly cancelRequested: boolean;
  /** The switch the current attempt was placed on (null: not placed yet). Every command of the attempt goes there. */
  readonly switchName: string | null;
  /** The CDR as computed when the call ended, kept so a redelivered job can finish without the switch. */
  readonly finalCdr: CdrRecord | null;
}

/** A Redis PUBLISH carried by a live call's write: [channel, message]. */
export type Publication = readonly [channel: string, message: string];

export type LiveCallPatch = Partial<Omit<LiveCall, 'cancelRequested' | 'switchName'>>;

/** The hash field holding the switch of one attempt (first writer wins). */
const placementField = (attempt: number): string => `switch:${attempt}`;

/**
 * started: the attempt is this caller's to dial; settled: an earlier delivery settled it (nothing claimed or
 * written); taken: a leg of this attempt was claimed before (another delivery has it); cancelled: claimed,
 * but the call was cancelled first.
 */
export type AttemptStart = 'started' | 'settled' | 'taken' | 'cancelled';

/** An attempt's start, and the live call as it was just before (null: none). */
export interface AttemptStartReply {
  readonly start: AttemptStart;
  readonly prior: LiveCall | null;
}

const ATTEMPT_STARTS: Record<number, AttemptStart> = { 0: 'taken', 1: 'started', 2: 'cancelled', 3: 'settled' };

const TTL_SECONDS = 8 * 24 * 3600;

/** Writes fields of a live call, renews its TTL, publishes its reports and reads its cancel flag, in one round trip; see the script. */
const UPDATE_LIVE_CALL = LuaScript.load('update-live-call');

type NumericField = 'attempt' | 'aRingAt' | 'aAnswerAt' | 'bRingAt' | 'bAnswerAt' | 'endedAt';

export class LiveCallStore {
  private readonly keys: ReturnType<typeof redisKeys>;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  private key(callId: string): string {
    return this.keys.liveCall(callId);
  }

  /**
   * Claims both legs of `attempt` and records `patch`, atomically, unless an earlier delivery settled
   * the attempt; reads the cancel flag and the live call as it was in the same round trip. Only
   * 'started' lets the caller dial; then only are `publish` (what the start reports) published, in the same round trip.
   */
  async startAttempt(callId: string, attempt: number, patch: LiveCallPatch, publish: readonly Publication[] = []): Promise<AttemptStartReply> {
    const keys = this.keys;
    const fields = fieldList(patch);
    const [code, prior] = (await START_ATTEMPT.run(
      this.redis,
      [this.key(callId), keys.legClaim(callId, `a:${attempt}`), keys.legClaim(callId, `b:${attempt}`)],
      [TTL_SECONDS, attempt, fields.length, ...fields, ...publish.flat()],
    )) as [number, string[]];
    const hash: Record<string, string> = {};
    for (let i = 0; i + 1 < prior.length; i += 2) hash[prior[i] as string] = prior[i + 1] as string;
    return { start: ATTEMPT_STARTS[code] ?? 'taken', prior: liveCallOf(hash) };
  }

  /**
   * Places an attempt on a switch unless it already is: returns the switch that holds it, `switchName`
   * when this caller was first. Two workers running the same attempt thus drive it on one switch.
   */
  async placeAttempt(callId: string, attempt: number, switchName: string): Promise<string> {
    const owner = await PLACE_ATTEMPT.run(this.redis, [this.key(callId)], [placementField(attempt), switchName, TTL_SECONDS]);
    return typeof owner === 'string' && owner !== '' ? owner : switchName;
  }

  /** The switch an attempt was placed on, or null. */
  async placementOf(callId: string, attempt: number): Promise<string | null> {
    return (await this.redis.hget(this.key(callId), placementField(attempt))) || null;
  }

  /**
   * Writes `patch` and publishes `publish` (what the write reports: [channel, message], e.g. progress events)
   * in the same round trip. Resolves with the cancel flag as it stands after the write (true: a cancel was requested).
   */
  async update(callId: string, patch: LiveCallPatch, publish: readonly Publication[] = []): Promise<boolean> {
    const fields = fieldList(patch);
    if (fields.length === 0 && publish.length === 0) return false;
    const reply = await UPDATE_LIVE_CALL.run(this.redis, [this.key(callId)], [TTL_SECONDS, fields.length, ...fields, ...publish.flat()]);
    return reply === '1';
  }

  async requestCancel(callId: string): Promise<void> {
    await UPDATE_LIVE_CALL.run(this.redis, [this.key(callId)], [TTL_SECONDS, 2, 'cancelRequested', '1']);
  }

  async isCancelRequested(callId: string): Promise<boolean> {
    return (await this.redis.hget(this.key(callId), 'cancelRequested')) === '1';
  }

  async get(callId: string): Promise<LiveCall | null> {
    return liveCallOf(await this.redis.hgetall(this.key(callId)));
  }
}

/** A live call from its hash (null: no hash). */
function liveCallOf(h: Record<string, string>): LiveCall | null {
  if (Object.keys(h).length === 0) return null;
  const num = (k: NumericField): number | null => (h[k] ? Number(h[k]) : null);
  const str = (k: string): string | null => (h[k] ? h[k] : null);
  const attempt = num('attempt') ?? 1;
  return {
    state: (str('state') as CallState | null) ?? 'queued',
    attempt,
    switchName: str(placementField(attempt)),
    aUuid: str('aUuid'),
    bUuid: str('bUuid'),
    aRingAt: num('aRingAt'),
    aAnswerAt: num('aAnswerAt'),
    bRingAt: num('bRingAt'),
    bAnswerAt: num('bAnswerAt'),
    endedAt: num('endedAt'),
    result: str('result') as CallResult | null,
    hangupCause: str('hangupCause'),
    hangupSide: str('hangupSide') as HangupSide | null,
    cancelRequested: h.cancelRequested === '1',
    finalCdr: h.finalCdr ? (JSON.parse(h.finalCdr) as CdrRecord) : null,
  };
}

/** field, value, field, value, ... as stored (null as ''; the CDR as JSON). */
function fieldList(patch: LiveCallPatch): string[] {
  const list: string[] = [];
  for (const [k, v] of Object.entries(patch) as Array<[string, unknown]>) {
    if (v === undefined) continue;
    list.push(k, v === null ? '' : typeof v === 'string' || typeof v === 'number' ? String(v) : JSON.stringify(v));
  }
  return list;
}
