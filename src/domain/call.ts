/** What B sees: X (fixed), or A's real number (passthrough, where the operator allows it). */
export type DisplayMode = 'fixed' | 'passthrough';

export type CallKind = 'click_to_dial' | 'axb' | 'xb' | 'callback' | 'axe';

/** Final outcome of a call, as the business sees it (SPEC §4, §6). */
/** Every result a call can end with, for validation and listing; CallResult is derived from it. */
export const CALL_RESULTS = [
  'connected',
  'a_busy',
  'a_no_answer',
  'a_rejected',
  'b_busy',
  'b_no_answer',
  'b_rejected',
  'cancelled',
  'failed',
  'unbound',
  /** A call to X from a caller whose binding on X had expired (the binding id is in its CDR). */
  'expired',
  'restricted',
  /** A call to X refused because its caller was over the calls-per-minute limit (abuse control). */
  'rate_limited',
  /** A call to X refused because its caller is on the tenant's or the platform's blacklist. */
  'blacklisted',
  /** A call to an AXE X whose caller keyed no extension, or one no active binding holds. */
  'wrong_extension',
] as const;

export type CallResult = (typeof CALL_RESULTS)[number];

/** Where a call is now. Moves forward only. */
export type CallState =
  | 'queued'
  | 'calling_a'
  | 'a_answered'
  | 'calling_b'
  | 'bridged'
  | 'completed';

export type HangupSide = 'a' | 'b' | 'platform' | 'unknown';

/** What a business asks for when it requests a click-to-dial call. Numbers already normalized. */
export interface ClickToDialRequest {
  readonly tenantId: string;
  readonly requestId: string;
  readonly a: string;
  readonly b: string;
  readonly x: string;
  readonly displayMode: DisplayMode;
  readonly ringTimeoutASeconds: number;
  readonly ringTimeoutBSeconds: number;
  readonly maxDurationSeconds: number;
  /** Seconds before the maximum duration ends the call that both parties hear a warning tone; absent or 0: none. */
  readonly endWarningSeconds?: number;
  readonly record: boolean;
  readonly userData: string | null;
}

/** One call detail record (SPEC §6). Times are epoch milliseconds; null when that moment never happened. */
export interface CdrRecord {
  readonly callId: string;
  readonly tenantId: string;
  readonly kind: CallKind;
  readonly bindingId: string | null;
  readonly x: string;
  readonly a: string;
  readonly b: string;
  readonly startedAt: number;
  readonly aRingAt: number | null;
  readonly aAnswerAt: number | null;
  readonly bRingAt: number | null;
  readonly bAnswerAt: number | null;
  readonly endedAt: number;
  readonly talkSeconds: number;
  readonly hangupCause: string | null;
  readonly hangupSide: HangupSide;
  readonly result: CallResult;
  readonly recordingRef: string | null;
  readonly userData: string | null;
}
