import type { PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { membersOf, XB_HOLD, type Binding } from '../domain/binding-rules';
import type { BindingDraft } from './binding-store';
import { toDate, type Pool } from './mysql';
import { recordEndedAndNewBindings, recordRouteChanges, versionedBinding } from './route-outbox';
import type { VersionedBinding } from './route-index';
import { inTransaction } from './transaction';

/**
 * The SQL of group commit: many AXB binds read in a few queries and written in one transaction
 * (multi-row INSERTs of bindings, members and outbox rows, one commit). MySQL still holds the
 * reuse invariant by itself (migration 002): the members are written with INSERT IGNORE, so a
 * member another bind took meanwhile leaves only its own binding out of the batch, never the others.
 */

/** One bind of a batch, with its X chosen. */
export interface BatchEntry {
  readonly id: string;
  readonly x: string;
  readonly draft: BindingDraft;
  /** When the bind was asked (created_at). */
  readonly now: number;
}

/** What a batch write did: the bindings written with their versions, and those left out and why. */
export interface BatchWrite {
  readonly written: ReadonlyMap<string, number>;
  /** X is not (or no longer) an enabled number of the tenant's pool. */
  readonly xRefused: ReadonlySet<string>;
  /** A member was taken meanwhile (the (x, number) key): allocate again. */
  readonly clashed: ReadonlySet<string>;
  /** Another bind with the same requestId got there first: answer as a replay. */
  readonly duplicateRequest: ReadonlySet<string>;
}

/** An XB binding holds one of these X (the trigger of migration 002 refused a member): the whole batch was rolled back. */
export class XbHoldClash extends Error {}

/** The XB trigger of migration 002 (SIGNAL SQLSTATE '45000'). */
const ER_SIGNAL_EXCEPTION = 1644;

/** An enabled number of a tenant's pool, in x order. */
export interface PoolSlot {
  readonly x: string;
  readonly area: string;
}

export class BindBatchStore {
  constructor(private readonly pool: Pool) {}

  /** Bindings already made under these requestIds, by `${tenantId}|${requestId}`. */
  async findByRequests(keys: ReadonlyArray<readonly [string, string]>): Promise<Map<string, Binding & VersionedBinding>> {
    if (keys.length === 0) return new Map();
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM bindings WHERE (tenant_id, request_id) IN (?)', [keys.map((k) => [k[0], k[1]])]);
    return new Map(rows.map((r) => [`${String(r.tenant_id)}|${String(r.request_id)}`, versionedBinding(r)]));
  }

  /**
   * What new AXB bindings are screened for and placed by, in one round trip: which numbers are
   * blacklisted for which tenant (`${tenantId}|${number}`, the platform's list counting for every
   * tenant), how many bindings each pair (either way round, `${tenantId}|${low}|${high}`) had
   * since `since`, and where the numbers are held at `now` (as heldOn).
   */
  async screen(
    numbers: ReadonlyArray<readonly [string, string]>,
    pairs: ReadonlyArray<readonly [string, string, string]>,
    since: number,
    now: number,
  ): Promise<{ listed: Set<string>; pairBindings: Map<string, number>; held: Map<string, Set<string>> }> {
    const listed = new Set<string>();
    const pairBindings = new Map<string, number>();
    const held = new Map<string, Set<string>>();
    if (numbers.length === 0) return { listed, pairBindings, held };
    const tenants = [...new Set(numbers.map(([t]) => t))];
    const parts = ["SELECT 'listed' AS k, tenant_id AS t, number AS v, NULL AS w, 0 AS c FROM blacklist WHERE tenant_id IN (?) AND number IN (?)"];
    const distinctNumbers = [...new Set(numbers.map(([, n]) => n))];
    const params: unknown[] = [[...tenants, ''], distinctNumbers];
    parts.push("SELECT 'held', NULL, number, x, 0 FROM binding_members WHERE number IN (?) AND expires_at > ?");
    params.push(distinctNumbers, toDate(now));
    if (pairs.length > 0) {
      parts.push("SELECT 'pair', tenant_id, a, b, COUNT(*) FROM bindings WHERE (tenant_id, a, b) IN (?) AND created_at > ? GROUP BY tenant_id, a, b");
      params.push(pairs.flatMap(([t, a, b]) => [[t, a, b], [t, b, a]]), toDate(since));
    }
    const [rows] = await this.pool.query<RowDataPacket[]>(parts.join(' UNION ALL '), params);
    for (const r of rows) {
      if (r.k === 'listed') {
        const number = String(r.v);
        if (r.t === '') for (const t of tenants) listed.add(`${t}|${number}`);
        else listed.add(`${String(r.t)}|${number}`);
      } else if (r.k === 'held') {
        addHeld(held, String(r.v), String(r.w));
      } else {
        const [low, high] = [String(r.v), String(r.w)].sort();
        const key = `${String(r.t)}|${low}|${high}`;
        pairBindings.set(key, (pairBindings.get(key) ?? 0) + Number(r.c));
      }
    }
    return { listed, pairBindings, held };
  }

  /** Where these numbers are held now: number -> the X carrying it in an active binding. */
  async heldOn(numbers: readonly string[], now: number): Promise<Map<string, Set<string>>> {
    const held = new Map<string, Set<string>>();
    if (numbers.length === 0) return held;
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT number, x FROM binding_members WHERE number IN (?) AND expires_at > ?', [
      [...new Set(numbers)],
      toDate(now),
    ]);
    for (const r of rows) addHeld(held, String(r.number), String(r.x));
    return held;
  }

  /** A tenant's enabled numbers in x order, and those of them an XB binding holds alone (x -> until when). */
  async poolView(tenantId: string, now: number): Promise<{ slots: PoolSlot[]; xbHeld: Map<string, number> }> {
    const [[slots], [xb]] = await Promise.all([
      this.pool.query<RowDataPacket[]>("SELECT x, area FROM pool_numbers WHERE tenant_id = ? AND state = 'enabled' ORDER BY x", [tenantId]),
      this.pool.query<RowDataPacket[]>(
        'SELECT m.x, m.expires_at FROM binding_members m JOIN pool_numbers p ON p.x = m.x WHERE m.number = ? AND m.expires_at > ? AND p.tenant_id = ?',
        [XB_HOLD, toDate(now), tenantId],
      ),
    ]);
    return {
      slots: slots.map((r) => ({ x: String(r.x), area: String(r.area) })),
      xbHeld: new Map(xb.map((r) => [String(r.x), (r.expires_at as Date).getTime()])),
    };
  }

  /**
   * Writes AXB bindings in one transaction: X's pool rows locked shared (as a single bind does),
   * the expired bindings on those X ended (their numbers come back now), one outbox row each (its
   * id the binding's version, taken after the locks), then the bindings and their members in
   * multi-row INSERTs. A binding whose member clashes is taken out again inside the transaction;
   * the others commit. Throws XbHoldClash (everything rolled back) when an XB holds one of the X.
   */
  async insertBatch(entries: readonly BatchEntry[], now: number): Promise<BatchWrite> {
    try {
      return await inTransaction(this.pool, (conn) => this.write(conn, entries, now));
    } catch (err) {
      if ((err as { errno?: number }).errno === ER_SIGNAL_EXCEPTION) throw new XbHoldClash();
      throw err;
    }
  }

  /** Drops outbox rows whose changes the index has taken. */
  async dropOutboxRows(versions: readonly number[]): Promise<void> {
    if (versions.length > 0) await this.pool.query('DELETE FROM route_outbox WHERE id IN (?)', [versions]);
  }

  private async write(conn: PoolConnection, entries: readonly BatchEntry[], now: number): Promise<BatchWrite> {
    const xs = [...new Set(entries.map((e) => e.x))].sort();
    const [poolRows] = await conn.query<RowDataPacket[]>(
      `SELECT p.x, p.tenant_id, p.state, EXISTS (SELECT 1 FROM binding_members m WHERE m.x = p.x AND m.expires_at <= ?) AS has_expired
         FROM pool_numbers p WHERE p.x IN (?) ORDER BY p.x LOCK IN SHARE MODE`,
      [toDate(now), xs],
    );
    const pool = new Map(poolRows.map((r) => [String(r.x), r]));
    const xRefused = new Set<string>();
    const usable = entries.filter((e) => {
      const row = pool.get(e.x);
      const ok = row !== undefined && row.tenant_id === e.draft.tenantId && row.state === 'enabled';
      if (!ok) xRefused.add(e.id);
      return ok;
    });
    const empty = { written: new Map<string, number>(), xRefused, clashed: new Set<string>(), duplicateRequest: new Set<string>() };
    if (usable.length === 0) return empty;
    const withExpired = poolRows.filter((r) => Number(r.has_expired)).map((r) => String(r.x));
    if (withExpired.length > 0) await endExpiredOn(conn, withExpired, now);

    // X's pool rows are locked: these versions come after every change they could conflict with.
    const versions = await recordEndedAndNewBindings(conn, [], usable.map((e) => e.id));
    const [inserted] = await conn.query<ResultSetHeader>(
      `INSERT IGNORE INTO bindings (id, tenant_id, request_id, kind, x, a, b, restriction, record_call, max_duration, announcement,
         allow_list, state, expires_at, user_data, created_at, updated_at, route_version, end_warning_seconds) VALUES ?`,
      [
        usable.map(({ id, x, draft: d, now: at }) => [
          id, d.tenantId, d.requestId ?? null, d.mode, x, d.a, d.b, d.restriction ?? 'both', d.record ?? false, d.maxDurationSeconds ?? null,
          d.announcement ?? null, JSON.stringify(d.allowList), 'active', toDate(d.expiresAt), d.userData ?? null, toDate(at), toDate(at),
          versions.get(id) ?? 0, d.endWarningSeconds ?? null,
        ]),
      ],
    );
    // The only row a valid binding can be ignored for is its requestId's: made meanwhile by another bind.
    const duplicateRequest = new Set<string>();
    if (inserted.affectedRows < usable.length) {
      const [present] = await conn.query<RowDataPacket[]>('SELECT id FROM bindings WHERE id IN (?)', [usable.map((e) => e.id)]);
      const there = new Set(present.map((r) => String(r.id)));
      for (const e of usable) if (!there.has(e.id)) duplicateRequest.add(e.id);
    }
    const rows = usable.filter((e) => !duplicateRequest.has(e.id));
    const members = rows.flatMap((e) => membersOf(e.draft.mode, e.draft.a, e.draft.b).map((n) => [e.x, n, e.id, toDate(e.draft.expiresAt)]));
    const clashed = new Set<string>();
    if (members.length > 0) {
      const [added] = await conn.query<ResultSetHeader>('INSERT IGNORE INTO binding_members (x, number, binding_id, expires_at) VALUES ?', [members]);
      if (added.affectedRows < members.length) {
        // Someone holds (x, number) already: that binding, and only it, is taken out again.
        const [mine] = await conn.query<RowDataPacket[]>('SELECT binding_id, COUNT(*) AS n FROM binding_members WHERE binding_id IN (?) GROUP BY binding_id', [
          rows.map((e) => e.id),
        ]);
        const count = new Map(mine.map((r) => [String(r.binding_id), Number(r.n)]));
        for (const e of rows) if ((count.get(e.id) ?? 0) < membersOf(e.draft.mode, e.draft.a, e.draft.b).length) clashed.add(e.id);
        // By primary key (never a range of a secondary index), so no gap is locked against other batches' inserts.
        const out = rows.filter((e) => clashed.has(e.id));
        const keys = out.flatMap((e) => membersOf(e.draft.mode, e.draft.a, e.draft.b).map((n) => [e.x, n]));
        await conn.query('DELETE FROM binding_members WHERE (x, number) IN (?) AND binding_id IN (?)', [keys, out.map((e) => e.id)]);
        await conn.query('DELETE FROM bindings WHERE id IN (?)', [out.map((e) => e.id)]);
      }
    }
    const left = [...duplicateRequest, ...clashed].map((id) => versions.get(id) ?? 0);
    if (left.length > 0) await conn.query('DELETE FROM route_outbox WHERE id IN (?)', [left]);
    const written = new Map<string, number>();
    for (const e of rows) if (!clashed.has(e.id)) written.set(e.id, versions.get(e.id) ?? 0);
    return { written, xRefused, clashed, duplicateRequest };
  }
}

function addHeld(held: Map<string, Set<string>>, number: string, x: string): void {
  let xs = held.get(number);
  if (!xs) held.set(number, (xs = new Set()));
  xs.add(x);
}

/** Ends the bindings past their expiry on these X (locked by the caller), as a single bind does for its X. */
async function endExpiredOn(conn: PoolConnection, xs: readonly string[], now: number): Promise<void> {
  const [due] = await conn.query<RowDataPacket[]>('SELECT DISTINCT binding_id FROM binding_members WHERE x IN (?) AND expires_at <= ?', [xs, toDate(now)]);
  if (due.length === 0) return;
  const [active] = await conn.query<RowDataPacket[]>("SELECT id FROM bindings WHERE id IN (?) AND state = 'active' FOR UPDATE", [due.map((r) => String(r.binding_id))]);
  const ids = active.map((r) => String(r.id));
  await conn.query('DELETE FROM binding_members WHERE binding_id IN (?)', [due.map((r) => String(r.binding_id))]);
  if (ids.length === 0) return;
  await conn.query("UPDATE bindings SET state = 'expired', updated_at = ? WHERE id IN (?)", [toDate(now), ids]);
  await recordRouteChanges(conn, ids);
}
