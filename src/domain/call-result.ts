import type { CallResult, CdrRecord } from './call';
import { maskPhone } from './phone-number';

/**
 * Hangup causes to business results, in one place (fs-traces README §06–§12).
 *
 * A's leg failing before answer: USER_BUSY (486), NO_ANSWER (originate_timeout), CALL_REJECTED (603).
 * B's leg failing inside bridge: the same causes, plus ALLOTTED_TIMEOUT when leg_timeout expired
 * (B never answered, so it is a no-answer — the same cause after answer means max duration).
 */
const A_FAILURES: Readonly<Record<string, CallResult>> = {
  USER_BUSY: 'a_busy',
  NO_ANSWER: 'a_no_answer',
  NO_USER_RESPONSE: 'a_no_answer',
  ALLOTTED_TIMEOUT: 'a_no_answer',
  CALL_REJECTED: 'a_rejected',
  USER_NOT_REGISTERED: 'failed',
};

const B_FAILURES: Readonly<Record<string, CallResult>> = {
  USER_BUSY: 'b_busy',
  NO_ANSWER: 'b_no_answer',
  NO_USER_RESPONSE: 'b_no_answer',
  ALLOTTED_TIMEOUT: 'b_no_answer',
  CALL_REJECTED: 'b_rejected',
};

/** The cause FreeSWITCH reports for a cancel we asked for. */
export const CANCEL_CAUSE = 'ORIGINATOR_CANCEL';

export function resultOfAFailure(cause: string | undefined): CallResult {
  return (cause && A_FAILURES[cause]) || 'failed';
}

export function resultOfBFailure(cause: string | undefined): CallResult {
  return (cause && B_FAILURES[cause]) || 'failed';
}

/** Results after which the tenant's retry policy may try A again: A was never reached. */
export function isRetryable(result: CallResult): boolean {
  return result === 'a_busy' || result === 'a_no_answer' || result === 'failed';
}

/**
 * The results of a call to X that was refused (never routed): the caller heard "not in service".
 * Every refusal reason is listed here once; its CDR belongs to X's tenant, and it is reported as
 * `call.refused` (caller masked) instead of `call.completed`.
 */
export const REFUSAL_RESULTS: ReadonlySet<CallResult> = new Set<CallResult>(['unbound', 'expired', 'restricted', 'rate_limited', 'blacklisted']);

export function isRefusal(result: CallResult): boolean {
  return REFUSAL_RESULTS.has(result);
}

/**
 * A CDR as its tenant reads it (GET /v1/cdrs): the caller of a refused call is masked, since it
 * is anyone who dialled X, not a number the tenant bound.
 */
export function tenantCdrView(cdr: CdrRecord): CdrRecord {
  return isRefusal(cdr.result) && cdr.a ? { ...cdr, a: maskPhone(cdr.a) } : cdr;
}

/** Parses a BACKGROUND_JOB body of originate: "+OK <uuid>\n" or "-ERR <CAUSE>\n". */
export function parseOriginateReply(body: string): { ok: true } | { ok: false; cause: string } {
  const text = body.trim();
  if (text.startsWith('+OK')) return { ok: true };
  const cause = text.startsWith('-ERR') ? text.slice(4).trim() : text;
  return { ok: false, cause: cause || 'UNKNOWN' };
}
