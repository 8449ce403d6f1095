import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { XB_HOLD, type BindingMode } from '../domain/binding-rules';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors';
import { parsePrivacyNumber } from '../domain/phone-number';
import { toDate, type Pool } from './mysql';
import { inTransaction } from './transaction';

export interface PoolAreaStats {
  readonly area: string;
  readonly numbers: number;
  readonly enabled: number;
  /** Numbers carrying at least one active binding. */
  readonly inUse: number;
  readonly activeBindings: number;
  readonly maxBindingsPerX: number;
  readonly disabled: number;
  readonly quarantined: number;
  /** Enabled numbers carrying no active binding: capacity for XB bindings and fresh pairs. */
  readonly free: number;
}

export type PoolNumberState = 'enabled' | 'disabled' | 'quarantined';

export interface PoolNumber {
  readonly x: string;
  readonly area: string;
  readonly state: PoolNumberState;
  readonly legacy: boolean;
  readonly activeBindings: number;
}

export interface PoolNumberInput {
  readonly x: string;
  readonly area: string;
}

/** A tenant's pool of numbers X in MySQL: import, states, statistics, and where first fit finds room. */
export class PoolStore {
  constructor(private readonly pool: Pool) {}

  /**
   * Assigns numbers to a tenant's pool: an operator action (CLI), never a tenant's. 700 numbers
   * only, unless the operator allows legacy numbers. Numbers already in this tenant's pool are
   * skipped (an import can be run again); a number held by another tenant, or more numbers than
   * the tenant's quota, refuses the whole import. Returns how many numbers were added.
   */
  async importNumbers(tenantId: string, numbers: readonly PoolNumberInput[], opts: { allowLegacy?: boolean } = {}): Promise<number> {
    const rows = numbers.map((n, i) => {
      const x = parsePrivacyNumber(n.x, `numbers[${i}].x`, opts.allowLegacy ?? false);
      if (!/^0?\d{2,4}$/.test(n.area)) throw new ValidationError(`numbers[${i}].area`, 'area must be an area code such as 010', 'invalid_area');
      return [x, tenantId, n.area, !x.startsWith('700')] as const;
    });
    let inserted = 0;
    await inTransaction(this.pool, async (conn) => {
      inserted = 0;
      // Imports for one tenant queue behind each other here, so two cannot both fit under the quota.
      const [tenant] = await conn.query<RowDataPacket[]>('SELECT pool_quota FROM tenants WHERE id = ? FOR UPDATE', [tenantId]);
      if (!tenant[0]) throw new NotFoundError('tenant');
      const quota = Number(tenant[0].pool_quota);
      const fresh: Array<readonly [string, string, string, boolean]> = [];
      let heldByOthers = 0;
      for (let i = 0; i < rows.length; i += 1000) {
        const chunk = rows.slice(i, i + 1000);
        const [held] = await conn.query<RowDataPacket[]>('SELECT x, tenant_id FROM pool_numbers WHERE x IN (?)', [chunk.map((r) => r[0])]);
        const owner = new Map(held.map((r) => [String(r.x), String(r.tenant_id)]));
        for (const r of chunk) {
          const o = owner.get(r[0]);
          if (o === undefined) fresh.push(r);
          else if (o !== tenantId) heldByOthers++;
        }
      }
      if (heldByOthers > 0) {
        throw new ConflictError('number_held_by_other_tenant', `${heldByOthers} of these numbers belong to another tenant's pool; nothing was imported`, 'numbers');
      }
      const [count] = await conn.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM pool_numbers WHERE tenant_id = ?', [tenantId]);
      const have = Number(count[0]?.n ?? 0);
      if (have + fresh.length > quota) {
        throw new ConflictError('pool_quota_exceeded', `the tenant holds ${have} numbers; ${fresh.length} more would pass its quota of ${quota}`, 'numbers');
      }
      for (let i = 0; i < fresh.length; i += 1000) {
        const [res] = await conn.query<ResultSetHeader>('INSERT IGNORE INTO pool_numbers (x, tenant_id, area, legacy) VALUES ?', [fresh.slice(i, i + 1000)]);
        inserted += res.affectedRows;
      }
    });
    return inserted;
  }

  /**
   * First fit (domain/pool.ts firstFit) asked of MySQL: the lowest enabled X of the tenant's pool, in
   * the area when one is named, where a binding with these members fits the reuse invariant now; up to `limit` of them in order.
   */
  async firstFitCandidates(tenantId: string, mode: BindingMode, members: readonly string[], area: string | undefined, now: number, limit: number): Promise<string[]> {
    const free =
      mode === 'xb'
        ? 'NOT EXISTS (SELECT 1 FROM binding_members m WHERE m.x = p.x AND m.expires_at > ?)'
        : 'NOT EXISTS (SELECT 1 FROM binding_members m WHERE m.x = p.x AND m.number IN (?, ?, ?) AND m.expires_at > ?)';
    const params = mode === 'xb' ? [toDate(now)] : [...members, XB_HOLD, toDate(now)];
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT p.x FROM pool_numbers p
        WHERE p.tenant_id = ? AND p.state = 'enabled' ${area === undefined ? '' : 'AND p.area = ?'} AND ${free}
        ORDER BY p.x LIMIT ${limit}`,
      [tenantId, ...(area === undefined ? [] : [area]), ...params],
    );
    return rows.map((r) => String(r.x));
  }

  /** Per area: numbers, enabled, in use now, and the busiest X (active bindings on it). */
  async poolStats(tenantId: string, now: number = Date.now()): Promise<PoolAreaStats[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT p.area,
              COUNT(*) AS numbers,
              SUM(p.state = 'enabled') AS enabled,
              SUM(p.state = 'disabled') AS disabled,
              SUM(p.state = 'quarantined') AS quarantined,
              SUM(p.state = 'enabled' AND u.bindings IS NULL) AS free,
              SUM(u.bindings IS NOT NULL) AS in_use,
              COALESCE(MAX(u.bindings), 0) AS max_bindings_per_x,
              COALESCE(SUM(u.bindings), 0) AS active_bindings
         FROM pool_numbers p
         LEFT JOIN (SELECT x, COUNT(DISTINCT binding_id) AS bindings FROM binding_members WHERE expires_at > ? GROUP BY x) u ON u.x = p.x
        WHERE p.tenant_id = ?
        GROUP BY p.area ORDER BY p.area`,
      [toDate(now), tenantId],
    );
    return rows.map((r) => ({
      area: String(r.area),
      numbers: Number(r.numbers),
      enabled: Number(r.enabled),
      inUse: Number(r.in_use),
      activeBindings: Number(r.active_bindings),
      maxBindingsPerX: Number(r.max_bindings_per_x),
      disabled: Number(r.disabled),
      quarantined: Number(r.quarantined),
      free: Number(r.free),
    }));
  }

  /**
   * Takes a number out of allocation (disabled: withdrawn; quarantined: held back, e.g. after a
   * complaint or before reuse) or puts it back. Bindings already on it keep routing until they
   * end, so no conversation in progress is cut; explicit binds on it are refused with x_unavailable.
   */
  async setNumberState(tenantId: string, x: string, state: PoolNumberState): Promise<PoolNumber> {
    const number = parsePrivacyNumber(x, 'x', true);
    const [res] = await this.pool.query<ResultSetHeader>('UPDATE pool_numbers SET state = ? WHERE x = ? AND tenant_id = ?', [state, number, tenantId]);
    const changed = res.affectedRows === 0 ? null : await this.getNumber(tenantId, number);
    if (!changed) throw new NotFoundError('pool number');
    return changed;
  }

  /** The state of one of the tenant's pool numbers; null when the number is not in the tenant's pool. */
  async numberState(tenantId: string, x: string): Promise<PoolNumberState | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT state FROM pool_numbers WHERE x = ? AND tenant_id = ?', [x, tenantId]);
    return rows[0] ? (String(rows[0].state) as PoolNumberState) : null;
  }

  async getNumber(tenantId: string, x: string, now: number = Date.now()): Promise<PoolNumber | null> {
    const page = await this.listNumbers(tenantId, { x, limit: 1 }, now);
    return page.items[0] ?? null;
  }

  /** The tenant's numbers in x order, with how many active bindings each carries. */
  async listNumbers(
    tenantId: string,
    q: { area?: string; state?: PoolNumberState; x?: string; limit?: number; cursor?: string },
    now: number = Date.now(),
  ): Promise<{ items: PoolNumber[]; nextCursor: string | null }> {
    const limit = Math.max(1, Math.min(1000, Math.floor(q.limit ?? 100)));
    const where = ['p.tenant_id = ?'];
    const params: unknown[] = [toDate(now), tenantId];
    const and = (clause: string, value: unknown): void => {
      where.push(clause);
      params.push(value);
    };
    if (q.area !== undefined) and('p.area = ?', q.area);
    if (q.state !== undefined) and('p.state = ?', q.state);
    if (q.x !== undefined) and('p.x = ?', q.x);
    if (q.cursor !== undefined) and('p.x > ?', q.cursor);
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT p.x, p.area, p.state, p.legacy,
              (SELECT COUNT(DISTINCT m.binding_id) FROM binding_members m WHERE m.x = p.x AND m.expires_at > ?) AS bindings
         FROM pool_numbers p WHERE ${where.join(' AND ')} ORDER BY p.x LIMIT ${limit + 1}`,
      params,
    );
    const items = rows.slice(0, limit).map((r) => ({
      x: String(r.x),
      area: String(r.area),
      state: String(r.state) as PoolNumberState,
      legacy: Boolean(r.legacy),
      activeBindings: Number(r.bindings),
    }));
    const last = items.at(-1);
    return { items, nextCursor: rows.length > limit && last ? last.x : null };
  }
}
