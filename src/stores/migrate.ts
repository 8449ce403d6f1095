import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import type { Logger } from '../logger';
import type { Pool } from './mysql';

export interface MigrationFile {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
  readonly sql: string;
}

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

const FILE_RE = /^(\d{3,})_([A-Za-z0-9_-]+)\.sql$/;

/**
 * Where the .sql files are. They live next to this module in src/; `tsc` does not copy them,
 * so when running from dist/stores/ we fall back to the source tree (../../src/stores/migrations).
 * MIGRATIONS_DIR overrides both (e.g. a container that ships the .sql files elsewhere).
 */
export function defaultMigrationsDir(): string {
  const candidates = [
    process.env.MIGRATIONS_DIR,
    path.join(__dirname, 'migrations'),
    path.resolve(__dirname, '../../src/stores/migrations'),
  ].filter((d): d is string => typeof d === 'string' && d !== '');
  for (const dir of candidates) {
    if (existsSync(dir) && readdirSync(dir).some((f) => FILE_RE.test(f))) return dir;
  }
  throw new MigrationError(`no migrations found (looked in ${candidates.join(', ')})`);
}

export function loadMigrations(dir: string = defaultMigrationsDir()): MigrationFile[] {
  const files: MigrationFile[] = [];
  const seen = new Map<number, string>();
  for (const file of readdirSync(dir).sort()) {
    const m = FILE_RE.exec(file);
    if (!m) continue;
    const version = Number(m[1]);
    const other = seen.get(version);
    if (other !== undefined) throw new MigrationError(`two migrations with version ${version}: ${other}, ${file}`);
    seen.set(version, file);
    const sql = readFileSync(path.join(dir, file), 'utf8');
    files.push({ version, name: file, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return files.sort((x, y) => x.version - y.version);
}

/** Splits a migration into statements: a statement ends with `;` at the end of a line. Comment lines are dropped. */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let current: string[] = [];
  for (const line of sql.split(/\r?\n/)) {
    if (/^\s*--/.test(line) || (current.length === 0 && line.trim() === '')) continue;
    current.push(line);
    if (/;\s*$/.test(line)) {
      const stmt = current.join('\n').trim().replace(/;\s*$/, '');
      if (stmt !== '') out.push(stmt);
      current = [];
    }
  }
  const rest = current.join('\n').trim();
  if (rest !== '') out.push(rest);
  return out;
}

const LOCK_TIMEOUT_SECONDS = 120;

/**
 * Applies pending migrations in version order and returns the names applied.
 * A named lock (GET_LOCK, per database) makes concurrent controller starts safe: the second
 * waits, then finds nothing to do. Refuses to run when an applied file's checksum changed.
 * Note: MySQL DDL is not transactional; a migration is recorded only after all its statements ran.
 */
export async function migrate(pool: Pool, logger?: Logger, options: { dir?: string } = {}): Promise<string[]> {
  const files = loadMigrations(options.dir ?? defaultMigrationsDir());
  const conn = await pool.getConnection();
  try {
    const [[dbRow]] = await conn.query<RowDataPacket[]>('SELECT DATABASE() AS db');
    const db = String(dbRow?.db ?? '');
    if (db === '') throw new MigrationError('the MySQL URL names no database');
    const lockName = `ngmig:${createHash('sha1').update(db).digest('hex').slice(0, 40)}`;
    const [[lockRow]] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, ?) AS got', [lockName, LOCK_TIMEOUT_SECONDS]);
    if (Number(lockRow?.got) !== 1) throw new MigrationError(`could not take the migration lock within ${LOCK_TIMEOUT_SECONDS}s`);
    try {
      await conn.query(
        `CREATE TABLE IF NOT EXISTS schema_migrations (
           version    INT NOT NULL PRIMARY KEY,
           name       VARCHAR(255) NOT NULL,
           checksum   CHAR(64) CHARACTER SET ascii NOT NULL,
           applied_at DATETIME(3) NOT NULL
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
      );
      const [rows] = await conn.query<RowDataPacket[]>('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
      const applied = new Map<number, { name: string; checksum: string }>();
      for (const r of rows) applied.set(Number(r.version), { name: String(r.name), checksum: String(r.checksum) });

      for (const f of files) {
        const a = applied.get(f.version);
        if (a && a.checksum !== f.checksum) {
          throw new MigrationError(
            `migration ${f.name} was changed after it was applied (checksum ${a.checksum.slice(0, 12)}… in the database, ` +
              `${f.checksum.slice(0, 12)}… on disk); add a new migration instead of editing an applied one`,
          );
        }
      }
      const known = new Set(files.map((f) => f.version));
      for (const [version, a] of applied) {
        if (!known.has(version)) logger?.warn({ version, name: a.name }, 'database has a migration this build does not know (newer schema?)');
      }

      const done: string[] = [];
      for (const f of files) {
        if (applied.has(f.version)) continue;
        logger?.info({ migration: f.name }, 'applying migration');
        for (const stmt of splitStatements(f.sql)) await conn.query(stmt);
        await conn.query('INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)', [
          f.version,
          f.name,
          f.checksum,
          new Date(),
        ]);
        done.push(f.name);
      }
      if (done.length === 0) logger?.info('schema is up to date');
      return done;
    } finally {
      await conn.query('SELECT RELEASE_LOCK(?)', [lockName]).catch(() => undefined);
    }
  } finally {
    conn.release();
  }
}
