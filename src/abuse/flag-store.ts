import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { ValidationError } from '../domain/errors';
import { toDate, toMsStrict, type Pool } from '../stores/mysql';

export type AbuseFlagKind = 'fanout';

export interface NewAbuseFlag {
  readonly tenantId: string;
  readonly kind: AbuseFlagKind;
  readonly numberHash: string;
  readonly numberMasked: string;
  readonly distinctCount: number;
  readonly windowSeconds: number;
  readonly createdAt: number;
}

export interface AbuseFlag extends NewAbuseFlag {
  readonly id: number;
}

/** Abuse flags in MySQL (migration 006). Real numbers are never stored: a hash and a masked form. */
export class AbuseFlagStore {
  constructor(private readonly pool: Pool) {}

  async insert(flag: NewAbuseFlag): Promise<number> {
    const [res] = await this.pool.query<ResultSetHeader>(
      `INSERT INTO abuse_flags (tenant_id, kind, number_hash, number_masked, distinct_count, window_seconds, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      [flag.tenantId, flag.kind, flag.numberHash, flag.numberMasked, flag.distinctCount, flag.windowSeconds, toDate(flag.createdAt)],
    );
    return res.insertId;
  }

  /** A tenant's flags, newest first; `numberHash` narrows them to one number. */
  async list(tenantId: string, q: { numberHash?: string; limit?: number } = {}): Promise<AbuseFlag[]> {
    const limit = q.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new ValidationError('limit', 'limit must be from 1 to 500', 'invalid_limit');
    const where = ['tenant_id = ?'];
    const params: unknown[] = [tenantId];
    if (q.numberHash !== undefined) {
      where.push('number_hash = ?');
      params.push(q.numberHash);
    }
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT * FROM abuse_flags WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT ${limit}`,
      params,
    );
    return rows.map((r) => ({
      id: Number(r.id),
      tenantId: String(r.tenant_id),
      kind: String(r.kind) as AbuseFlagKind,
      numberHash: String(r.number_hash),
      numberMasked: String(r.number_masked),
      distinctCount: Number(r.distinct_count),
      windowSeconds: Number(r.window_seconds),
      createdAt: toMsStrict(r.created_at),
    }));
  }
}
