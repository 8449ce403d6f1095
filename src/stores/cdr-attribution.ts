import type { RowDataPacket } from 'mysql2/promise';
import type { CallKind, CdrRecord } from '../domain/call';
import { toDate, toMsStrict, type Pool } from './mysql';
import type { CallOutcome } from './call-outcome';

/**
 * Gives a call to X that the routing path could not tie to a binding (unbound: the index had no
 * route for the caller) to the tenant owning X, read from the pool, and names the caller's binding
 * on X when there was one: a binding past its expiry makes the result `expired`, one that was
 * unbound stays `unbound`. Runs in the CDR writer (durable, retried while MySQL is down), so the
 * routing path itself never waits on MySQL.
 *
 * A CDR that already has a tenant is left as it is. X in nobody's pool leaves the CDR without a
 * tenant: it is listed to no one.
 */
export function refusalAttribution(pool: Pool): (outcome: CallOutcome) => Promise<CallOutcome> {
  return async (outcome) => {
    const cdr = outcome.cdr;
    if (cdr.tenantId !== '' || cdr.x === '' || cdr.kind === 'click_to_dial') return outcome;
    const [owners] = await pool.execute<RowDataPacket[]>('SELECT tenant_id FROM pool_numbers WHERE x = ?', [cdr.x]);
    const owner = owners[0] ? String(owners[0].tenant_id) : null;
    if (owner === null) return outcome;
    const attributed: CdrRecord = { ...cdr, tenantId: owner, ...(cdr.result === 'unbound' && cdr.bindingId === null && cdr.a ? await endedBinding(pool, owner, cdr) : {}) };
    return { ...outcome, cdr: attributed };
  };
}

/** The caller's latest binding on X (or X's XB binding) that no longer routed when the call came, if any. */
async function endedBinding(pool: Pool, tenantId: string, cdr: CdrRecord): Promise<Partial<CdrRecord>> {
  const [rows] = await pool.execute<RowDataPacket[]>(
    `SELECT id, kind, state, expires_at FROM bindings
      WHERE x = ? AND tenant_id = ? AND (a = ? OR b = ? OR kind = 'xb') AND created_at <= ?
      ORDER BY expires_at DESC LIMIT 1`,
    [cdr.x, tenantId, cdr.a, cdr.a, toDate(cdr.startedAt)],
  );
  const row = rows[0];
  if (!row) return {};
  const expired = row.state === 'expired' || (row.state === 'active' && toMsStrict(row.expires_at) <= cdr.startedAt);
  if (!expired && row.state !== 'unbound') return {};
  return { bindingId: String(row.id), kind: row.kind as CallKind, result: expired ? 'expired' : 'unbound' };
}
