import type { Pool, PoolConnection } from 'mysql2/promise';

const ER_LOCK_DEADLOCK = 1213;
const ER_LOCK_WAIT_TIMEOUT = 1205;
const ATTEMPTS = 5;
const BACKOFF_MS = 5;

/**
 * Thrown by a transaction's work when a key it found free was taken meanwhile by another transaction (which a
 * READ COMMITTED transaction does not lock against): the whole transaction runs again, as after a deadlock.
 */
export class TransactionConflict extends Error {
  constructor(what: string) {
    super(`transaction conflict: ${what}`);
    this.name = 'TransactionConflict';
  }
}

/**
 * The one retry policy for MySQL transactions: a deadlock, a lock wait timeout or a TransactionConflict rolls back
 * everything, so the whole transaction can run again.
 */
export function isRetryableTransactionError(err: unknown): boolean {
  if (err instanceof TransactionConflict) return true;
  const errno = (err as { errno?: number } | null)?.errno;
  return errno === ER_LOCK_DEADLOCK || errno === ER_LOCK_WAIT_TIMEOUT;
}

export interface TransactionOptions {
  /**
   * 'read committed': locking reads lock the rows they find and no gaps around the keys they do not, so concurrent
   * transactions inserting scattered keys into one range do not deadlock on each other's gap locks. The work must
   * then lock what it relies on itself (a parent row) and treat a unique key taken meanwhile as a TransactionConflict.
   */
  readonly isolation?: 'read committed';
}

/**
 * Runs work in one transaction and commits it; rolls back on any error, and runs the whole of it
 * again (up to 5 times, a few random milliseconds apart) when MySQL gave up on it for a deadlock or a lock wait timeout, or work
 * threw a TransactionConflict. work must
 * therefore be safe to run again: everything it learnt inside a failed attempt is gone.
 */
export async function inTransaction<T>(pool: Pool, work: (conn: PoolConnection) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const conn = await pool.getConnection();
    try {
      // applies to the next transaction on this connection only
      if (opts.isolation === 'read committed') await conn.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await conn.beginTransaction();
      const result = await work(conn);
      await conn.commit();
      return result;
    } catch (err) {
      await conn.rollback().catch(() => undefined);
      if (attempt >= ATTEMPTS || !isRetryableTransactionError(err)) throw err;
    } finally {
      conn.release();
    }
    // A little apart, so that the transactions that just collided do not collide again in step.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * BACKOFF_MS * attempt));
  }
}
