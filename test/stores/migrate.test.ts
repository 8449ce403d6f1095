import { cpSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { defaultMigrationsDir, loadMigrations, migrate, splitStatements } from '../../src/stores/migrate';
import { createTestDatabase, type TestDatabase } from '../support/mysql';

describe('migrate', () => {
  let db: TestDatabase;
  let dir: string;

  beforeEach(async () => {
    db = await createTestDatabase({ migrate: false });
    dir = mkdtempSync(path.join(os.tmpdir(), 'ng-migrations-'));
    cpSync(defaultMigrationsDir(), dir, { recursive: true });
  });
  afterEach(async () => {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies every migration once; a second run applies nothing', async () => {
    const all = loadMigrations(dir).map((m) => m.name);
    expect(all[0]).toBe('001_initial.sql');
    expect(await migrate(db.pool, undefined, { dir })).toEqual(all);
    expect(await migrate(db.pool, undefined, { dir })).toEqual([]);
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.name)).toEqual(all);
    const [tables] = await db.pool.query<RowDataPacket[]>('SHOW TABLES');
    expect(tables.map((t) => Object.values(t)[0]).sort()).toEqual(
      [
        'abuse_actions', 'abuse_flags', 'agent_tokens', 'api_keys', 'audit_log', 'binding_history', 'binding_members', 'bindings', 'blacklist',
        'calls', 'cdrs', 'console_sessions', 'media_catalogue', 'message_carrier_ids', 'message_settings', 'messages', 'platform_secrets',
        'pool_number_events', 'pool_numbers', 'route_outbox', 'schema_migrations', 'switch_health', 'switches', 'tenant_abuse_settings', 'tenant_axe_settings', 'tenants',
        'webhook_deliveries',
        'webhook_endpoints',
      ],
    );
  });

  it('is safe when several controllers start at once', async () => {
    const results = await Promise.all([1, 2, 3, 4].map(() => migrate(db.pool, undefined, { dir })));
    expect(results.flat()).toEqual(loadMigrations(dir).map((m) => m.name));
  });

  it('applies a new file later, and only that', async () => {
    await migrate(db.pool, undefined, { dir });
    writeFileSync(path.join(dir, '999_extra.sql'), 'CREATE TABLE extra_t (id INT PRIMARY KEY);\n-- two statements\nINSERT INTO extra_t VALUES (1);\n');
    expect(await migrate(db.pool, undefined, { dir })).toEqual(['999_extra.sql']);
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT id FROM extra_t');
    expect(rows).toHaveLength(1);
  });

  it('refuses to run when an applied migration was edited', async () => {
    await migrate(db.pool, undefined, { dir });
    appendFileSync(path.join(dir, '001_initial.sql'), '\nCREATE TABLE sneaky (id INT PRIMARY KEY);\n');
    await expect(migrate(db.pool, undefined, { dir })).rejects.toThrow(/001_initial\.sql was changed after it was applied/);
    const [rows] = await db.pool.query<RowDataPacket[]>("SHOW TABLES LIKE 'sneaky'");
    expect(rows).toHaveLength(0);
  });

  it('splits statements at a ; ending a line and drops comment lines', () => {
    expect(splitStatements('-- c\nCREATE TABLE a (x INT);\n\nINSERT INTO a VALUES (1);\nSELECT 1')).toEqual([
      'CREATE TABLE a (x INT)',
      'INSERT INTO a VALUES (1)',
      'SELECT 1',
    ]);
  });
});
