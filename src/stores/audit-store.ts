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

  /** Many entries in one multi-row INSERT, in the order given, each at the time it was made. */
  async appendMany(entries: ReadonlyArray<{ readonly entry: AuditEntryInput; readonly at: number }>): Promise<void> {
    if (entries.length === 0) return;
    await this.pool.query('INSERT INTO audit_log (tenant_id, actor, action, target, request_id, details, created_at) VALUES ?', [
      entries.map(({ entry: e, at }) => [
        e.tenantId,
        e.actor,
        e.action,
        e.target ?? null,
        e.requestId ?? null,
        e.details === undefined || e.details === null ? null : JSON.stringify(e.details),
        new Date(at),
      ]),
    ]);
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

/**
 * The audit log as the API writes it, after each response: entries made within `lingerMs` of the
 * first one waiting (and while a write is under way) go together in the next multi-row INSERT, so a
 * busy API costs the database one commit per batch instead of one per request. append resolves once
 * its entry is stored (or rejects with the write's error); flush writes what waits at once and waits
 * for everything appended so far.
 */
export class BatchedAuditWriter {
  private queue: Array<{ entry: AuditEntryInput; at: number; done: (err?: Error) => void }> = [];
  private writing: Promise<void> | null = null;
  private endLinger: (() => void) | null = null;

  constructor(
    private readonly store: Pick<AuditStore, 'appendMany'>,
    private readonly opts: { readonly maxBatch?: number; readonly lingerMs?: number } = {},
  ) {}

  append(entry: AuditEntryInput): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ entry, at: Date.now(), done: (err) => (err === undefined ? resolve() : reject(err)) });
      this.writing ??= this.drain();
    });
  }

  async flush(): Promise<void> {
    this.endLinger?.();
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    const lingerMs = this.opts.lingerMs ?? 0;
    // Lets the rest of this turn of the event loop (or of the linger) append too.
    await new Promise<void>((resolve) => {
      if (lingerMs <= 0) return void setImmediate(resolve);
      const timer = setTimeout(resolve, lingerMs);
      this.endLinger = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.endLinger = null;
    const maxBatch = this.opts.maxBatch ?? 500;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, maxBatch);
      try {
        await this.store.appendMany(batch);
        for (const e of batch) e.done();
      } catch (err) {
        for (const e of batch) e.done(err instanceof Error ? err : new Error(String(err)));
      }
    }
    this.writing = null;
  }
}
