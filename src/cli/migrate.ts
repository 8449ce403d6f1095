import { createLogger } from '../logger';
import { migrate } from '../stores/migrate';
import { createMysqlPool, databaseName, ensureDatabase } from '../stores/mysql';

/** `npx tsx src/cli/migrate.ts` (or `node dist/cli/migrate.js`): create the database if needed and apply pending migrations. */
async function main(): Promise<void> {
  const url = process.env.MYSQL_URL?.trim() || 'mysql://root@127.0.0.1:3306/numguard';
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  await ensureDatabase(url);
  const pool = createMysqlPool(url, { connectionLimit: 2 });
  try {
    const applied = await migrate(pool, logger);
    const db = databaseName(url);
    if (applied.length === 0) console.log(`${db}: schema is up to date, nothing applied`);
    else for (const name of applied) console.log(`${db}: applied ${name}`);
  } finally {
    await pool.end();
  }
}

main().catch((err: unknown) => {
  console.error(`migrate failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
