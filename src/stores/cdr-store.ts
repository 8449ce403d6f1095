import type { RowDataPacket } from 'mysql2/promise';
import type { CallKind, CallResult, CdrRecord, HangupSide } from '../domain/call';
import { toDate, toMs, toMsStrict, type Pool } from './mysql';
import { checkedPageLimit, newestFirstPage, SqlConditions } from './keyset-cursor';

export interface CdrListQuery {
  /** started_at >= from (epoch ms) */
  readonly from?: number;
  /** started_at < to (epoch ms) */
  readonly to?: number;
  readonly result?: CallResult;
  /** exact match */
  readonly userData?: string;
  /** 1..500, default 100 */
  readonly limit?: number;
  /** nextCursor of the previous page */
  readonly cursor?: string | null;
}

export interface CdrPage {
  readonly items: CdrRecord[];
  readonly nextCursor: string | null;
}

export const MAX_CDR_PAGE = 500;

export function rowToCdr(r: RowDataPacket): CdrRecord {
  return {
    callId: String(r.call_id),
    tenantId: String(r.tenant_id),
    kind: r.kind as CallKind,
    bindingId: r.binding_id === null ? null : String(r.binding_id),
    x: String(r.x),
    a: String(r.a),
    b: String(r.b),
    startedAt: toMsStrict(r.started_at),
    aRingAt: toMs(r.a_ring_at),
    aAnswerAt: toMs(r.a_answer_at),
    bRingAt: toMs(r.b_ring_at),
    bAnswerAt: toMs(r.b_answer_at),
    endedAt: toMsStrict(r.ended_at),
    talkSeconds: Number(r.talk_seconds),
    hangupCause: r.hangup_cause === null ? null : String(r.hangup_cause),
    hangupSide: r.hangup_side as HangupSide,
    result: r.result as CallResult,
    recordingRef: r.recording_ref === null ? null : String(r.recording_ref),
    userData: r.user_data === null ? null : String(r.user_data),
  };
}

/** Reads of call detail records; always within one tenant. Writes go through persistCallOutcome. */
export class CdrStore {
  constructor(private readonly pool: Pool) {}

  /** Newest first (started_at DESC, id DESC), keyset-paginated. */
  async list(tenantId: string, q: CdrListQuery = {}): Promise<CdrPage> {
    const where = new SqlConditions('tenant_id = ?', tenantId)
      .andIf(q.from, 'started_at >= ?', toDate)
      .andIf(q.to, 'started_at < ?', toDate)
      .andIf(q.result, 'result = ?')
      .andIf(q.userData, 'user_data = ?');
    return newestFirstPage(this.pool, {
      select: 'SELECT * FROM cdrs',
      where,
      timeColumn: 'started_at',
      idColumn: 'id',
      ids: 'numeric',
      limit: checkedPageLimit(q.limit, 100, MAX_CDR_PAGE),
      cursor: q.cursor ?? undefined,
      toItem: rowToCdr,
    });
  }

  /** The CDR of a call of this tenant, or null (also null for another tenant's call). */
  async get(tenantId: string, callId: string): Promise<CdrRecord | null> {
    const [rows] = await this.pool.execute<RowDataPacket[]>('SELECT * FROM cdrs WHERE call_id = ? AND tenant_id = ?', [
      callId,
      tenantId,
    ]);
    return rows[0] ? rowToCdr(rows[0]) : null;
  }
}
