import type { PoolConnection, ResultSetHeader } from 'mysql2/promise';
import type { CdrRecord } from '../domain/call';
import { writeCallbackBindings } from './binding-store';
import { toDate, type Pool } from './mysql';
import { inTransaction } from './transaction';

/** The binding a click-to-dial call leaves behind so B can reach A again through X (SPEC §3). */
export interface CallbackBindingInput {
  readonly id: string;
  readonly tenantId: string;
  readonly x: string;
  readonly a: string;
  readonly b: string;
  /** epoch ms */
  readonly expiresAt: number;
  readonly callId: string;
  readonly userData: string | null;
}

/** Everything written when a call ends: its CDR, and for click-to-dial its callback binding. */
export interface CallOutcome {
  readonly cdr: CdrRecord;
  readonly callbackBinding?: CallbackBindingInput;
}

const CDR_COLUMNS = [
  'call_id', 'tenant_id', 'kind', 'binding_id', 'x', 'a', 'b', 'started_at', 'a_ring_at', 'a_answer_at',
  'b_ring_at', 'b_answer_at', 'ended_at', 'talk_seconds', 'hangup_cause', 'hangup_side', 'result',
  'recording_ref', 'user_data', 'created_at',
] as const;

function cdrValues(c: CdrRecord, now: Date): unknown[] {
  return [
    c.callId, c.tenantId, c.kind, c.bindingId, c.x, c.a, c.b, toDate(c.startedAt), toDate(c.aRingAt),
    toDate(c.aAnswerAt), toDate(c.bRingAt), toDate(c.bAnswerAt), toDate(c.endedAt), c.talkSeconds,
    c.hangupCause, c.hangupSide, c.result, c.recordingRef, c.userData, now,
  ];
}

/**
 * Whether a multi-row INSERT … ON DUPLICATE KEY UPDATE met no existing row, from the server's info line
 * ("Records: 250  Duplicates: 0  Warnings: 0"); a single-row INSERT reports none, and is then not known to be new.
 */
function noDuplicates(res: ResultSetHeader): boolean {
  return /\bDuplicates: 0\b/.test(res.info);
}

async function writeBatch(conn: PoolConnection, outcomes: readonly CallOutcome[]): Promise<void> {
  const now = new Date();
  // 1. CDRs: one row per call. A redelivered CDR hits uq_cdrs_call and changes nothing.
  // `VALUES ?` with one array per row: the driver writes the rows without scanning thousands of placeholders.
  const [inserted] = await conn.query<ResultSetHeader>(
    `INSERT INTO cdrs (${CDR_COLUMNS.join(', ')}) VALUES ? ON DUPLICATE KEY UPDATE call_id = call_id`,
    [outcomes.map((o) => cdrValues(o.cdr, now))],
  );
  // 2. The calls rows: only API-originated (click-to-dial) calls have one; first completion wins. The values are the
  // CDR rows' (just written, or written with the same call's first completion): the statement carries only the ids.
  const apiCallIds = outcomes.filter((o) => o.cdr.kind === 'click_to_dial').map((o) => o.cdr.callId);
  if (apiCallIds.length > 0) {
    await conn.query(
      `UPDATE calls c JOIN cdrs d ON d.call_id = c.id AND d.tenant_id = c.tenant_id
          SET c.state = 'completed', c.result = d.result, c.hangup_cause = d.hangup_cause, c.hangup_side = d.hangup_side,
              c.completed_at = d.ended_at, c.updated_at = ?
        WHERE c.id IN (?) AND c.completed_at IS NULL`,
      [now, apiCallIds],
    );
  }
  // 3. Callback bindings, through the same invariant tables as every other binding.
  const bindings = outcomes.flatMap((o) => (o.callbackBinding ? [o.callbackBinding] : []));
  // A callback binding is written only here, with its CDR: when no CDR of the batch was there already, none of its bindings is.
  if (bindings.length > 0) await writeCallbackBindings(conn, bindings, now.getTime(), { allNew: noDuplicates(inserted) });
}

/**
 * Writes call outcomes in ONE transaction: the CDRs (one per call id), the `calls` rows
 * marked completed (when they exist), and the callback bindings. Idempotent as a whole:
 * writing the same outcomes again leaves the same rows.
 */
export async function persistCallOutcomes(pool: Pool, outcomes: readonly CallOutcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  // Same lock order in every transaction (and one entry per call) keeps concurrent batches from deadlocking.
  const byCall = new Map<string, CallOutcome>();
  for (const o of outcomes) if (!byCall.has(o.cdr.callId)) byCall.set(o.cdr.callId, o);
  const sorted = [...byCall.values()].sort((x, y) => (x.cdr.callId < y.cdr.callId ? -1 : x.cdr.callId > y.cdr.callId ? 1 : 0));
  // READ COMMITTED: the callback bindings' reads of (X, B) pairs must lock no gaps, or concurrent batches inserting
  // customers' numbers scattered over one X's range deadlock on each other (see writeCallbackBindings).
  await inTransaction(pool, (conn) => writeBatch(conn, sorted), { isolation: 'read committed' });
}

/** One call's outcome; see persistCallOutcomes. */
export function persistCallOutcome(pool: Pool, outcome: CallOutcome): Promise<void> {
  return persistCallOutcomes(pool, [outcome]);
}
