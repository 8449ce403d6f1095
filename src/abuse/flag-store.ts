import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { checkedPageLimit, newestFirstPage, SqlConditions } from '../stores/keyset-cursor';
import { toDate, toMs, toMsStrict, type Pool } from '../stores/mysql';
import type { AnomalyKind } from './tenant-limits';

export type AbuseFlagKind = AnomalyKind;

export interface NewAbuseFlag {
  readonly tenantId: string;
  readonly kind: AbuseFlagKind;
  /** The real number the flag is about, as hash and masked form; null for a tenant-wide flag (bulk binding) or one about an X alone. */
  readonly numberHash: string | null;
  readonly numberMasked: string | null;
  /** The privacy number involved, when there is one. */
  readonly x: string | null;
  /** The count that crossed the threshold (distinct parties, calls, short calls, bindings this minute). */
  readonly distinctCount: number;
  readonly windowSeconds: number;
  /** What was observed, as figures (no numbers). */
  readonly evidence: Readonly<Record<string, number>>;
  readonly createdAt: number;
}

/** What the disposal policy did about a flag. */
export interface FlagAction {
  readonly id: number;
  readonly action: 'quarantine' | 'block';
  readonly until: number | null;
  readonly liftedAt: number | null;
}

export interface AbuseFlag extends NewAbuseFlag {
  readonly id: number;
  readonly action: FlagAction | null;
}

export interface FlagQuery {
  readonly numberHash?: string;
  readonly x?: string;
  readonly kind?: AbuseFlagKind;
  readonly limit?: number;
  readonly cursor?: string;
}

/** Abuse flags in MySQL (migrations 006, 031). Real numbers are never stored: a hash and a masked form. */
export class AbuseFlagStore {
  constructor(private readonly pool: Pool) {}

  async insert(flag: NewAbuseFlag): Promise<number> {
    const [res] = await this.pool.query<ResultSetHeader>(
      `INSERT INTO abuse_flags (tenant_id, kind, number_hash, number_masked, x, distinct_count, window_seconds, evidence, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        flag.tenantId,
        flag.kind,
        flag.numberHash,
        flag.numberMasked,
        flag.x,
        flag.distinctCount,
        flag.windowSeconds,
        JSON.stringify(flag.evidence),
        toDate(flag.createdAt),
      ],
    );
    return res.insertId;
  }

  /** A tenant's flags, newest first; `numberHash`, `x` or `kind` narrow them. */
  async list(tenantId: string, q: FlagQuery = {}): Promise<AbuseFlag[]> {
    return (await this.page(tenantId, q)).items;
  }

  async page(tenantId: string, q: FlagQuery = {}): Promise<{ items: AbuseFlag[]; nextCursor: string | null }> {
    return newestFirstPage(this.pool, {
      select: `SELECT f.*, a.id AS action_id, a.action, a.until_at, a.lifted_at
                 FROM abuse_flags f LEFT JOIN abuse_actions a ON a.flag_id = f.id AND a.tenant_id = f.tenant_id`,
      where: new SqlConditions('f.tenant_id = ?', tenantId)
        .andIf(q.numberHash, 'f.number_hash = ?')
        .andIf(q.x, 'f.x = ?')
        .andIf(q.kind, 'f.kind = ?'),
      timeColumn: 'f.created_at',
      idColumn: 'f.id',
      ids: 'numeric',
      limit: checkedPageLimit(q.limit, 100, 500),
      cursor: q.cursor,
      toItem: rowToFlag,
    });
  }
}

function rowToFlag(r: RowDataPacket): AbuseFlag {
  const evidence: unknown = r.evidence;
  return {
    id: Number(r.id),
    tenantId: String(r.tenant_id),
    kind: String(r.kind) as AbuseFlagKind,
    numberHash: r.number_hash === null ? null : String(r.number_hash),
    numberMasked: r.number_masked === null ? null : String(r.number_masked),
    x: r.x === null ? null : String(r.x),
    distinctCount: Number(r.distinct_count),
    windowSeconds: Number(r.window_seconds),
    evidence: evidence === null ? {} : typeof evidence === 'string' ? (JSON.parse(evidence) as Record<string, number>) : (evidence as Record<string, number>),
    createdAt: toMsStrict(r.created_at),
    action:
      r.action_id === null
        ? null
        : { id: Number(r.action_id), action: String(r.action) as FlagAction['action'], until: toMs(r.until_at), liftedAt: toMs(r.lifted_at) },
  };
}
