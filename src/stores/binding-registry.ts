import { randomUUID } from 'node:crypto';
import type { PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { ALLOW_LIST_MAX, bindingTtlSeconds, callbackMayTake, membersOf, XB_HOLD, type Binding, type BindingMode, type BindingState, type CallRestriction } from '../domain/binding-rules';
import { AppError, ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../domain/errors';
import { parseMediaId } from '../domain/media';
import { maskPhone, parsePrivacyNumber, parseRealNumber } from '../domain/phone-number';
import { isDuplicateKey, toDate, toMsStrict, type Pool } from './mysql';
import type { RouteIndex, VersionedBinding } from './route-index';
import { recordRouteChange, recordRouteChanges, RouteOutbox, versionedBinding } from './route-outbox';
import { rowToBinding } from './binding-rows';
import { inTransaction, isRetryableTransactionError } from './transaction';
import type { CallbackBindingInput } from './call-outcome';

/**
 * Bindings and the number pool in MySQL, with the reuse invariant held by the database
 * (migration 002): every bind locks its X's pool row (shared for AXB, exclusive for XB),
 * releases members that have expired on that X (so capacity returns at once, whatever the
 * cleanup is doing), then writes the binding's members; a clash on (x, number) or with the
 * XB trigger is a conflict.
 */
export interface NewBinding {
  readonly tenantId: string;
  readonly requestId?: string;
  readonly mode: BindingMode;
  /** AXB only. */
  readonly a?: string;
  readonly b: string;
  /** An explicit X; otherwise one is allocated from the tenant's pool. */
  readonly x?: string;
  /** Preferred area for allocation; with strictArea, no fallback to other areas. */
  readonly area?: string;
  readonly strictArea?: boolean;
  readonly ttlSeconds?: number;
  readonly restriction?: CallRestriction;
  readonly record?: boolean;
  readonly maxDurationSeconds?: number;
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
  readonly announcement?: string | null;
}

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

/** The XB trigger of migration 002 (SIGNAL SQLSTATE '45000'). */
const ER_SIGNAL_EXCEPTION = 1644;
const ALLOCATION_TRIES = 20;
const PAIR_BINDINGS_PER_HOUR = 30;
const CANDIDATES_AFTER_CLASH = 8;

class Clash extends Error {}

/**
 * Records click-to-dial callback bindings (B redials X and reaches A) under the reuse invariant:
 * the member (X, B) is written like any binding's. A newer callback replaces an older one for
 * the same (X, B) (B reaches the agent who called last); a callback never displaces an AXB or
 * XB binding on X, and is then kept only as history, never routable. Idempotent by id.
 * Runs inside the caller's transaction (the CDR batch).
 */
export async function writeCallbackBindings(conn: PoolConnection, bindings: readonly CallbackBindingInput[], now: number): Promise<void> {
  // A batch holds thousands of calls: a fixed number of statements for all of them, not per binding.
  const [known] = await conn.query<RowDataPacket[]>('SELECT id FROM bindings WHERE id IN (?)', [bindings.map((b) => b.id)]);
  const knownIds = new Set(known.map((r) => String(r.id)));
  const fresh = bindings.filter((b) => !knownIds.has(b.id));
  if (fresh.length === 0) return;
  const xs = [...new Set(fresh.map((b) => b.x))];
  const [heldRows] = await conn.query<RowDataPacket[]>(
    `SELECT m.x, m.number, m.binding_id, m.expires_at, b.kind FROM binding_members m JOIN bindings b ON b.id = m.binding_id
      WHERE (m.x, m.number) IN (?) OR (m.x IN (?) AND m.number = ?) ORDER BY m.x, m.number FOR UPDATE`,
    [fresh.map((b) => [b.x, b.b]), xs, XB_HOLD],
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
  await conn.query(
    `INSERT INTO bindings (id, tenant_id, kind, x, a, b, state, expires_at, call_id, user_data, created_at, updated_at) VALUES ?`,
    [fresh.map((cb) => [cb.id, cb.tenantId, 'callback', cb.x, cb.a, cb.b, routable.has(cb.id) ? 'active' : cb.expiresAt <= now ? 'expired' : 'unbound', toDate(cb.expiresAt), cb.callId, cb.userData, toDate(now), toDate(now)])],
  );
  const members = fresh.filter((cb) => routable.has(cb.id));
  if (members.length > 0) {
    await conn.query('INSERT INTO binding_members (x, number, binding_id, expires_at) VALUES ?', [members.map((cb) => [cb.x, cb.b, cb.id, toDate(cb.expiresAt)])]);
  }
  // The routes made and ended here reach the index through the outbox (after the locks above, so versions follow them);
  // a callback kept only as history too: the route its call left in Redis as it ended must go.
  await recordRouteChanges(conn, [...ended, ...fresh.map((cb) => cb.id)]);
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

/** Abuse control for a new binding (bindings per number per hour); throws an AppError to refuse. */
export interface BindingAdmission {
  admitBinding(tenantId: string, numbers: { a: string | null; b: string }, now: number): Promise<void>;
  /** Numbers put into an existing binding by an update (bindings per number per hour). */
  admitRebinding?(tenantId: string, added: Readonly<{ a?: string; b?: string }>, now: number): Promise<void>;
  /** The blacklist of this tenant (null: the platform's) changed: drop what is cached of it. */
  blacklistChanged?(tenantId: string | null): void;
}

export interface ExpiredBinding {
  readonly id: string;
  readonly tenantId: string;
  readonly expiresAt: number;
}

export class BindingRegistry {
  private readonly outbox: RouteOutbox | null;

  /**
   * Every change that affects routing is written to MySQL with its outbox row in one transaction.
   * With an index, a request answers only once the index has the change (or 503
   * route_index_unavailable); without one (the CLI) the rows wait for a controller to apply them.
   */
  constructor(
    private readonly pool: Pool,
    index?: RouteIndex,
    private readonly admission?: BindingAdmission,
    options: { routeWriteTimeoutMs?: number } = {},
  ) {
    this.outbox = index ? new RouteOutbox(pool, index, options.routeWriteTimeoutMs ?? 2000) : null;
  }

  /** Applies routing changes left in the outbox (Redis was unreachable, or a process died after its commit); how many. */
  async applyPendingRoutes(): Promise<number> {
    return this.outbox ? this.outbox.applyPending() : 0;
  }

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

  /** Creates an AXB or XB binding. Idempotent by requestId. */
  async bind(input: NewBinding, now: number = Date.now()): Promise<{ binding: Binding; created: boolean }> {
    const b = parseRealNumber(input.b, 'b');
    const a = input.mode === 'axb' ? parseRealNumber(input.a, 'a') : null;
    if (a === b) throw new ValidationError('b', 'a and b must be different numbers', 'same_number');
    const ttl = bindingTtlSeconds(input.ttlSeconds);
    const allowList = (input.allowList ?? []).map((n, i) => parseRealNumber(n, `allowList[${i}]`));
    if (allowList.length > ALLOW_LIST_MAX) {
      throw new ValidationError('allowList', `an allow-list holds at most ${ALLOW_LIST_MAX} numbers`, 'allow_list_too_long');
    }
    if (input.userData && input.userData.length > 256) throw new ValidationError('userData', 'userData is longer than 256 characters', 'too_long');
    if (input.announcement !== undefined) await this.requireMedia(input.announcement);

    if (input.requestId) {
      const existing = await this.findByRequest(input.tenantId, input.requestId);
      if (existing) {
        // A retried bind makes sure the index says what MySQL says, as the first attempt should have.
        await this.outbox?.reassert(existing);
        return { binding: withoutVersion(existing), created: false };
      }
    }
    await this.refuseBlacklistedOrOverPairLimit(
      input.tenantId,
      { a, b, ...Object.fromEntries(allowList.map((n, i) => [`allowList[${i}]`, n])) },
      a === null ? null : [a, b],
      now,
    );
    await this.admission?.admitBinding(input.tenantId, { a, b }, now);
    const members = membersOf(input.mode, a, b);
    const draft = { ...input, a, b, allowList, expiresAt: now + ttl * 1000 };

    if (input.x !== undefined) {
      const x = parsePrivacyNumber(input.x, 'x', true);
      try {
        return { binding: await this.indexed(await this.bindOn(x, draft, members, now, true)), created: true };
      } catch (err) {
        if (err instanceof Clash) throw new ConflictError('binding_conflict', `x already carries one of these numbers, or is held by an XB binding`, 'x');
        throw err;
      }
    }
    for (let attempt = 0; attempt < ALLOCATION_TRIES; attempt++) {
      const candidates = await this.allocate(input.tenantId, input.mode, members, input.area, input.strictArea ?? false, now);
      // First fit; after a clash (a concurrent bind took that X) a random one of the first few
      // free numbers, so that binds racing for the same lowest X spread out instead of queueing.
      const x = attempt === 0 ? candidates[0] : candidates[Math.floor(Math.random() * candidates.length)];
      if (x === undefined) throw new ConflictError('no_number_available', 'no number is free in the pool for these numbers', 'x');
      try {
        return { binding: await this.indexed(await this.bindOn(x, draft, members, now, false)), created: true };
      } catch (err) {
        // Taken meanwhile, or too contended (binds racing on the same lowest X): try another.
        if (!(err instanceof Clash) && !isRetryableTransactionError(err)) throw err;
      }
    }
    throw new AppError('allocation_contended', 'no free number could be taken after several tries; retry');
  }

  /** An announcement is the id of an entry of the operator's catalogue, never text to play. */
  private async requireMedia(id: string): Promise<void> {
    parseMediaId(id, 'announcement');
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT 1 FROM media_catalogue WHERE id = ?', [id]);
    if (!rows[0]) throw new ValidationError('announcement', 'announcement is not an entry of the media catalogue (GET /v1/media)', 'unknown_media');
  }

  /**
   * Ends a binding at once; its row stays as history. Answers only once the binding can no longer
   * route: after the index has taken its routes away, or with route_index_unavailable when the
   * index cannot be reached (the removal stays in the outbox and is applied when it is back). A
   * retried unbind of an ended binding removes its routes again before answering.
   */
  async unbind(tenantId: string, id: string, now: number = Date.now()): Promise<Binding> {
    const binding = await this.get(tenantId, id);
    if (!binding) throw new NotFoundError('binding');
    if (binding.state === 'active') {
      await inTransaction(this.pool, async (conn) => {
        await conn.query('SELECT x FROM pool_numbers WHERE x = ? FOR UPDATE', [binding.x]);
        await endBinding(conn, id, 'unbound', now);
      });
    }
    const ended = await this.getVersioned(tenantId, id);
    if (!ended) throw new NotFoundError('binding');
    await this.outbox?.reassert(ended);
    return withoutVersion(ended);
  }

  /** A binding just written or read in this request: gone now only if deleted underneath, which nothing does. */
  private async mustGet(tenantId: string, id: string): Promise<Binding> {
    const binding = await this.get(tenantId, id);
    if (!binding) throw new NotFoundError('binding');
    return binding;
  }

  private async getVersioned(tenantId: string, id: string): Promise<VersionedBinding & Binding | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM bindings WHERE id = ? AND tenant_id = ?', [id, tenantId]);
    return rows[0] ? versionedBinding(rows[0]) : null;
  }

  /** A binding just committed at this version: answered once the index has it. */
  private async indexed({ binding, version }: { binding: Binding; version: number }): Promise<Binding> {
    await this.outbox?.applyCommitted({ version, binding: { ...binding, routeVersion: version } });
    return binding;
  }

  /**
   * Marks bindings past their expiry as expired and releases their members, oldest first, up to
   * `limit`. Routing never waited for this (members carry their expiry); it keeps history right.
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
   * Changes A or B, the expiry, the restriction, recording, max duration or announcement, keeping
   * the binding's id; the invariant is checked again for changed numbers, and every change is
   * written to the binding's history (numbers masked).
   */
  async update(tenantId: string, id: string, patch: BindingPatch, actor: string, now: number = Date.now(), requestId?: string): Promise<Binding> {
    const before = await this.get(tenantId, id);
    if (!before) throw new NotFoundError('binding');
    if (before.state !== 'active' || before.expiresAt <= now) throw new ConflictError('binding_ended', 'the binding has ended', 'id');
    if (before.kind === 'callback') throw new ConflictError('binding_not_updatable', 'a callback binding cannot be changed', 'id');
    const a = patch.a === undefined ? before.a : parseRealNumber(patch.a, 'a');
    const b = patch.b === undefined ? before.b : parseRealNumber(patch.b, 'b');
    if (before.kind === 'xb' && patch.a !== undefined) throw new ValidationError('a', 'an XB binding has no A', 'unknown_field');
    if (a === b) throw new ValidationError('b', 'a and b must be different numbers', 'same_number');
    if (typeof patch.announcement === 'string') await this.requireMedia(patch.announcement);
    await this.refuseBlacklisted(tenantId, { a, b });
    // A number newly put into a binding counts against its bindings-per-hour limit, as on bind.
    const added = { ...(a !== before.a && a !== null ? { a } : {}), ...(b !== before.b ? { b } : {}) };
    if (Object.keys(added).length > 0) await this.admission?.admitRebinding?.(tenantId, added, now);
    const expiresAt = patch.ttlSeconds === undefined ? before.expiresAt : now + bindingTtlSeconds(patch.ttlSeconds) * 1000;
    const after: Binding = {
      ...before,
      a,
      b,
      expiresAt,
      restriction: patch.restriction ?? before.restriction,
      record: patch.record ?? before.record,
      maxDurationSeconds: patch.maxDurationSeconds === undefined ? before.maxDurationSeconds : patch.maxDurationSeconds,
      announcement: patch.announcement === undefined ? before.announcement : patch.announcement,
    };
    const change: Record<string, [unknown, unknown]> = {};
    for (const key of ['a', 'b', 'expiresAt', 'restriction', 'record', 'maxDurationSeconds', 'announcement'] as const) {
      if (before[key] !== after[key]) {
        const masked = (v: unknown) => (typeof v === 'string' && (key === 'a' || key === 'b') ? maskPhone(v) : v);
        change[key] = [masked(before[key]), masked(after[key])];
      }
    }
    if (Object.keys(change).length === 0) {
      // Nothing to change (a retried update, say): the index still has to say what MySQL says.
      const current = await this.getVersioned(tenantId, id);
      if (current) await this.outbox?.reassert(current);
      return before;
    }
    let version: number;
    try {
      version = await inTransaction(this.pool, async (conn) => {
        await conn.query(`SELECT x FROM pool_numbers WHERE x = ? ${before.kind === 'xb' ? 'FOR UPDATE' : 'LOCK IN SHARE MODE'}`, [before.x]);
        const [rows] = await conn.query<RowDataPacket[]>("SELECT id FROM bindings WHERE id = ? AND state = 'active' FOR UPDATE", [id]);
        if (!rows[0]) throw new ConflictError('binding_ended', 'the binding has ended', 'id');
        await conn.query('DELETE FROM binding_members WHERE binding_id = ?', [id]);
        await conn.query('INSERT INTO binding_members (x, number, binding_id, expires_at) VALUES ?', [
          membersOf(before.kind as BindingMode, a, b).map((n) => [before.x, n, id, toDate(expiresAt)]),
        ]);
        await conn.query(
          `UPDATE bindings SET a = ?, b = ?, expires_at = ?, restriction = ?, record_call = ?, max_duration = ?, announcement = ?, updated_at = ?
            WHERE id = ?`,
          [a, b, toDate(expiresAt), after.restriction, after.record, after.maxDurationSeconds, after.announcement, toDate(now), id],
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
    await this.outbox?.applyCommitted({ version, binding: { ...after, routeVersion: version }, previous: before });
    return this.mustGet(tenantId, id);
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
    const where = ['tenant_id = ?'];
    const params: unknown[] = [tenantId];
    if (q.number !== undefined) {
      const n = parseRealNumber(q.number, 'number');
      where.push('(a = ? OR b = ?)');
      params.push(n, n);
    }
    if (q.x !== undefined) {
      where.push('x = ?');
      params.push(parsePrivacyNumber(q.x, 'x', true));
    }
    if (q.state !== undefined) {
      where.push('state = ?');
      params.push(q.state);
    }
    if (q.userData !== undefined) {
      where.push('user_data = ?');
      params.push(q.userData);
    }
    if (q.cursor !== undefined) {
      const { at, id } = decodeCursor(q.cursor);
      where.push('(created_at < ? OR (created_at = ? AND id < ?))');
      params.push(toDate(at), toDate(at), id);
    }
    const limit = q.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new ValidationError('limit', 'limit must be from 1 to 500', 'invalid_limit');
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT * FROM bindings WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`,
      params,
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const nextCursor = rows.length > limit && last ? encodeCursor(toMsStrict(last.created_at), String(last.id)) : null;
    return { items: page.map(rowToBinding), nextCursor };
  }

  /** Whether a number is on the tenant's blacklist (or, with tenantId null, on the platform's). */
  async blacklistHas(tenantId: string | null, number: string): Promise<boolean> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT 1 FROM blacklist WHERE tenant_id = ? AND number = ?', [
      tenantId ?? '',
      parseRealNumber(number, 'number'),
    ]);
    return rows.length > 0;
  }

  /** Numbers never bound (tenant's list, or the platform's with tenantId null). */
  async blacklistAdd(tenantId: string | null, number: string): Promise<void> {
    await this.pool.query('INSERT IGNORE INTO blacklist (tenant_id, number) VALUES (?, ?)', [tenantId ?? '', parseRealNumber(number, 'number')]);
    this.admission?.blacklistChanged?.(tenantId);
  }

  /** The tenant's blacklist (or the platform's with tenantId null), in number order. */
  async blacklistList(tenantId: string | null): Promise<string[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT number FROM blacklist WHERE tenant_id = ? ORDER BY number', [tenantId ?? '']);
    return rows.map((r) => String(r.number));
  }

  async blacklistRemove(tenantId: string | null, number: string): Promise<void> {
    await this.pool.query('DELETE FROM blacklist WHERE tenant_id = ? AND number = ?', [tenantId ?? '', parseRealNumber(number, 'number')]);
    this.admission?.blacklistChanged?.(tenantId);
  }

  private refuseBlacklisted(tenantId: string, numbers: Record<string, string | null>): Promise<void> {
    return this.refuseBlacklistedOrOverPairLimit(tenantId, numbers, null, Date.now());
  }

  /**
   * Blacklisted numbers are refused; so is the same A-B pair (either way round) bound more than
   * 30 times in an hour (SPEC §7). One query for both: it runs on every bind.
   */
  private async refuseBlacklistedOrOverPairLimit(
    tenantId: string,
    numbers: Record<string, string | null>,
    pair: readonly [string, string] | null,
    now: number,
  ): Promise<void> {
    const entries = Object.entries(numbers).filter((e): e is [string, string] => e[1] !== null);
    const parts: string[] = [];
    const params: unknown[] = [];
    if (entries.length > 0) {
      parts.push("SELECT 'listed' AS k, number AS v FROM blacklist WHERE tenant_id IN (?, '') AND number IN (?)");
      params.push(tenantId, entries.map(([, n]) => n));
    }
    if (pair) {
      parts.push("SELECT 'pair' AS k, COUNT(*) AS v FROM bindings WHERE tenant_id = ? AND ((a = ? AND b = ?) OR (a = ? AND b = ?)) AND created_at > ?");
      params.push(tenantId, pair[0], pair[1], pair[1], pair[0], toDate(now - 3600_000));
    }
    if (parts.length === 0) return;
    const [rows] = await this.pool.query<RowDataPacket[]>(parts.join(' UNION ALL '), params);
    const listed = new Set(rows.filter((r) => r.k === 'listed').map((r) => String(r.v)));
    if (listed.size > 0) {
      const [field] = entries.find(([, n]) => listed.has(n)) ?? ['number'];
      throw new ForbiddenError('number_blacklisted', `${field} is on the blacklist`, field);
    }
    if (Number(rows.find((r) => r.k === 'pair')?.v ?? 0) >= PAIR_BINDINGS_PER_HOUR) {
      throw new AppError('pair_rate_limited', `this pair was bound ${PAIR_BINDINGS_PER_HOUR} times in the last hour`, 'b');
    }
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

  /** Every binding that routes now (all tenants), with the version of its last routing change: what the routing index is rebuilt from. */
  async listActive(now: number = Date.now()): Promise<Array<Binding & VersionedBinding>> {
    const [rows] = await this.pool.query<RowDataPacket[]>("SELECT * FROM bindings WHERE state = 'active' AND expires_at > ?", [toDate(now)]);
    return rows.map(versionedBinding);
  }

  async get(tenantId: string, id: string): Promise<Binding | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM bindings WHERE id = ? AND tenant_id = ?', [id, tenantId]);
    return rows[0] ? rowToBinding(rows[0]) : null;
  }

  private async findByRequest(tenantId: string, requestId: string): Promise<(Binding & VersionedBinding) | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM bindings WHERE tenant_id = ? AND request_id = ?', [tenantId, requestId]);
    return rows[0] ? versionedBinding(rows[0]) : null;
  }

  /**
   * First fit: the lowest X (in a fixed order) where none of the binding's numbers is active.
   * A number with d bindings blocks at most d numbers, so with Δ the largest number of
   * concurrent bindings of any number, an AXB lands within the first 2Δ-1 numbers.
   */
  private async allocate(tenantId: string, mode: BindingMode, members: string[], area: string | undefined, strict: boolean, now: number): Promise<string[]> {
    const free =
      mode === 'xb'
        ? 'NOT EXISTS (SELECT 1 FROM binding_members m WHERE m.x = p.x AND m.expires_at > ?)'
        : 'NOT EXISTS (SELECT 1 FROM binding_members m WHERE m.x = p.x AND m.number IN (?, ?, ?) AND m.expires_at > ?)';
    const params = mode === 'xb' ? [toDate(now)] : [...members, XB_HOLD, toDate(now)];
    const pick = async (inArea: string | undefined): Promise<string[]> => {
      const [rows] = await this.pool.query<RowDataPacket[]>(
        `SELECT p.x FROM pool_numbers p
          WHERE p.tenant_id = ? AND p.state = 'enabled' ${inArea === undefined ? '' : 'AND p.area = ?'} AND ${free}
          ORDER BY p.x LIMIT ${CANDIDATES_AFTER_CLASH}`,
        [tenantId, ...(inArea === undefined ? [] : [inArea]), ...params],
      );
      return rows.map((r) => String(r.x));
    };
    if (area !== undefined) {
      const inArea = await pick(area);
      if (inArea.length) return inArea;
      if (strict) throw new ConflictError('area_unavailable', 'no number is free in the requested area', 'area');
    }
    const anywhere = await pick(undefined);
    if (!anywhere.length) throw new ConflictError('no_number_available', 'no number is free in the pool for these numbers', 'x');
    return anywhere;
  }

  private async bindOn(
    x: string,
    d: Omit<NewBinding, 'a' | 'allowList'> & { a: string | null; b: string; allowList: string[]; expiresAt: number },
    members: string[],
    now: number,
    explicit: boolean,
  ): Promise<{ binding: Binding; version: number }> {
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
        throw new Clash();
      }
      if (row.state !== 'enabled') {
        if (explicit) throw new ConflictError('x_unavailable', `x is ${String(row.state)}`, 'x');
        throw new Clash();
      }
      // Expired bindings on this X give their numbers back now, not when the cleanup runs.
      if (Number(row.has_expired)) {
        const [expired] = await conn.query<RowDataPacket[]>(
          'SELECT DISTINCT binding_id FROM binding_members WHERE x = ? AND expires_at <= ?',
          [x, toDate(now)],
        );
        for (const e of expired) await endBinding(conn, String(e.binding_id), 'expired', now);
      }

      try {
        await conn.query(
          `INSERT INTO bindings (id, tenant_id, request_id, kind, x, a, b, restriction, record_call, max_duration, announcement,
             allow_list, state, expires_at, user_data, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)`,
          [
            id, d.tenantId, d.requestId ?? null, d.mode, x, d.a, d.b, d.restriction ?? 'both', d.record ?? false,
            d.maxDurationSeconds ?? null, d.announcement ?? null, JSON.stringify(d.allowList), toDate(d.expiresAt),
            d.userData ?? null, toDate(now), toDate(now),
          ],
        );
        await conn.query('INSERT INTO binding_members (x, number, binding_id, expires_at) VALUES ?', [
          members.map((n) => [x, n, id, toDate(d.expiresAt)]),
        ]);
      } catch (err) {
        if (isConstraintClash(err)) throw new Clash();
        throw err;
      }
      return recordRouteChange(conn, id);
    });
    const binding: Binding = {
      id,
      tenantId: d.tenantId,
      requestId: d.requestId ?? null,
      kind: d.mode,
      x,
      a: d.a,
      b: d.b,
      state: 'active',
      expiresAt: d.expiresAt,
      restriction: d.restriction ?? 'both',
      record: d.record ?? false,
      maxDurationSeconds: d.maxDurationSeconds ?? null,
      announcement: d.announcement ?? null,
      allowList: d.allowList,
      userData: d.userData ?? null,
    };
    return { binding, version };
  }

}

/** What the API shows of a binding: not the index's version. */
function withoutVersion(b: Binding): Binding {
  return {
    id: b.id, tenantId: b.tenantId, requestId: b.requestId, kind: b.kind, x: b.x, a: b.a, b: b.b, state: b.state, expiresAt: b.expiresAt,
    restriction: b.restriction, record: b.record, maxDurationSeconds: b.maxDurationSeconds, announcement: b.announcement,
    allowList: b.allowList, userData: b.userData,
  };
}

function encodeCursor(at: number, id: string): string {
  return Buffer.from(`${at}|${id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { at: number; id: string } {
  const [, at, id] = /^(\d{1,15})\|([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8')) ?? [];
  if (at === undefined || id === undefined) throw new ValidationError('cursor', 'cursor is not one this API returned', 'invalid_cursor');
  return { at: Number(at), id };
}

function isConstraintClash(err: unknown): boolean {
  return isDuplicateKey(err) || (err as { errno?: number }).errno === ER_SIGNAL_EXCEPTION;
}
