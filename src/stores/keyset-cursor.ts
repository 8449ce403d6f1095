import type { RowDataPacket } from 'mysql2/promise';
import { ValidationError } from '../domain/errors';
import { toDate, toMsStrict, type Pool } from './mysql';

/**
 * The opaque cursor of a newest-first page ordered by (time, numeric id): the last row's time
 * (epoch ms) and id, so rows added meanwhile neither repeat nor shift a page.
 */
export function encodeTimeIdCursor(at: number, id: number): string {
  return Buffer.from(`${at}.${id}`, 'utf8').toString('base64url');
}

export function decodeTimeIdCursor(cursor: string): { at: number; id: number } {
  const m = /^(\d{1,15})\.(\d{1,20})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new ValidationError('cursor', 'cursor is not one this API returned', 'invalid_cursor');
  return { at: Number(m[1]), id: Number(m[2]) };
}

/** The same for rows keyed by a UUID: the last row's time (epoch ms) and id. */
export function encodeTimeUuidCursor(at: number, id: string): string {
  return Buffer.from(`${at}|${id}`, 'utf8').toString('base64url');
}

export function decodeTimeUuidCursor(cursor: string): { at: number; id: string } {
  const [, at, id] = /^(\d{1,15})\|([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8')) ?? [];
  if (at === undefined || id === undefined) throw new ValidationError('cursor', 'cursor is not one this API returned', 'invalid_cursor');
  return { at: Number(at), id };
}

/** The conditions of a list query, ANDed, with their parameters in order. */
export class SqlConditions {
  private readonly clauses: string[] = [];
  readonly params: unknown[] = [];

  constructor(clause: string, ...values: unknown[]) {
    this.and(clause, ...values);
  }

  and(clause: string, ...values: unknown[]): this {
    this.clauses.push(clause);
    this.params.push(...values);
    return this;
  }

  /** `and(clause, value)` when the filter was given, the value converted for SQL by `toParam`. */
  andIf<V>(value: V | undefined, clause: string, toParam: (v: V) => unknown = (v) => v): this {
    return value === undefined ? this : this.and(clause, toParam(value));
  }

  toString(): string {
    return this.clauses.join(' AND ');
  }
}

/** A page's `limit`: the default when absent, 400 `invalid_limit` outside 1..max. */
export function checkedPageLimit(limit: number | undefined, fallback: number, max: number): number {
  const n = limit ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > max) throw new ValidationError('limit', `limit must be an integer from 1 to ${max}`, 'invalid_limit');
  return n;
}

export interface NewestFirstPageQuery<T> {
  /** `SELECT … FROM …` (joins included); the rows must carry the bare time and id columns. */
  readonly select: string;
  readonly where: SqlConditions;
  /** The time column of the order, as the SELECT names it (`started_at`, `f.created_at`). */
  readonly timeColumn: string;
  readonly idColumn: string;
  /** Numeric ids or UUIDs: how the cursor encodes the last row's id. */
  readonly ids: 'numeric' | 'uuid';
  readonly limit: number;
  readonly cursor: string | undefined;
  readonly toItem: (row: RowDataPacket) => T;
}

/**
 * One page of rows newest first, ordered by (time, id): fetches one row more than the page to know whether
 * another page follows, whose opaque cursor is the page's last (time, id).
 */
export async function newestFirstPage<T>(pool: Pool, q: NewestFirstPageQuery<T>): Promise<{ items: T[]; nextCursor: string | null }> {
  const where = q.where;
  if (q.cursor !== undefined) {
    const c = q.ids === 'numeric' ? decodeTimeIdCursor(q.cursor) : decodeTimeUuidCursor(q.cursor);
    const at = toDate(c.at);
    where.and(`(${q.timeColumn} < ? OR (${q.timeColumn} = ? AND ${q.idColumn} < ?))`, at, at, c.id);
  }
  const [rows] = await pool.query<RowDataPacket[]>(
    `${q.select} WHERE ${where.toString()} ORDER BY ${q.timeColumn} DESC, ${q.idColumn} DESC LIMIT ${q.limit + 1}`,
    where.params,
  );
  const page = rows.slice(0, q.limit);
  const last = page.at(-1);
  let nextCursor: string | null = null;
  if (rows.length > q.limit && last) {
    const at = toMsStrict(last[bare(q.timeColumn)]);
    const id: unknown = last[bare(q.idColumn)];
    nextCursor = q.ids === 'numeric' ? encodeTimeIdCursor(at, Number(id)) : encodeTimeUuidCursor(at, String(id));
  }
  return { items: page.map(q.toItem), nextCursor };
}

const bare = (column: string): string => column.slice(column.lastIndexOf('.') + 1);
