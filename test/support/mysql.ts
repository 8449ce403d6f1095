import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { migrate } from '../../src/stores/migrate';
import { createMysqlPool, ensureDatabase, type Pool } from '../../src/stores/mysql';

/** Server for tests: TEST_MYSQL_URL (no database part needed), default the local MariaDB. */
export const TEST_MYSQL_SERVER = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/';

export function testDatabaseUrl(name: string, server: string = TEST_MYSQL_SERVER): string {
  const u = new URL(server);
  u.pathname = `/${name}`;
  return u.toString();
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  readonly pool: Pool;
  /** Ends the pool and drops this database (and only this one). */
  drop(): Promise<void>;
}

/**
 * A fresh, migrated `ng_test_<random>` database of its own, so test files and teammates running at
 * the same time never see each other's rows.
 */
export async function createTestDatabase(opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `ng_test_${randomBytes(6).toString('hex')}`;
  const url = testDatabaseUrl(name);
  await ensureDatabase(url);
  const pool = createMysqlPool(url);
  if (opts.migrate !== false) await migrate(pool);
  let dropped = false;
  return {
    name,
    url,
    pool,
    async drop() {
      if (dropped) return;
      dropped = true;
      await pool.end().catch(() => undefined);
      await dropDatabase(name);
    },
  };
}

export async function dropDatabase(name: string): Promise<void> {
  if (!/^ng_(test|bench)_[0-9a-f]+$/.test(name)) throw new Error(`refusing to drop ${name}: not a test database`);
  const conn = await createConnection({ uri: TEST_MYSQL_SERVER });
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
  } finally {
    await conn.end();
  }
}

/** Tenant rows with ids of the test's choosing, for store-level tests that name tenants by hand. */
export async function ensureTenants(pool: Pool, ...ids: string[]): Promise<void> {
  for (const id of ids) await pool.query('INSERT IGNORE INTO tenants (id, name) VALUES (?, ?)', [id, id]);
}
