import type { CallKind, CallResult, CallState, CdrRecord, DisplayMode, HangupSide } from '../domain/call';
import type { TenantContext } from '../domain/tenant-context';

/** A click-to-dial request as the business sends it: raw, not yet validated. */
export interface CreateClickToDialInput {
  readonly requestId: string;
  readonly a: string;
  readonly b: string;
  readonly displayMode?: DisplayMode;
  readonly x?: string;
  readonly ringTimeoutASeconds?: number;
  readonly ringTimeoutBSeconds?: number;
  readonly maxDurationSeconds?: number;
  /** 0: no warning; absent: the platform's default, unless the tenant turned it off for click-to-dial. */
  readonly endWarningSeconds?: number;
  readonly record?: boolean;
  readonly userData?: string;
}

export type LegState = 'idle' | 'ringing' | 'answered' | 'ended';

export interface LegView {
  readonly state: LegState;
  readonly ringAt: string | null;
  readonly answerAt: string | null;
  readonly endAt: string | null;
}

/** What the API shows of a call: its request, where it is now, and its CDR once written. */
export interface CallView {
  readonly id: string;
  readonly requestId: string;
  readonly kind: CallKind;
  readonly state: CallState;
  readonly result: CallResult | null;
  readonly displayMode: DisplayMode;
  readonly x: string;
  readonly a: string;
  readonly b: string;
  readonly userData: string | null;
  readonly createdAt: string;
  readonly legs: { readonly a: LegView; readonly b: LegView };
  readonly hangupSide: HangupSide | null;
  readonly cdr: CdrRecord | null;
}


export interface ClickToDialService {
  /** Validates, applies tenant policy, records the call and queues it. Idempotent by requestId. */
  create(ctx: TenantContext, input: CreateClickToDialInput): Promise<{ call: CallView; created: boolean }>;
  /** NotFoundError when the call does not exist for this tenant. */
  get(ctx: TenantContext, callId: string): Promise<CallView>;
  /** Stops a queued or ringing or connected call. ConflictError `call_already_ended` when it is over. */
  cancel(ctx: TenantContext, callId: string): Promise<CallView>;
}
