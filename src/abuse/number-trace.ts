import type { RowDataPacket } from 'mysql2/promise';
import { NotFoundError, ValidationError } from '../domain/errors';
import { maskPhone, maskPhonesInText } from '../domain/phone-number';
import { toDate, toMs, toMsStrict, type Pool } from '../stores/mysql';

/**
 * The life of one privacy number X of a tenant (SPEC §7 "用后追溯", issue #10 item 7), in one
 * newest-first list read from the tables that already keep it: imported and every state change
 * (pool_number_events, migration 032), every binding it carried (created, changed, ended, with
 * who asked), every call to or through it and every refusal (CDRs), abuse flags naming it and its
 * quarantines and their lifting, and the audit entries naming it. Real numbers are masked.
 */
export interface TraceEntry {
  readonly at: number;
  readonly type:
    | 'imported'
    | 'state_changed'
    | 'binding_created'
    | 'binding_changed'
    | 'binding_ended'
    | 'call'
    | 'flagged'
    | 'quarantined'
    | 'quarantine_lifted'
    | 'audit';
  /** The id of what the entry is about: binding, call, flag, action, audit entry, state event. */
  readonly ref: string;
  /** Who did it, where known: key:<id>, agent:<id>, cli:<user>, system:abuse. */
  readonly actor: string | null;
  readonly details: Readonly<Record<string, unknown>>;
}

export interface NumberTrace {
  readonly number: { readonly x: string; readonly area: string; readonly state: string; readonly importedAt: number };
  readonly items: readonly TraceEntry[];
  readonly nextCursor: string | null;
}

interface Source {
  /** Orders entries of the same millisecond; part of the cursor. */
  readonly src: string;
  /** The time column and the sortable ref expression, and the rest of the query after them. */
  readonly at: string;
  readonly ref: string;
  readonly select: string;
  readonly from: string;
  readonly entry: (r: RowDataPacket, at: number, ref: string) => TraceEntry;
}

/** A column read as text (ids, numbers, states: never objects). */
const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : JSON.stringify(v));
const masked = (v: unknown): string | null => (v === null || v === undefined || v === '' ? null : maskPhone(text(v)));
const str = (v: unknown): string | null => (v === null || v === undefined ? null : text(v));
const json = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);
const padded = (column: string): string => `LPAD(${column}, 20, '0')`;
const unpadded = (ref: string): string => ref.replace(/^0+(?=\d)/, '');

/** A party's value before its first change, from the binding's history (already masked there); NULL when never changed. */
const firstValue = (party: 'a' | 'b'): string =>
  `(SELECT JSON_UNQUOTE(JSON_EXTRACT(h.change_json, '$.${party}[0]')) FROM binding_history h
     WHERE h.binding_id = b.id AND JSON_CONTAINS_PATH(h.change_json, 'one', '$.${party}') ORDER BY h.id LIMIT 1)`;

/** Every source names its rows by (tenant_id = ?, x = ?), in this order of parameters. */
const SOURCES: readonly Source[] = [
  {
    src: 'a',
    at: 'e.created_at',
    ref: padded('e.id'),
    select: 'e.event, e.from_state, e.to_state, e.actor, e.reason',
    from: 'pool_number_events e WHERE e.tenant_id = ? AND e.x = ?',
    entry: (r, at, ref) => ({
      at,
      type: r.event === 'imported' ? 'imported' : 'state_changed',
      ref: unpadded(ref),
      actor: str(r.actor),
      details: { from: str(r.from_state), to: String(r.to_state), reason: str(r.reason) },
    }),
  },
  {
    src: 'b',
    at: 'b.created_at',
    ref: 'b.id',
    // The row holds the parties as they are now; the first change of each (its history, masked) says what it was made with.
    select: `b.kind, b.a, b.b, b.request_id, b.expires_at, b.user_data,
      (SELECT l.actor FROM audit_log l WHERE l.tenant_id = b.tenant_id AND l.target = b.id AND l.action = 'binding.create' ORDER BY l.id LIMIT 1) AS actor,
      ${firstValue('a')} AS first_a, ${firstValue('b')} AS first_b`,
    from: 'bindings b WHERE b.tenant_id = ? AND b.x = ?',
    entry: (r, at, ref) => ({
      at,
      type: 'binding_created',
      ref,
      // A callback binding is left by a click-to-dial call, not asked for by anyone.
      actor: str(r.actor) ?? (r.kind === 'callback' ? 'platform:click_to_dial' : null),
      details: {
        kind: String(r.kind),
        a: r.first_a === null ? masked(r.a) : maskPhonesInText(text(r.first_a)),
        b: r.first_b === null ? masked(r.b) : maskPhonesInText(text(r.first_b)),
        requestId: str(r.request_id),
        expiresAt: toMs(r.expires_at),
      },
    }),
  },
  {
    src: 'c',
    at: 'h.created_at',
    ref: padded('h.id'),
    select: 'h.binding_id, h.change_json, h.actor, h.request_id',
    from: 'binding_history h JOIN bindings b ON b.id = h.binding_id WHERE b.tenant_id = ? AND b.x = ?',
    entry: (r, at, ref) => ({
      at,
      type: 'binding_changed',
      ref: unpadded(ref),
      actor: str(r.actor),
      // Stored with numbers masked; masked again here so nothing stored earlier can leak.
      details: { bindingId: String(r.binding_id), requestId: str(r.request_id), change: JSON.parse(maskPhonesInText(JSON.stringify(json(r.change_json)))) as unknown },
    }),
  },
  {
    src: 'd',
    at: 'b.updated_at',
    ref: 'b.id',
    select: `b.state,
      (SELECT l.actor FROM audit_log l WHERE l.tenant_id = b.tenant_id AND l.target = b.id AND l.action = 'binding.unbind' ORDER BY l.id LIMIT 1) AS actor`,
    from: "bindings b WHERE b.tenant_id = ? AND b.x = ? AND b.state <> 'active'",
    entry: (r, at, ref) => ({
      at,
      type: 'binding_ended',
      ref,
      actor: str(r.actor) ?? (r.state === 'expired' ? 'platform:expiry' : null),
      details: { state: String(r.state) },
    }),
  },
  {
    src: 'e',
    at: 'c.started_at',
    ref: padded('c.id'),
    select: 'c.call_id, c.kind, c.binding_id, c.a, c.b, c.result, c.talk_seconds, c.ended_at, c.hangup_cause',
    from: 'cdrs c WHERE c.tenant_id = ? AND c.x = ?',
    entry: (r, at) => ({
      at,
      type: 'call',
      ref: String(r.call_id),
      actor: null,
      details: {
        kind: String(r.kind),
        bindingId: str(r.binding_id),
        a: masked(r.a),
        b: masked(r.b),
        result: String(r.result),
        talkSeconds: Number(r.talk_seconds),
        endedAt: toMs(r.ended_at),
        hangupCause: str(r.hangup_cause),
      },
    }),
  },
  {
    src: 'f',
    at: 'f.created_at',
    ref: padded('f.id'),
    select: 'f.kind, f.number_masked, f.evidence',
    from: 'abuse_flags f WHERE f.tenant_id = ? AND f.x = ?',
    entry: (r, at, ref) => ({
      at,
      type: 'flagged',
      ref: unpadded(ref),
      actor: 'system:abuse',
      details: { kind: String(r.kind), number: str(r.number_masked), evidence: r.evidence === null ? {} : json(r.evidence) },
    }),
  },
  {
    src: 'g',
    at: 'q.created_at',
    ref: padded('q.id'),
    select: 'q.flag_id',
    from: "abuse_actions q WHERE q.tenant_id = ? AND q.x = ? AND q.action = 'quarantine'",
    entry: (r, at, ref) => ({ at, type: 'quarantined', ref: unpadded(ref), actor: 'system:abuse', details: { flagId: Number(r.flag_id) } }),
  },
  {
    src: 'h',
    at: 'q.lifted_at',
    ref: padded('q.id'),
    select: 'q.flag_id, q.lifted_by',
    from: "abuse_actions q WHERE q.tenant_id = ? AND q.x = ? AND q.action = 'quarantine' AND q.lifted_at IS NOT NULL",
    entry: (r, at, ref) => ({ at, type: 'quarantine_lifted', ref: unpadded(ref), actor: str(r.lifted_by), details: { flagId: Number(r.flag_id) } }),
  },
  {
    src: 'i',
    at: 'l.created_at',
    ref: padded('l.id'),
    select: 'l.actor, l.action, l.request_id',
    from: 'audit_log l WHERE l.tenant_id = ? AND l.target = ?',
    entry: (r, at, ref) => ({ at, type: 'audit', ref: unpadded(ref), actor: str(r.actor), details: { action: String(r.action), requestId: str(r.request_id) } }),
  },
];

interface Cursor {
  readonly at: number;
  readonly src: string;
  readonly ref: string;
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(`${c.at}|${c.src}|${c.ref}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): Cursor {
  const m = /^(\d{1,15})\|([a-i])\|([0-9A-Za-z-]{1,40})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new ValidationError('cursor', 'cursor is not one this API returned', 'invalid_cursor');
  return { at: Number(m[1]), src: m[2] ?? '', ref: m[3] ?? '' };
}

/** Entries after the cursor in (at, src, ref) descending order: the condition on one source's rows. */
function afterCursor(source: Source, c: Cursor): { sql: string; params: unknown[] } {
  const at = toDate(c.at);
  if (source.src < c.src) return { sql: `${source.at} <= ?`, params: [at] };
  if (source.src > c.src) return { sql: `${source.at} < ?`, params: [at] };
  return { sql: `(${source.at} < ? OR (${source.at} = ? AND ${source.ref} < ?))`, params: [at, at, c.ref] };
}

export class NumberTraceReader {
  constructor(private readonly pool: Pool) {}

  /** One X of the tenant, newest first; NotFoundError when the tenant holds no such number. */
  async trace(tenantId: string, x: string, q: { limit?: number; cursor?: string } = {}): Promise<NumberTrace> {
    const limit = q.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new ValidationError('limit', 'limit must be from 1 to 500', 'invalid_limit');
    const [numbers] = await this.pool.query<RowDataPacket[]>(
      `SELECT p.x, p.area, p.state, COALESCE((SELECT MIN(e.created_at) FROM pool_number_events e WHERE e.tenant_id = p.tenant_id AND e.x = p.x AND e.event = 'imported'), p.created_at) AS imported_at
         FROM pool_numbers p WHERE p.x = ? AND p.tenant_id = ?`,
      [x, tenantId],
    );
    const n = numbers[0];
    if (!n) throw new NotFoundError('pool number');
    const cursor = q.cursor === undefined ? null : decodeCursor(q.cursor);
    const pages = await Promise.all(
      SOURCES.map(async (source) => {
        const after = cursor ? afterCursor(source, cursor) : null;
        const [rows] = await this.pool.query<RowDataPacket[]>(
          `SELECT ${source.at} AS trace_at, ${source.ref} AS trace_ref, ${source.select} FROM ${source.from}
           ${after ? `AND ${after.sql}` : ''} ORDER BY ${source.at} DESC, ${source.ref} DESC LIMIT ${limit + 1}`,
          [tenantId, x, ...(after?.params ?? [])],
        );
        return rows.map((r) => ({ src: source.src, at: toMsStrict(r.trace_at), ref: String(r.trace_ref), row: r, source }));
      }),
    );
    const merged = pages.flat().sort((p, q2) => q2.at - p.at || (q2.src < p.src ? -1 : q2.src > p.src ? 1 : 0) || (q2.ref < p.ref ? -1 : q2.ref > p.ref ? 1 : 0));
    const page = merged.slice(0, limit);
    const last = page.at(-1);
    return {
      number: { x: String(n.x), area: String(n.area), state: String(n.state), importedAt: toMsStrict(n.imported_at) },
      items: page.map((p) => p.source.entry(p.row, p.at, p.ref)),
      nextCursor: merged.length > limit && last ? encodeCursor({ at: last.at, src: last.src, ref: last.ref }) : null,
    };
  }
}
