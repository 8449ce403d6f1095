import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { CallKind, CallResult, CallState, DisplayMode, HangupSide } from '../domain/call';
import { GroupedReads } from './grouped-reads';
import { isDuplicateKey, toDate, toMs, toMsStrict, type Pool } from './mysql';

/** A row of `calls`: the request as accepted, and where the call got to. Times are epoch ms. */
export interface CallRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly requestId: string;
  readonly kind: CallKind;
  readonly state: CallState;
  readonly displayMode: DisplayMode;
  readonly x: string;
  readonly a: string;
  readonly b: string;
  readonly ringTimeoutASeconds: number;
  readonly ringTimeoutBSeconds: number;
  readonly maxDurationSeconds: number;
  /** The warning before the maximum duration, as resolved on acceptance; 0: none. */
  readonly endWarningSeconds?: number;
  readonly record: boolean;
  readonly userData: string | null;
  readonly result: CallResult | null;
  readonly hangupCause: string | null;
  readonly hangupSide: HangupSide | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly completedAt: number | null;
}

/** A call as accepted: the request's fields; state and creation time default to queued and now. */
export type NewCall = Pick<
  CallRecord,
  | 'id' | 'tenantId' | 'requestId' | 'kind' | 'displayMode' | 'x' | 'a' | 'b'
  | 'ringTimeoutASeconds' | 'ringTimeoutBSeconds' | 'maxDurationSeconds' | 'endWarningSeconds' | 'record' | 'userData'
> & {
  readonly state?: CallState;
  readonly createdAt?: number;
};

export interface CallCompletion {
  readonly result: CallResult;
  readonly hangupCause: string | null;
  readonly hangupSide: HangupSide;
  readonly completedAt: number;
}

/** Order of CallState: a call only moves forward. */
export const CALL_STATE_ORDER: readonly CallState[] = ['queued', 'calling_a', 'a_answered', 'calling_b', 'bridged', 'completed'];

export function rowToCall(r: RowDataPacket): CallRecord {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    requestId: String(r.request_id),
    kind: r.kind as CallKind,
    state: r.state as CallState,
    displayMode: r.display_mode as DisplayMode,
    x: String(r.x),
    a: String(r.a),
    b: String(r.b),
    ringTimeoutASeconds: Number(r.ring_timeout_a),
    ringTimeoutBSeconds: Number(r.ring_timeout_b),
    maxDurationSeconds: Number(r.max_duration),
    endWarningSeconds: Number(r.end_warning_seconds ?? 0),
    record: Boolean(r.record),
    userData: r.user_data === null ? null : String(r.user_data),
    result: r.result === null ? null : (r.result as CallResult),
    hangupCause: r.hangup_cause === null ? null : String(r.hangup_cause),
    hangupSide: r.hangup_side === null ? null : (r.hangup_side as HangupSide),
    createdAt: toMsStrict(r.created_at),
    updatedAt: toMsStrict(r.updated_at),
    completedAt: toMs(r.completed_at),
  };
}

/** Calls read by id in one query at most (the worker's reads of a burst of jobs), and such queries at once. */
const MAX_IDS_PER_READ = 200;
const MAX_READS_IN_FLIGHT = 2;

export class CallStore {
  private readonly byId: GroupedReads<string, CallRecord>;

  constructor(private readonly pool: Pool) {
    this.byId = new GroupedReads((ids) => this.readByIds(ids), MAX_IDS_PER_READ, MAX_READS_IN_FLIGHT);
  }

  /**
   * Records a call. Idempotent by (tenantId, requestId): when that request was already
   * recorded, returns the first call and created=false (whatever the new input says).
   */
  async insert(call: NewCall): Promise<{ call: CallRecord; created: boolean }> {
    const created = toDate(call.createdAt ?? Date.now());
    try {
      await this.pool.execute(`${INSERT_CALLS} (${INSERT_PLACEHOLDERS})`, insertValues(call, created));
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const existing = await this.getByRequestId(call.tenantId, call.requestId);
      if (existing) return { call: existing, created: false };
      throw err; // duplicate call id under another tenant/request: a bug, not a retry
    }
    return { call: insertedRecord(call, created), created: true };
  }

  /**
   * Records a call as insert() does, and resolves with the call as recorded (the first one when the request
   * was recorded before). Calls recorded while a group is on its way to the database go together in one
   * INSERT; should that fail (a duplicate, or any other error), each call of the group is inserted alone,
   * so each caller gets its own answer or error.
   */
  record(call: NewCall): Promise<CallRecord> {
    return new Promise((resolve, reject) => {
      this.toRecord.push({ call, created: toDate(call.createdAt ?? Date.now()), resolve, reject });
      this.sendRecordsWhileRoom();
    });
  }

  private readonly toRecord: PendingRecord[] = [];
  private recordsInFlight = 0;

  private sendRecordsWhileRoom(): void {
    while (this.recordsInFlight < MAX_RECORD_GROUPS_IN_FLIGHT && this.toRecord.length > 0) {
      const group = this.toRecord.splice(0, MAX_CALLS_PER_INSERT);
      this.recordsInFlight++;
      void this.recordGroup(group).finally(() => {
        this.recordsInFlight--;
        this.sendRecordsWhileRoom();
      });
    }
  }

  private async recordGroup(group: PendingRecord[]): Promise<void> {
    if (group.length > 1) {
      try {
        // Text protocol: one prepared statement per group size would fill the statement cache.
        await this.pool.query(`${INSERT_CALLS} ${group.map(() => `(${INSERT_PLACEHOLDERS})`).join(', ')}`, group.flatMap((r) => insertValues(r.call, r.created)));
        for (const r of group) r.resolve(insertedRecord(r.call, r.created));
        return;
      } catch {
        // nothing of the group was written (one statement): each call alone, with its own answer
      }
    }
    await Promise.all(
      group.map((r) =>
        this.insert({ ...r.call, createdAt: r.created?.getTime() ?? r.call.createdAt }).then(
          (res) => r.resolve(res.call),
          (err: unknown) => r.reject(err),
        ),
      ),
    );
  }

  /** A tenant's call, or null (also null when the call belongs to another tenant). */
  async get(tenantId: string, id: string): Promise<CallRecord | null> {
    const [rows] = await this.pool.execute<RowDataPacket[]>('SELECT * FROM calls WHERE id = ? AND tenant_id = ?', [id, tenantId]);
    return rows[0] ? rowToCall(rows[0]) : null;
  }

  async getByRequestId(tenantId: string, requestId: string): Promise<CallRecord | null> {
    const [rows] = await this.pool.execute<RowDataPacket[]>('SELECT * FROM calls WHERE tenant_id = ? AND request_id = ?', [
      tenantId,
      requestId,
    ]);
    return rows[0] ? rowToCall(rows[0]) : null;
  }

  /** Internal (workers): a call by id whatever its tenant. Never expose to the API. */
  /** Concurrent reads go together (GroupedReads): one query for the calls of a burst of jobs. */
  getById(id: string): Promise<CallRecord | null> {
    return this.byId.get(id);
  }

  private async readByIds(ids: string[]): Promise<Map<string, CallRecord>> {
    // Text protocol: one prepared statement per group size would fill the statement cache.
    const [rows] = await this.pool.query<RowDataPacket[]>(`SELECT * FROM calls WHERE id IN (${ids.map(() => '?').join(', ')})`, ids);
    return new Map(rows.map((r) => [String(r.id), rowToCall(r)]));
  }

  /** Moves a call forward to `state`; false when it is already there or further (states never go back). */
  async advanceState(id: string, state: CallState): Promise<boolean> {
    const order = CALL_STATE_ORDER.map(() => '?').join(', ');
    const [res] = await this.pool.execute<ResultSetHeader>(
      `UPDATE calls SET state = ?, updated_at = ? WHERE id = ? AND FIELD(state, ${order}) < FIELD(?, ${order})`,
      [state, new Date(), id, ...CALL_STATE_ORDER, state, ...CALL_STATE_ORDER],
    );
    return res.affectedRows > 0;
  }

  /** Marks the call completed with its outcome. The first completion wins; returns false when already completed. */
  async markCompleted(id: string, c: CallCompletion): Promise<boolean> {
    const [res] = await this.pool.execute<ResultSetHeader>(
      `UPDATE calls SET state = 'completed', result = ?, hangup_cause = ?, hangup_side = ?, completed_at = ?, updated_at = ?
        WHERE id = ? AND completed_at IS NULL`,
      [c.result, c.hangupCause, c.hangupSide, toDate(c.completedAt), new Date(), id],
    );
    return res.affectedRows > 0;
  }
}

interface PendingRecord {
  readonly call: NewCall;
  readonly created: Date | null;
  readonly resolve: (call: CallRecord) => void;
  readonly reject: (err: unknown) => void;
}

/** Calls recorded in one INSERT at most (the worker's jobs of a burst), and such INSERTs at once. */
const MAX_CALLS_PER_INSERT = 100;
const MAX_RECORD_GROUPS_IN_FLIGHT = 2;

const INSERT_CALLS = `INSERT INTO calls (id, tenant_id, request_id, kind, state, display_mode, x, a, b,
  ring_timeout_a, ring_timeout_b, max_duration, record, user_data, created_at, updated_at, end_warning_seconds) VALUES`;
const INSERT_PLACEHOLDERS = '?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?';

function insertValues(call: NewCall, created: Date | null): Array<string | number | boolean | Date | null> {
  return [
    call.id,
    call.tenantId,
    call.requestId,
    call.kind,
    call.state ?? 'queued',
    call.displayMode,
    call.x,
    call.a,
    call.b,
    call.ringTimeoutASeconds,
    call.ringTimeoutBSeconds,
    call.maxDurationSeconds,
    call.record,
    call.userData,
    created,
    created,
    call.endWarningSeconds ?? 0,
  ];
}

/** What an inserted row holds (DATETIME(3) keeps the milliseconds), without reading it back. */
function insertedRecord(call: NewCall, created: Date | null): CallRecord {
  const at = created?.getTime() ?? Date.now();
  return {
    id: call.id,
    tenantId: call.tenantId,
    requestId: call.requestId,
    kind: call.kind,
    state: call.state ?? 'queued',
    displayMode: call.displayMode,
    x: call.x,
    a: call.a,
    b: call.b,
    ringTimeoutASeconds: call.ringTimeoutASeconds,
    ringTimeoutBSeconds: call.ringTimeoutBSeconds,
    maxDurationSeconds: call.maxDurationSeconds,
    endWarningSeconds: call.endWarningSeconds ?? 0,
    record: call.record,
    userData: call.userData,
    result: null,
    hangupCause: null,
    hangupSide: null,
    createdAt: at,
    updatedAt: at,
    completedAt: null,
  };
}
