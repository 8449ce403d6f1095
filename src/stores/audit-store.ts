import type { RowDataPacket } from 'mysql2/promise';
import { toMsStrict, type Pool } from './mysql';

export interface AuditEntryInput {
  /** null for platform-wide actions (e.g. an admin creating a tenant). */
  readonly tenantId: string | null;
  /** Who: e.g. `apikey:<id>`, `cli:<user>`. */
  readonly actor: string;
  /** What: e.g. `binding.create`, `call.cancel`. */
  readonly action: string;
  readonly target?: string | null;
  readonly requestId?: string | null;
  readonly details?: Record<string, unknown> | null;
}

export interface AuditEntry {
  readonly id: number;
  readonly tenantId: string | null;
  readonly actor: string;
  readonly action: string;
  readonly target: string | null;
  readonly requestId: string | null;
  readonly details: Record<string, unknown> | null;
  readonly createdAt: number;
}

/** Append-only record of every change made through the API or CLI (SPEC §7). */
export class AuditStore {
  constructor(private readonly pool: Pool) {}

  async append(e: AuditEntryInput): Promise<number> {
    const [res] = await this.pool.execute<import('mysql2/promise').ResultSetHeader>(
      'INSERT INTO audit_log (tenant_id, actor, action, target, request_id, details, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      [
        e.tenantId,
        e.actor,
        e.action,
        e.target ?? null,
        e.requestId ?? null,
        e.details === undefined || e.details === null ? null : JSON.stringify(e.details),
        new Date(),
      ],
    );
    return res.insertId;
  }

  /** A tenant's entries (or, with tenantId null, platform-wide ones), newest first; page with `nextCursor`. */
  async list(
    tenantId: string | null,
    q: { action?: string; actor?: string; since?: number; until?: number; limit?: number; cursor?: string } = {},
  ): Promise<AuditEntry[]> {
    return (await this.page(tenantId, q)).items;
  }

  async page(
    tenantId: string | null,
    q: { action?: string; actor?: string; since?: number; until?: number; limit?: number; cursor?: string } = {},
  ): Promise<{ items: AuditEntry[]; nextCursor: string | null }> {
    const limit = Math.max(1, Math.min(500, Math.floor(q.limit ?? 100)));
    const where = [tenantId === null ? 'tenant_id IS NULL' : 'tenant_id = ?'];
    const params: unknown[] = tenantId === null ? [] : [tenantId];
    const and = (clause: string, value: unknown): void => {
      where.push(clause);
      params.push(value);
    };
    if (q.action !== undefined) and('action = ?', q.action);
    if (q.actor !== undefined) and('actor = ?', q.actor);
    if (q.since !== undefined) and('created_at >= ?', new Date(q.since));
    if (q.until !== undefined) and('created_at < ?', new Date(q.until));
    if (q.cursor !== undefined && /^\d+$/.test(q.cursor)) and('id < ?', Number(q.cursor));
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT * FROM audit_log WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ${limit + 1}`,
      params,
    );
    const items = rows.slice(0, limit).map(rowToEntry);
    const last = items.at(-1);
    return { items, nextCursor: rows.length > limit && last ? String(last.id) : null };
  }
}

function rowToEntry(r: RowDataPacket): AuditEntry {
  return {
    id: Number(r.id),
    tenantId: r.tenant_id === null ? null : String(r.tenant_id),
    actor: String(r.actor),
    action: String(r.action),
    target: r.target === null ? null : String(r.target),
    requestId: r.request_id === null ? null : String(r.request_id),
    details: r.details === null ? null : typeof r.details === 'string' ? (JSON.parse(r.details) as Record<string, unknown>) : (r.details as Record<string, unknown>),
    createdAt: toMsStrict(r.created_at),
  };
}
