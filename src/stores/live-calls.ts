import type { Redis } from 'ioredis';
import type { CallResult, CallState, CdrRecord, HangupSide } from '../domain/call';
import { redisKeys } from './keys';
import { LuaScript } from './redis';

/**
 * The state of calls in progress, in Redis so any controller instance can follow, cancel or
 * take over a call. MySQL is written once, at the end, through the CDR queue.
 *
 * Claims are the guard against ringing anyone twice: before a leg is dialled its step is
 * claimed with SET NX; a redelivered job finds the claim taken and never dials that leg again.
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
  /** The CDR as computed when the call ended, kept so a redelivered job can finish without the switch. */
  readonly finalCdr: CdrRecord | null;
}

export type LiveCallPatch = Partial<Omit<LiveCall, 'cancelRequested'>>;

export type ClaimStep = `a:${number}` | `b:${number}`;

const TTL_SECONDS = 8 * 24 * 3600;

const UPDATE_LIVE_CALL = LuaScript.load('update-live-call');
const START_ATTEMPT = LuaScript.load('start-attempt');

/** What starting an attempt found: whether this delivery took both legs' claims, and a cancel asked for meanwhile. */
export interface AttemptStart {
  readonly claimed: boolean;
  readonly cancelRequested: boolean;
}

type NumericField = 'attempt' | 'aRingAt' | 'aAnswerAt' | 'bRingAt' | 'bAnswerAt' | 'endedAt';

export class LiveCallStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(callId: string): string {
    return redisKeys(this.prefix).liveCall(callId);
  }

  /**
   * Claims both legs of an attempt (each dialled only by whoever claims it first) and, when this caller took
   * them, records `patch`; one round trip. A claim already taken leaves everything as it was.
   */
  async startAttempt(callId: string, attempt: number, patch: LiveCallPatch): Promise<AttemptStart> {
    const keys = redisKeys(this.prefix);
    const steps: ClaimStep[] = [`a:${attempt}`, `b:${attempt}`];
    const r = await START_ATTEMPT.run(
      this.redis,
      [...steps.map((step) => keys.legClaim(callId, step)), this.key(callId)],
      [TTL_SECONDS, ...fieldList(patch)],
    );
    return { claimed: r !== 0, cancelRequested: r === 2 };
  }

  async update(callId: string, patch: LiveCallPatch): Promise<void> {
    const fields = fieldList(patch);
    if (fields.length === 0) return;
    await UPDATE_LIVE_CALL.run(this.redis, [this.key(callId)], [TTL_SECONDS, ...fields]);
  }

  async requestCancel(callId: string): Promise<void> {
    await UPDATE_LIVE_CALL.run(this.redis, [this.key(callId)], [TTL_SECONDS, 'cancelRequested', '1']);
  }

  async isCancelRequested(callId: string): Promise<boolean> {
    return (await this.redis.hget(this.key(callId), 'cancelRequested')) === '1';
  }

  async get(callId: string): Promise<LiveCall | null> {
    const h = await this.redis.hgetall(this.key(callId));
    if (Object.keys(h).length === 0) return null;
    const num = (k: NumericField): number | null => (h[k] ? Number(h[k]) : null);
    const str = (k: string): string | null => (h[k] ? h[k] : null);
    return {
      state: (str('state') as CallState | null) ?? 'queued',
      attempt: num('attempt') ?? 1,
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
