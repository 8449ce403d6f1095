import type { RowDataPacket } from 'mysql2/promise';
import type { CallKind, CdrRecord } from '../domain/call';
import { toDate, toMsStrict, type Pool } from './mysql';
import type { CallOutcome } from './call-outcome';

/**
 * Gives a call to X that the routing path could not tie to a binding (unbound: the index had no
 * route for the caller) to the tenant owning X, read from the pool, and names the caller's binding
 * on X when there was one: a binding past its expiry makes the result `expired`, one that was
 * unbound stays `unbound`. Runs in the CDR writer (durable, retried while MySQL is down), so the
 * routing path itself never waits on MySQL; a whole batch of CDRs at once, in at most two queries
 * (none when no CDR of the batch needs it).
 *
 * A CDR that already has a tenant is left as it is. X in nobody's pool leaves the CDR without a
 * tenant: it is listed to no one.
 */
export function refusalAttribution(pool: Pool): (outcomes: readonly CallOutcome[]) => Promise<readonly CallOutcome[]> {
  return async (outcomes) => {
    const refused = outcomes.filter((o) => needsOwner(o.cdr));
    if (refused.length === 0) return outcomes;
    const [owners] = await pool.query<RowDataPacket[]>('SELECT x, tenant_id FROM pool_numbers WHERE x IN (?)', [
      [...new Set(refused.map((o) => o.cdr.x))],
    ]);
    const ownerOf = new Map(owners.map((r) => [String(r.x), String(r.tenant_id)]));
    const owned = outcomes.map((o) => {
      const owner = needsOwner(o.cdr) ? ownerOf.get(o.cdr.x) : undefined;
      return owner === undefined ? o : { ...o, cdr: { ...o.cdr, tenantId: owner } };
    });
    const ended = await endedBindings(pool, owned.map((o, i) => (o !== outcomes[i] && mayNameEndedBinding(o.cdr) ? o.cdr : null)));
    return owned.map((o, i) => {
      const found = ended.get(i);
      return found ? { ...o, cdr: { ...o.cdr, ...found } } : o;
    });
  };
}

const needsOwner = (cdr: CdrRecord): boolean => cdr.tenantId === '' && cdr.x !== '' && cdr.kind !== 'click_to_dial';
const mayNameEndedBinding = (cdr: CdrRecord): boolean => cdr.result === 'unbound' && cdr.bindingId === null && cdr.a !== '';

/**
 * For each CDR given (null: skip it), the caller's latest binding on X (or X's XB binding) that no longer
 * routed when the call came, if any; keyed by the CDR's index.
 */
async function endedBindings(pool: Pool, cdrs: ReadonlyArray<CdrRecord | null>): Promise<Map<number, Partial<CdrRecord>>> {
  const found = new Map<number, Partial<CdrRecord>>();
  const asked = cdrs.flatMap((cdr, i) => (cdr ? [{ i, cdr }] : []));
  if (asked.length === 0) return found;
  const caller = 'SELECT ? AS i, ? AS x, ? AS tenant_id, ? AS caller, CAST(? AS DATETIME(3)) AS started_at';
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT i, id, kind, state, expires_at FROM (
       SELECT v.i, b.id, b.kind, b.state, b.expires_at, ROW_NUMBER() OVER (PARTITION BY v.i ORDER BY b.expires_at DESC) AS n
         FROM (${asked.map(() => caller).join(' UNION ALL ')}) v
         JOIN bindings b ON b.x = v.x AND b.tenant_id = v.tenant_id AND (b.a = v.caller OR b.b = v.caller OR b.kind = 'xb')
                        AND b.created_at <= v.started_at
     ) latest WHERE n = 1`,
    asked.flatMap(({ i, cdr }) => [i, cdr.x, cdr.tenantId, cdr.a, toDate(cdr.startedAt)]),
  );
  for (const row of rows) {
    const cdr = cdrs[Number(row.i)];
    if (!cdr) continue;
    const expired = row.state === 'expired' || (row.state === 'active' && toMsStrict(row.expires_at) <= cdr.startedAt);
    if (!expired && row.state !== 'unbound') continue;
    found.set(Number(row.i), { bindingId: String(row.id), kind: row.kind as CallKind, result: expired ? 'expired' : 'unbound' });
  }
  return found;
}
