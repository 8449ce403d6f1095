import { randomUUID } from 'node:crypto';
import type { PoolConnection, RowDataPacket } from 'mysql2/promise';
import { callbackMayTake, membersOf, XB_HOLD, type Binding, type BindingMode, type BindingState, type CallRestriction } from '../domain/binding-rules';
import { ConflictError } from '../domain/errors';
import { parsePrivacyNumber, parseRealNumber } from '../domain/phone-number';
import { rowToBinding } from './binding-rows';
import type { CallbackBindingInput } from './call-outcome';
import { checkedPageLimit, newestFirstPage, SqlConditions } from './keyset-cursor';
import { isDuplicateKey, toDate, toMsStrict, valuesTable, type Pool } from './mysql';
import type { VersionedBinding } from './route-index';
import { recordEndedAndNewBindings, recordNewBinding, recordRouteChange, versionedBinding } from './route-outbox';
import { inTransaction, TransactionConflict } from './transaction';

/**
 * Bindings in MySQL, and nothing but SQL: the reuse invariant is held by the database (migration
 * 002: the (x, number) key of binding_members and the XB trigger). A bind locks its X's pool row
 * (shared for AXB, exclusive for XB), ends the bindings that have expired on that X (so capacity
 * returns at once, whatever the sweep is doing), then writes the binding's members. Every change
 * that affects routing writes its outbox row in the same transaction (route-outbox.ts).
 */

export interface NewBinding {
  readonly tenantId: string;
  readonly requestId?: string;
  readonly mode: BindingMode;
  /** AXB; optional for AXE. */
  readonly a?: string;
  readonly b: string;
  /** AXE only: the extension wanted (the tenant's length); one free on X is drawn otherwise. */
  readonly extension?: string;
  /** An explicit X; otherwise one is allocated from the tenant's pool. */
  readonly x?: string;
  /** Preferred area for allocation; with strictArea, no fallback to other areas. */
  readonly area?: string;
  readonly strictArea?: boolean;
  readonly ttlSeconds?: number;
  readonly restriction?: CallRestriction;
  readonly record?: boolean;
  readonly maxDurationSeconds?: number;
  readonly endWarningSeconds?: number | null;
  readonly announcement?: string;
  /** XB only: callers allowed to reach B (at most 30); empty means anyone. */
  readonly allowList?: readonly string[];
  readonly userData?: string | null;
}

export type { Binding, BindingState } from '../domain/binding-rules';

export interface BindingPatch {
  readonly a?: string;
  readonly b?: string;
  /** A new lifetime, counted from now. */
  readonly ttlSeconds?: number;
  readonly restriction?: CallRestriction;
  readonly record?: boolean;
  readonly maxDurationSeconds?: number | null;
  readonly endWarningSeconds?: number | null;
  readonly announcement?: string | null;
}

/** A binding with everything checked, ready to be written. */
export type BindingDraft = Omit<NewBinding, 'a' | 'allowList' | 'extension'> & {
  readonly a: string | null;
  readonly b: string;
  readonly allowList: readonly string[];
  readonly expiresAt: number;
  /** AXE: the extension to write (chosen by the caller of insertOn). */
  readonly extension?: string | null;
};

export interface ExpiredBinding {
  readonly id: string;
  readonly tenantId: string;
  readonly expiresAt: number;
}

/** The XB trigger of migration 002 (SIGNAL SQLSTATE '45000'). */
const ER_SIGNAL_EXCEPTION = 1644;

/** The database refused the members: the number is held on X already, or an XB holds X (or would share it). */
export function isConstraintClash(err: unknown): boolean {
  return isDuplicateKey(err) || (err as { errno?: number }).errno === ER_SIGNAL_EXCEPTION;
}

/** An X that cannot take this binding: held (the invariant), or not an enabled number of the tenant's pool. */
export class XRefused extends Error {}

/**
 * Records click-to-dial callback bindings (B redials X and reaches A) under the reuse invariant:
 * the member (X, B) is written like any binding's. A newer callback replaces an older one for
 * the same (X, B) (B reaches the agent who called last); a callback never displaces an AXB or
 * XB binding on X, and is then kept only as history, never routable. Idempotent by id.
 * Runs inside the caller's transaction (the CDR batch).
 */
export async function writeCallbackBindings(
  conn: PoolConnection,
  bindings: readonly CallbackBindingInput[],
  now: number,
  opts: { /** The caller knows none of these ids is written yet (a retry's are): no need to look. */ readonly allNew?: boolean } = {},
): Promise<void> {
  // A batch holds thousands of calls: a fixed number of statements for all of them, not per binding.
  let fresh = bindings;
  if (!opts.allNew) {
    const [known] = await conn.query<RowDataPacket[]>('SELECT id FROM bindings WHERE id IN (?)', [bindings.map((b) => b.id)]);
    const knownIds = new Set(known.map((r) => String(r.id)));
    fresh = bindings.filter((b) => !knownIds.has(b.id));
  }
  if (fresh.length === 0) return;
  // As an AXB bind does: a shared lock on each X's pool row keeps an XB bind (which locks it exclusively) from taking X
  // alone meanwhile, while callbacks and AXB binds on X go on side by side.
  await conn.query('SELECT x FROM pool_numbers WHERE x IN (?) ORDER BY x LOCK IN SHARE MODE', [[...new Set(fresh.map((b) => b.x))].sort()]);
  // Each (X, B) pair once, and each X's XB hold, in key order: the rows found are locked in the order they are looked up.
  // The caller's transaction is READ COMMITTED, so the pairs not found lock no gap: another transaction taking one of
  // them meanwhile makes the member insert below fail, and the whole transaction runs again and finds it.
  const pairs = new Map<string, readonly [string, string]>();
  for (const b of fresh) pairs.set(`${b.x}|${b.b}`, [b.x, b.b]).set(`${b.x}|${XB_HOLD}`, [b.x, XB_HOLD]);
  const keys = [...pairs.values()].sort(([x1, n1], [x2, n2]) => (x1 < x2 ? -1 : x1 > x2 ? 1 : n1 < n2 ? -1 : n1 > n2 ? 1 : 0));
  const wanted = valuesTable('wanted', ['x', 'number'], keys);
  const [heldRows] = await conn.query<RowDataPacket[]>(
    `WITH ${wanted.sql}
     SELECT m.x, m.number, m.binding_id, m.expires_at, b.kind FROM wanted w
       JOIN binding_members m ON m.x = w.x AND m.number = w.number JOIN bindings b ON b.id = m.binding_id
      ORDER BY m.x, m.number FOR UPDATE`,
    wanted.params,
  );
  interface Holder { readonly bindingId: string; readonly expiresAt: number; readonly callback: boolean }
  const holders = new Map<string, Holder>();
  const heldAlone = new Set<string>();
  for (const r of heldRows) {
    const holder = { bindingId: String(r.binding_id), expiresAt: (r.expires_at as Date).getTime(), callback: String(r.kind) === 'callback' };
    if (holder.expiresAt <= now) continue;
    if (String(r.number) === XB_HOLD) heldAlone.add(String(r.x));
    else holders.set(`${String(r.x)}|${String(r.number)}`, holder);
  }
  const expired = heldRows.filter((r) => (r.expires_at as Date).getTime() <= now).map((r) => String(r.binding_id));
  const superseded: string[] = [];
  const routable = new Set<string>();
  // Oldest expiry first, so within one batch the latest callback for a (X, B) is the one left holding it.
  for (const cb of [...fresh].sort((p, q) => p.expiresAt - q.expiresAt)) {
    const key = `${cb.x}|${cb.b}`;
    const holder = holders.get(key);
    if (cb.expiresAt <= now || heldAlone.has(cb.x)) continue;
    if (!callbackMayTake(holder ? { kind: holder.callback ? 'callback' : 'axb', expiresAt: holder.expiresAt } : null, cb.expiresAt)) continue;
    if (holder) {
      if (routable.has(holder.bindingId)) routable.delete(holder.bindingId);
      superseded.push(holder.bindingId);
    }
    holders.set(key, { bindingId: cb.id, expiresAt: cb.expiresAt, callback: true });
    routable.add(cb.id);
  }
  const ended = [...new Set([...expired, ...superseded])].filter((id) => !fresh.some((b) => b.id === id));
  if (ended.length > 0) {
    await conn.query('DELETE FROM binding_members WHERE binding_id IN (?)', [ended]);
    if (expired.length > 0) {
      await conn.query("UPDATE bindings SET state = 'expired', updated_at = ? WHERE id IN (?) AND state = 'active'", [toDate(now), expired]);
    }
    const supersededOld = superseded.filter((id) => ended.includes(id));
    if (supersededOld.length > 0) {
      await conn.query("UPDATE bindings SET state = 'unbound', updated_at = ? WHERE id IN (?) AND state = 'active'", [toDate(now), supersededOld]);
    }
  }
  // The routes made and ended here reach the index through the outbox (after the locks above, so versions follow them);
  // a callback kept only as history too: the route its call left in Redis as it ended must go. The new rows are born with their version.
  const versions = await recordEndedAndNewBindings(conn, ended, fresh.map((cb) => cb.id));
  await conn.query(
    `INSERT INTO bindings (id, tenant_id, kind, x, a, b, state, expires_at, call_id, user_data, created_at, updated_at, route_version) VALUES ?`,
    [fresh.map((cb) => [cb.id, cb.tenantId, 'callback', cb.x, cb.a, cb.b, routable.has(cb.id) ? 'active' : cb.expiresAt <= now ? 'expired' : 'unbound', toDate(cb.expiresAt), cb.callId, cb.userData, toDate(now), toDate(now), versions.get(cb.id) ?? 0])],
  );
  const members = fresh.filter((cb) => routable.has(cb.id));
  if (members.length > 0) {
    try {
      await conn.query('INSERT INTO binding_members (x, number, binding_id, expires_at) VALUES ?', [members.map((cb) => [cb.x, cb.b, cb.id, toDate(cb.expiresAt)])]);
    } catch (err) {
      if (isDuplicateKey(err)) throw new TransactionConflict('an (x, number) pair a callback was to take was taken meanwhile');
      throw err;
    }
  }
}

/**
 * Ends an active binding: its members go (its numbers are free on X at once), its row stays as
 * history, and the removal of its routes goes into the outbox. The version of that change, or null
 * when the binding had already ended (another instance got there first).
 */
async function endBinding(conn: PoolConnection, id: string, state: 'expired' | 'unbound', now: number): Promise<number | null> {
  const [rows] = await conn.query<RowDataPacket[]>("SELECT id FROM bindings WHERE id = ? AND state = 'active' FOR UPDATE", [id]);
  if (!rows[0]) return null;
  await conn.query('DELETE FROM binding_members WHERE binding_id = ?', [id]);
  await conn.query('UPDATE bindings SET state = ?, updated_at = ? WHERE id = ?', [state, toDate(now), id]);
  return recordRouteChange(conn, id);
}

export class BindingStore {
  constructor(private readonly pool: Pool) {}

  /**
   * Writes a binding on X with its members and its outbox row. Throws XRefused when X cannot take
   * it (explicit: x_not_in_pool / x_unavailable instead when X is not an enabled number of the pool).
   */
  async insertOn(x: string, d: BindingDraft, now: number, explicit: boolean): Promise<{ binding: Binding; version: number }> {
    const members = membersOf(d.mode, d.a, d.b, d.extension ?? null);
    const id = randomUUID();
    const version = await inTransaction(this.pool, async (conn) => {
      // AXB binds on one X run side by side (shared lock); an XB waits for them and they for it.
      const lock = d.mode === 'xb' ? 'FOR UPDATE' : 'LOCK IN SHARE MODE';
      const [pool] = await conn.query<RowDataPacket[]>(
        `SELECT p.tenant_id, p.state, EXISTS (SELECT 1 FROM binding_members m WHERE m.x = p.x AND m.expires_at <= ?) AS has_expired
           FROM pool_numbers p WHERE p.x = ? ${lock}`,
        [toDate(now), x],
      );
      const row = pool[0];
      if (!row || row.tenant_id !== d.tenantId) {
        if (explicit) throw new ConflictError('x_not_in_pool', 'x is not a number of this tenant’s pool', 'x');
        throw new XRefused();
      }
      if (row.state !== 'enabled') {
        if (explicit) throw new ConflictError('x_unavailable', `x is ${String(row.state)}`, 'x');
        throw new XRefused();
      }
      // Expired bindings on this X give their numbers back now, not when the cleanup runs.
      if (Number(row.has_expired)) {
        const [expired] = await conn.query<RowDataPacket[]>(
          'SELECT DISTINCT binding_id FROM binding_members WHERE x = ? AND expires_at <= ?',
          [x, toDate(now)],
        );
        for (const e of expired) await endBinding(conn, String(e.binding_id), 'expired', now);
      }

      // X's pool row is locked: the version of this change comes after every change it could conflict with.
      const version = await recordNewBinding(conn, id);
      try {
        await conn.query(
          `INSERT INTO bindings (id, tenant_id, request_id, kind, x, a, b, extension, restriction, record_call, max_duration, announcement,
             allow_list, state, expires_at, user_data, created_at, updated_at, route_version, end_warning_seconds)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?)`,
          [
            id, d.tenantId, d.requestId ?? null, d.mode, x, d.a, d.b, d.extension ?? null, d.restriction ?? 'both', d.record ?? false,
            d.maxDurationSeconds ?? null, d.announcement ?? null, JSON.stringify(d.allowList), toDate(d.expiresAt),
            d.userData ?? null, toDate(now), toDate(now), version, d.endWarningSeconds ?? null,
          ],
        );
        await conn.query('INSERT INTO binding_members (x, number, binding_id, expires_at) VALUES ?', [
          members.map((n) => [x, n, id, toDate(d.expiresAt)]),
        ]);
      } catch (err) {
        if (isConstraintClash(err)) throw new XRefused();
        throw err;
      }
      return version;
    });
    const binding: Binding = {
      id,
      tenantId: d.tenantId,
      requestId: d.requestId ?? null,
      kind: d.mode,
      x,
      a: d.a,
      b: d.b,
      extension: d.extension ?? null,
      state: 'active',
      expiresAt: d.expiresAt,
      restriction: d.restriction ?? 'both',
      record: d.record ?? false,
      maxDurationSeconds: d.maxDurationSeconds ?? null,
      endWarningSeconds: d.endWarningSeconds ?? null,
      announcement: d.announcement ?? null,
      allowList: d.allowList,
      userData: d.userData ?? null,
    };
    return { binding, version };
  }

  /** Ends an active binding now (unbound); false when it had already ended. */
  async end(binding: Binding, now: number): Promise<boolean> {
    const version = await inTransaction(this.pool, async (conn) => {
      await conn.query('SELECT x FROM pool_numbers WHERE x = ? FOR UPDATE', [binding.x]);
      return endBinding(conn, binding.id, 'unbound', now);
    });
    return version !== null;
  }

  /**
   * Marks bindings past their expiry as expired and releases their members, oldest first, up to
   * `limit`. Routing never waited for this (the index checks each route's expiry); it keeps history right.
   */
  async expireDue(now: number = Date.now(), limit = 1000): Promise<ExpiredBinding[]> {
    const [due] = await this.pool.query<RowDataPacket[]>(
      "SELECT id, tenant_id, x, expires_at FROM bindings WHERE state = 'active' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
      [toDate(now), limit],
    );
    const expired: ExpiredBinding[] = [];
    for (const row of due) {
      // Routing stopped at the expiry already (the index checks it); the outbox takes the routes away.
      const ended = await inTransaction(this.pool, async (conn) => {
        await conn.query('SELECT x FROM pool_numbers WHERE x = ? FOR UPDATE', [row.x]);
        return endBinding(conn, String(row.id), 'expired', now);
      });
      if (ended !== null) expired.push({ id: String(row.id), tenantId: String(row.tenant_id), expiresAt: (row.expires_at as Date).getTime() });
    }
    return expired;
  }

  /**
   * Writes an update: the members again (checked by the database as on bind), the row, its history
   * entry and its outbox row. Returns the version of the change.
   */
  async rewrite(before: Binding, after: Binding, change: Record<string, [unknown, unknown]>, actor: string, requestId: string | undefined, now: number): Promise<number> {
    const { id, tenantId } = before;
    const { a, b, expiresAt } = after;
    try {
      return await inTransaction(this.pool, async (conn) => {
        await conn.query(`SELECT x FROM pool_numbers WHERE x = ? ${before.kind === 'xb' ? 'FOR UPDATE' : 'LOCK IN SHARE MODE'}`, [before.x]);
        const [rows] = await conn.query<RowDataPacket[]>("SELECT id FROM bindings WHERE id = ? AND state = 'active' FOR UPDATE", [id]);
        if (!rows[0]) throw new ConflictError('binding_ended', 'the binding has ended', 'id');
        await conn.query('DELETE FROM binding_members WHERE binding_id = ?', [id]);
        await conn.query('INSERT INTO binding_members (x, number, binding_id, expires_at) VALUES ?', [
          membersOf(before.kind as BindingMode, a, b, before.extension ?? null).map((n) => [before.x, n, id, toDate(expiresAt)]),
        ]);
        await conn.query(
          `UPDATE bindings SET a = ?, b = ?, expires_at = ?, restriction = ?, record_call = ?, max_duration = ?, announcement = ?, updated_at = ?,
                end_warning_seconds = ?
            WHERE id = ?`,
          [a, b, toDate(expiresAt), after.restriction, after.record, after.maxDurationSeconds, after.announcement, toDate(now), after.endWarningSeconds, id],
        );
        await conn.query('INSERT INTO binding_history (binding_id, tenant_id, change_json, actor, request_id, created_at) VALUES (?, ?, ?, ?, ?, ?)', [
          id, tenantId, JSON.stringify(change), actor, requestId ?? null, toDate(now),
        ]);
        return recordRouteChange(conn, id, before);
      });
    } catch (err) {
      if (isConstraintClash(err)) throw new ConflictError('binding_conflict', 'x already carries one of these numbers', 'x');
      throw err;
    }
  }

  async get(tenantId: string, id: string): Promise<Binding | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM bindings WHERE id = ? AND tenant_id = ?', [id, tenantId]);
    return rows[0] ? rowToBinding(rows[0]) : null;
  }

  /** The binding with the version of its last routing change. */
  async getVersioned(tenantId: string, id: string): Promise<(Binding & VersionedBinding) | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM bindings WHERE id = ? AND tenant_id = ?', [id, tenantId]);
    return rows[0] ? versionedBinding(rows[0]) : null;
  }

  async findByRequest(tenantId: string, requestId: string): Promise<(Binding & VersionedBinding) | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM bindings WHERE tenant_id = ? AND request_id = ?', [tenantId, requestId]);
    return rows[0] ? versionedBinding(rows[0]) : null;
  }

  /** Every binding that routes now (all tenants), with its version: what the routing index is rebuilt from. */
  async listActive(now: number = Date.now()): Promise<Array<Binding & VersionedBinding>> {
    const [rows] = await this.pool.query<RowDataPacket[]>("SELECT * FROM bindings WHERE state = 'active' AND expires_at > ?", [toDate(now)]);
    return rows.map(versionedBinding);
  }

  /** The active bindings a page at a time (by id), so that a caller can go on with other work between pages. */
  async *listActivePages(now: number = Date.now(), pageSize = 2000): AsyncGenerator<Array<Binding & VersionedBinding>> {
    let after = '';
    for (;;) {
      const [rows] = await this.pool.query<RowDataPacket[]>(
        "SELECT * FROM bindings WHERE id > ? AND state = 'active' AND expires_at > ? ORDER BY id LIMIT ?",
        [after, toDate(now), pageSize],
      );
      if (rows.length === 0) return;
      yield rows.map(versionedBinding);
      if (rows.length < pageSize) return;
      after = String(rows[rows.length - 1]?.id);
    }
  }

  async mediaExists(id: string): Promise<boolean> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT 1 FROM media_catalogue WHERE id = ?', [id]);
    return rows.length > 0;
  }

  /** What changed in a binding, oldest first (numbers masked). */
  async history(
    tenantId: string,
    id: string,
  ): Promise<Array<{ at: number; actor: string; requestId: string | null; change: Record<string, [unknown, unknown]> }>> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT change_json, actor, request_id, created_at FROM binding_history WHERE binding_id = ? AND tenant_id = ? ORDER BY id',
      [id, tenantId],
    );
    return rows.map((r) => ({
      at: toMsStrict(r.created_at),
      actor: String(r.actor),
      requestId: r.request_id === null ? null : String(r.request_id),
      change: (typeof r.change_json === 'string' ? JSON.parse(r.change_json) : r.change_json) as Record<string, [unknown, unknown]>,
    }));
  }

  /**
   * A page of a tenant's bindings, newest first, filtered by a number (as A or B), X, state or userData. `nextCursor`
   * (opaque) fetches the next page; null on the last one. Keyset paging on (created_at, id), so
   * bindings created meanwhile neither repeat nor shift a page.
   */
  async listPage(
    tenantId: string,
    q: { number?: string; x?: string; state?: BindingState; userData?: string; limit?: number; cursor?: string } = {},
  ): Promise<{ items: Binding[]; nextCursor: string | null }> {
    const where = new SqlConditions('tenant_id = ?', tenantId);
    if (q.number !== undefined) {
      const n = parseRealNumber(q.number, 'number');
      where.and('(a = ? OR b = ?)', n, n);
    }
    where
      .andIf(q.x, 'x = ?', (x) => parsePrivacyNumber(x, 'x', true))
      .andIf(q.state, 'state = ?')
      .andIf(q.userData, 'user_data = ?');
    return newestFirstPage(this.pool, {
      select: 'SELECT * FROM bindings',
      where,
      timeColumn: 'created_at',
      idColumn: 'id',
      ids: 'uuid',
      limit: checkedPageLimit(q.limit, 100, 500),
      cursor: q.cursor,
      toItem: rowToBinding,
    });
  }
}
