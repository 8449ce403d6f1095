import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { NotFoundError } from '../domain/errors';
import { checkedPageLimit, newestFirstPage, SqlConditions } from '../stores/keyset-cursor';
import { toDate, toMs, toMsStrict, type Pool, type PoolConnection } from '../stores/mysql';
import type { RouteIndex } from '../stores/route-index';

/** What the disposal policy did: an X quarantined, or a number blocked (on the tenant's blacklist) until a time. */
export interface AbuseAction {
  readonly id: number;
  readonly tenantId: string;
  readonly flagId: number;
  readonly action: 'quarantine' | 'block';
  readonly x: string | null;
  readonly numberMasked: string | null;
  /** A block ends by itself then; a quarantine lasts until lifted. */
  readonly until: number | null;
  readonly createdAt: number;
  readonly liftedAt: number | null;
  readonly liftedBy: string | null;
}

/**
 * Runs `work` on one connection that names who changes a pool number and why, for the state-change
 * triggers (migration 032); the names are cleared before the connection goes back to the pool.
 */
async function asActor<T>(pool: Pool, actor: string, reason: string, work: (conn: PoolConnection) => Promise<T>): Promise<T> {
  const conn = await pool.getConnection();
  try {
    await conn.query('SET @numguard_actor = ?, @numguard_reason = ?', [actor, reason]);
    return await work(conn);
  } finally {
    await conn.query('SET @numguard_actor = NULL, @numguard_reason = NULL').catch(() => undefined);
    conn.release();
  }
}

/**
 * The quarantined privacy numbers, held in memory for the routing path (which never waits on
 * MySQL): re-read by refresh() every few seconds, and changed at once by this instance's own
 * quarantines and lifts.
 */
export class QuarantinedNumbers {
  private numbers = new Set<string>();

  constructor(private readonly pool: Pool) {}

  has(x: string): boolean {
    return this.numbers.has(x);
  }

  added(x: string): void {
    this.numbers.add(x);
  }

  removed(x: string): void {
    this.numbers.delete(x);
  }

  async refresh(): Promise<void> {
    const [rows] = await this.pool.query<RowDataPacket[]>("SELECT x FROM pool_numbers WHERE state = 'quarantined'");
    this.numbers = new Set(rows.map((r) => String(r.x)));
  }
}

/**
 * The route index as calls to X see it: a quarantined X routes no call, even on a binding made
 * before it was quarantined; its callers are refused like restricted ones (not-in-service prompt).
 */
export function refuseQuarantined(
  routes: Pick<RouteIndex, 'lookup' | 'lookupExtension'>,
  quarantined: Pick<QuarantinedNumbers, 'has'>,
): Pick<RouteIndex, 'lookup' | 'lookupExtension'> {
  return {
    async lookup(x, caller, now) {
      const decision = await routes.lookup(x, caller, now);
      if (!quarantined.has(x)) return decision;
      if ('route' in decision) return { refused: 'restricted', binding: decision.route };
      // An AXE X asks for no extension while quarantined.
      return 'extension' in decision ? { refused: 'restricted' } : decision;
    },
    async lookupExtension(x, extension, now) {
      const decision = await routes.lookupExtension(x, extension, now);
      return 'route' in decision && quarantined.has(x) ? { refused: 'restricted', binding: decision.route } : decision;
    },
  };
}

/** The actions of the disposal policy (migration 031) and their lifting. */
export class AbuseDisposal {
  constructor(
    private readonly pool: Pool,
    private readonly quarantined: QuarantinedNumbers,
    /** The tenant's blacklist changed: the call paths' cached copy is dropped. */
    private readonly blacklistChanged: (tenantId: string) => void,
  ) {}

  /** Quarantines one of the tenant's enabled numbers; null when it is not one (already quarantined, disabled, or not the tenant's). */
  async quarantine(tenantId: string, x: string, flagId: number, now: number): Promise<AbuseAction | null> {
    const id = await asActor(this.pool, 'system:abuse', `flag ${flagId}`, async (conn) => {
      await conn.beginTransaction();
      try {
        const [res] = await conn.query<ResultSetHeader>("UPDATE pool_numbers SET state = 'quarantined' WHERE x = ? AND tenant_id = ? AND state = 'enabled'", [x, tenantId]);
        if (res.affectedRows === 0) {
          await conn.rollback();
          return null;
        }
        const [ins] = await conn.query<ResultSetHeader>(
          "INSERT INTO abuse_actions (tenant_id, flag_id, action, x, created_at) VALUES (?, ?, 'quarantine', ?, ?)",
          [tenantId, flagId, x, toDate(now)],
        );
        await conn.commit();
        return ins.insertId;
      } catch (err) {
        await conn.rollback().catch(() => undefined);
        throw err;
      }
    });
    if (id === null) return null;
    this.quarantined.added(x);
    return this.mustGet(tenantId, id);
  }

  /**
   * Puts a number on the tenant's blacklist until now + seconds. A number already on it for good
   * stays so (null: nothing done); one blocked until an earlier time is blocked until the later one.
   */
  async block(tenantId: string, number: string, masked: { hash: string; masked: string }, flagId: number, seconds: number, now: number): Promise<AbuseAction | null> {
    const until = now + seconds * 1000;
    const conn = await this.pool.getConnection();
    let id: number;
    try {
      await conn.beginTransaction();
      const [held] = await conn.query<RowDataPacket[]>('SELECT expires_at FROM blacklist WHERE tenant_id = ? AND number = ? FOR UPDATE', [tenantId, number]);
      if (held[0] && held[0].expires_at === null) {
        await conn.rollback();
        return null;
      }
      const [ins] = await conn.query<ResultSetHeader>(
        "INSERT INTO abuse_actions (tenant_id, flag_id, action, number_hash, number_masked, until_at, created_at) VALUES (?, ?, 'block', ?, ?, ?, ?)",
        [tenantId, flagId, masked.hash, masked.masked, toDate(until), toDate(now)],
      );
      id = ins.insertId;
      await conn.query(
        `INSERT INTO blacklist (tenant_id, number, expires_at, abuse_action_id) VALUES (?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE expires_at = GREATEST(expires_at, VALUES(expires_at)), abuse_action_id = VALUES(abuse_action_id)`,
        [tenantId, number, toDate(until), id],
      );
      await conn.commit();
    } catch (err) {
      await conn.rollback().catch(() => undefined);
      throw err;
    } finally {
      conn.release();
    }
    this.blacklistChanged(tenantId);
    return this.mustGet(tenantId, id);
  }

  /**
   * Lifts an action: a quarantined X is enabled again, a blocked number leaves the blacklist (only
   * the entry this action made). Lifting a lifted action changes nothing. NotFoundError for another tenant's.
   */
  async lift(tenantId: string, actionId: number, actor: string, now: number = Date.now()): Promise<AbuseAction> {
    const action = await this.get(tenantId, actionId);
    if (!action) throw new NotFoundError('abuse action');
    if (action.liftedAt !== null) return action;
    await asActor(this.pool, actor, `lift of abuse action ${actionId}`, async (conn) => {
      await conn.beginTransaction();
      try {
        if (action.action === 'quarantine' && action.x !== null) {
          await conn.query("UPDATE pool_numbers SET state = 'enabled' WHERE x = ? AND tenant_id = ? AND state = 'quarantined'", [action.x, tenantId]);
        } else {
          await conn.query('DELETE FROM blacklist WHERE tenant_id = ? AND abuse_action_id = ?', [tenantId, actionId]);
        }
        await conn.query('UPDATE abuse_actions SET lifted_at = ?, lifted_by = ? WHERE id = ? AND lifted_at IS NULL', [toDate(now), actor, actionId]);
        await conn.commit();
      } catch (err) {
        await conn.rollback().catch(() => undefined);
        throw err;
      }
    });
    if (action.action === 'quarantine' && action.x !== null) this.quarantined.removed(action.x);
    else this.blacklistChanged(tenantId);
    return this.mustGet(tenantId, actionId);
  }

  /** Blocks past their time leave the blacklist (every reader of it then agrees); returns how many. */
  async sweepExpiredBlocks(now: number = Date.now()): Promise<number> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT tenant_id, number FROM blacklist WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT 1000',
      [toDate(now)],
    );
    for (const r of rows) {
      await this.pool.query('DELETE FROM blacklist WHERE tenant_id = ? AND number = ? AND expires_at <= ?', [r.tenant_id, r.number, toDate(now)]);
    }
    for (const tenantId of new Set(rows.map((r) => String(r.tenant_id)))) this.blacklistChanged(tenantId);
    return rows.length;
  }

  async get(tenantId: string, id: number): Promise<AbuseAction | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM abuse_actions WHERE id = ? AND tenant_id = ?', [id, tenantId]);
    return rows[0] ? rowToAction(rows[0]) : null;
  }

  /** A tenant's actions, newest first; `active`: only those in force at `now` (not lifted, not past their time). */
  async page(
    tenantId: string,
    q: { active?: boolean; x?: string; limit?: number; cursor?: string } = {},
    now: number = Date.now(),
  ): Promise<{ items: AbuseAction[]; nextCursor: string | null }> {
    const where = new SqlConditions('tenant_id = ?', tenantId).andIf(q.x, 'x = ?');
    if (q.active) where.and('lifted_at IS NULL AND (until_at IS NULL OR until_at > ?)', toDate(now));
    return newestFirstPage(this.pool, {
      select: 'SELECT * FROM abuse_actions',
      where,
      timeColumn: 'created_at',
      idColumn: 'id',
      ids: 'numeric',
      limit: checkedPageLimit(q.limit, 100, 500),
      cursor: q.cursor,
      toItem: rowToAction,
    });
  }

  private async mustGet(tenantId: string, id: number): Promise<AbuseAction> {
    const action = await this.get(tenantId, id);
    if (!action) throw new Error(`abuse action ${id} vanished`);
    return action;
  }
}

function rowToAction(r: RowDataPacket): AbuseAction {
  return {
    id: Number(r.id),
    tenantId: String(r.tenant_id),
    flagId: Number(r.flag_id),
    action: String(r.action) as AbuseAction['action'],
    x: r.x === null ? null : String(r.x),
    numberMasked: r.number_masked === null ? null : String(r.number_masked),
    until: toMs(r.until_at),
    createdAt: toMsStrict(r.created_at),
    liftedAt: toMs(r.lifted_at),
    liftedBy: r.lifted_by === null ? null : String(r.lifted_by),
  };
}
