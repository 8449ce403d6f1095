import type { Pool, PoolConnection } from 'mysql2/promise';

const ER_LOCK_DEADLOCK = 1213;
const ER_LOCK_WAIT_TIMEOUT = 1205;
const ATTEMPTS = 5;
const BACKOFF_MS = 5;

/** The one retry policy for MySQL transactions: a deadlock or a lock wait timeout rolls back everything, so the whole transaction can run again. */
export function isRetryableTransactionError(err: unknown): boolean {
  const errno = (err as { errno?: number } | null)?.errno;
  return errno === ER_LOCK_DEADLOCK || errno === ER_LOCK_WAIT_TIMEOUT;
}

/**
 * Runs work in one transaction and commits it; rolls back on any error, and runs the whole of it
 * again (up to 5 times, a few random milliseconds apart) when MySQL gave up on it for a deadlock or a lock wait timeout. work must
 * therefore be safe to run again: everything it learnt inside a failed attempt is gone.
 */
export async function inTransaction<T>(pool: Pool, work: (conn: PoolConnection) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const conn = await pool.getConnection();
    try {
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
