import type { PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { RetryLaterError } from '../domain/errors';
import type { Pool } from './mysql';
import type { IndexableBinding, RouteChange, RouteIndex, VersionedBinding } from './route-index';
import { rowToBinding } from './binding-rows';

/**
 * The durable path from MySQL (the truth) to the Redis route index. Every change that affects
 * routing writes an outbox row in its own transaction; the row's id is the change's version,
 * stored on the binding (route_version) and with its routes in Redis. After the commit the
 * request applies its change and deletes the row; a row left behind (Redis unreachable, the
 * process killed in between) is applied by applyPending, on any controller, as soon as it can be.
 */

/** Records one change made in conn's transaction, after its locks are taken; returns its version. */
export async function recordRouteChange(conn: PoolConnection, bindingId: string, previous: IndexableBinding | null = null): Promise<number> {
  const [res] = await conn.query<ResultSetHeader>('INSERT INTO route_outbox (binding_id, previous) VALUES (?, ?)', [
    bindingId,
    previous === null ? null : JSON.stringify(previous),
  ]);
  await conn.query('UPDATE bindings SET route_version = ? WHERE id = ?', [res.insertId, bindingId]);
  return res.insertId;
}

/**
 * Records the change of a binding this transaction is about to insert (its locks taken); the
 * caller writes the returned version into the new row's route_version, saving an UPDATE.
 */
export async function recordNewBinding(conn: PoolConnection, bindingId: string): Promise<number> {
  const [res] = await conn.query<ResultSetHeader>('INSERT INTO route_outbox (binding_id) VALUES (?)', [bindingId]);
  return res.insertId;
}

/** Records a change for each of these bindings (made in conn's transaction), in one round trip each way. */
export async function recordRouteChanges(conn: PoolConnection, bindingIds: readonly string[]): Promise<void> {
  if (bindingIds.length === 0) return;
  const [res] = await conn.query<ResultSetHeader>('INSERT INTO route_outbox (binding_id) VALUES ?', [bindingIds.map((id) => [id])]);
  await conn.query(
    `UPDATE bindings b JOIN (SELECT binding_id, MAX(id) AS v FROM route_outbox WHERE id >= ? AND binding_id IN (?) GROUP BY binding_id) o
        ON o.binding_id = b.id SET b.route_version = o.v`,
    [res.insertId, bindingIds],
  );
}

/**
 * Whether one multi-row INSERT into route_outbox is given consecutive ids (insertId, insertId + step, …), so that
 * the rows' versions are known without reading them back: InnoDB promises it for a multi-row INSERT … VALUES
 * unless innodb_autoinc_lock_mode is 2 (interleaved). Read once per connection.
 */
const autoIncrementSteps = new WeakMap<object, number | null>();

async function consecutiveIdStep(conn: PoolConnection): Promise<number | null> {
  const key = conn.connection as object;
  if (autoIncrementSteps.has(key)) return autoIncrementSteps.get(key) ?? null;
  const [[row]] = await conn.query<RowDataPacket[]>('SELECT @@innodb_autoinc_lock_mode AS lockMode, @@auto_increment_increment AS step');
  const step = row && Number(row.lockMode) !== 2 ? Number(row.step) : null;
  autoIncrementSteps.set(key, step);
  return step;
}

/**
 * Records the changes of bindings this transaction ended (already written) and of bindings it is about to insert
 * (their locks taken): one outbox row each in one INSERT, the ended first. Returns the version of each new binding,
 * for the caller to write into its row's route_version: a binding born with its version needs no UPDATE.
 */
export async function recordEndedAndNewBindings(
  conn: PoolConnection,
  endedIds: readonly string[],
  newIds: readonly string[],
): Promise<Map<string, number>> {
  const ids = [...endedIds, ...newIds];
  const versions = new Map<string, number>();
  if (ids.length === 0) return versions;
  const step = await consecutiveIdStep(conn);
  const [res] = await conn.query<ResultSetHeader>('INSERT INTO route_outbox (binding_id) VALUES ?', [ids.map((id) => [id])]);
  if (step !== null) {
    ids.forEach((id, i) => versions.set(id, res.insertId + i * step));
  } else {
    // Ids not known to be consecutive: read them back.
    const [rows] = await conn.query<RowDataPacket[]>(
      'SELECT binding_id, MAX(id) AS v FROM route_outbox WHERE id >= ? AND binding_id IN (?) GROUP BY binding_id',
      [res.insertId, ids],
    );
    for (const r of rows) versions.set(String(r.binding_id), Number(r.v));
  }
  if (endedIds.length > 0) {
    await conn.query(
      `UPDATE bindings SET route_version = CASE id ${endedIds.map(() => 'WHEN ? THEN ?').join(' ')} END WHERE id IN (?)`,
      [...endedIds.flatMap((id) => [id, versions.get(id) ?? 0]), endedIds],
    );
  }
  return new Map(newIds.map((id) => [id, versions.get(id) ?? 0]));
}

/** Outbox rows applied per round trip. */
export const OUTBOX_PAGE = 500;

export class RouteOutbox {
  /** Rows applied by applyBatch, waiting for their delete. */
  private readonly applied: number[] = [];
  private dropping = false;
  /**
   * Rows this process is applying, or has applied and is deleting: applyPending leaves them to it
   * rather than apply them a second time (under load most rows it read were these). Another
   * controller still may, harmlessly; a row whose apply or delete fails leaves this set and is applied.
   */
  private readonly own = new Set<number>();

  constructor(
    private readonly pool: Pool,
    private readonly routes: RouteIndex,
    /** How long a request waits for Redis before answering route_index_unavailable. */
    private readonly timeoutMs: number,
  ) {}

  /** Applies a change this request just committed, then drops its row. Throws route_index_unavailable when Redis does not confirm it in time. */
  async applyCommitted(change: RouteChange): Promise<void> {
    this.own.add(change.version);
    try {
      await this.bounded(this.routes.apply([change]));
      await this.pool.query('DELETE FROM route_outbox WHERE id = ?', [change.version]);
    } finally {
      this.own.delete(change.version);
    }
  }

  /**
   * A batch of requests at once (group commit): the changes they committed and the bindings
   * retried requests found, in one round trip to Redis, then the committed rows dropped.
   */
  async applyBatch(committed: readonly RouteChange[], reasserted: readonly VersionedBinding[]): Promise<void> {
    if (committed.length === 0 && reasserted.length === 0) return;
    const versions = committed.map((c) => c.version);
    for (const v of versions) this.own.add(v);
    try {
      await this.bounded(this.routes.apply([...committed, ...reasserted.map((binding) => ({ version: binding.routeVersion, binding }))]));
    } catch (err) {
      for (const v of versions) this.own.delete(v);
      throw err;
    }
    if (versions.length > 0) this.dropApplied(versions);
  }

  /**
   * Housekeeping, not part of the answer: applied rows are deleted one statement at a time, the
   * rows of batches applied meanwhile together in the next. A row left behind (a failed delete,
   * a stop) is applied again, harmlessly, and dropped by applyPending.
   */
  private dropApplied(versions: readonly number[]): void {
    this.applied.push(...versions);
    if (this.dropping) return;
    this.dropping = true;
    void (async () => {
      while (this.applied.length > 0) {
        const ids = this.applied.splice(0, OUTBOX_PAGE);
        await this.pool.query('DELETE FROM route_outbox WHERE id IN (?)', [ids]).catch(() => undefined);
        for (const id of ids) this.own.delete(id);
      }
      this.dropping = false;
    })();
  }

  /** A retried request: makes Redis say again what MySQL says of this binding, at its version. */
  async reassert(binding: VersionedBinding): Promise<void> {
    await this.bounded(this.routes.apply([{ version: binding.routeVersion, binding }]));
  }

  /** Applies the oldest rows left behind, re-reading each binding as MySQL has it now; how many were applied. */
  async applyPending(limit = OUTBOX_PAGE): Promise<number> {
    const own = [...this.own];
    const [page] = await this.pool.query<RowDataPacket[]>(
      `SELECT id, binding_id, previous FROM route_outbox ${own.length > 0 ? 'WHERE id NOT IN (?)' : ''} ORDER BY id LIMIT ?`,
      own.length > 0 ? [own, limit] : [limit],
    );
    // A request whose commit was acknowledged while this page was read has claimed its row by now.
    const rows = page.filter((r) => !this.own.has(Number(r.id)));
    if (rows.length === 0) return 0;
    const [bindingRows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM bindings WHERE id IN (?)', [[...new Set(rows.map((r) => String(r.binding_id)))]]);
    const current = new Map(bindingRows.map((r) => [String(r.id), versionedBinding(r)]));
    const changes: RouteChange[] = [];
    for (const r of rows) {
      const binding = current.get(String(r.binding_id));
      if (!binding) continue;
      const previous = r.previous === null ? null : (JSON.parse(String(r.previous)) as IndexableBinding);
      changes.push({ version: Number(r.id), binding, previous });
    }
    await this.routes.apply(changes);
    await this.pool.query('DELETE FROM route_outbox WHERE id IN (?)', [rows.map((r) => Number(r.id))]);
    return rows.length;
  }

  private async bounded(write: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), this.timeoutMs);
    });
    try {
      await Promise.race([write, timeout]);
    } catch {
      // The write may still land when Redis answers: it is versioned, so late is harmless.
      write.catch(() => undefined);
      throw new RetryLaterError(
        'route_index_unavailable',
        'the change is recorded but the routing index did not confirm it; it is applied as soon as the index is reachable: retry the request to confirm',
        1,
      );
    } finally {
      clearTimeout(timer);
    }
  }
}

export function versionedBinding(r: RowDataPacket): VersionedBinding & ReturnType<typeof rowToBinding> {
  return { ...rowToBinding(r), routeVersion: Number(r.route_version) };
}
