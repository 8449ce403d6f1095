import type { RowDataPacket } from 'mysql2/promise';
import { SwitchStore } from '../../src/stores/switch-store';
import { createTestDatabase } from '../support/mysql';
import { runCli, type CliRun } from '../support/admin-cli';

describe('admin CLI: the switch fleet (issue #9 item 1)', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;

  const cli = (...argv: string[]): Promise<CliRun> => runCli({ MYSQL_URL: db.url }, argv);

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('add, drain, resume, list with what controllers saw, remove; audited', async () => {
    expect((await cli('switch', 'add', '--name', 'fs3', '--host', '10.0.0.3')).json[0]).toEqual({ name: 'fs3', host: '10.0.0.3', port: 8021 });
    expect((await cli('switch', 'drain', '--name', 'fs3')).json[0]).toEqual({ name: 'fs3', state: 'draining' });
    // a switch from SWITCHES (no row yet) can be drained too: the row holds only the mark
    expect((await cli('switch', 'drain', '--name', 'fs1')).code).toBe(0);
    const store = new SwitchStore(db.pool);
    expect(await store.list()).toEqual([
      { name: 'fs1', host: null, port: null, state: 'draining' },
      { name: 'fs3', host: '10.0.0.3', port: 8021, state: 'draining' },
    ]);
    await store.report('controller-a', [
      { name: 'fs1', health: { connected: true, state: 'draining', lost: false, address: '10.0.0.1:8021', sessions: 4, maxSessions: 1000, sessionsPerSecond: 30, idleCpu: 97.5, calls: 2 } },
      { name: 'fs3', health: { connected: false, state: 'draining', lost: true, address: '10.0.0.3:8021', sessions: null, maxSessions: null, sessionsPerSecond: null, idleCpu: null, calls: 0 } },
    ]);
    expect((await cli('switch', 'resume', '--name', 'fs3')).json[0]).toEqual({ name: 'fs3', state: 'active' });

    const listed = (await cli('switch', 'list')).json;
    expect(listed).toEqual([
      expect.objectContaining({ name: 'fs1', address: '10.0.0.1:8021', state: 'draining', source: 'SWITCHES', up: true }),
      expect.objectContaining({ name: 'fs3', address: '10.0.0.3:8021', state: 'active', source: 'table', up: false }),
    ]);
    expect(listed[0]?.controllers).toEqual([expect.objectContaining({ controller: 'controller-a', connected: true, sessions: 4, idleCpu: 97.5, calls: 2 })]);

    expect((await cli('switch', 'remove', '--name', 'fs3')).json[0]).toEqual({ name: 'fs3', removed: true });
    expect((await store.list()).map((r) => r.name)).toEqual(['fs1']);
    expect((await cli('switch', 'remove', '--name', 'fs3')).code).toBe(1);

    const [audit] = await db.pool.query<RowDataPacket[]>("SELECT action, target FROM audit_log WHERE action LIKE 'switch.%' ORDER BY id");
    expect(audit.map((r) => `${String(r.action)} ${String(r.target)}`)).toEqual(['switch.add fs3', 'switch.drain fs3', 'switch.drain fs1', 'switch.resume fs3', 'switch.remove fs3']);
  });

  it('refuses a bad name or host with usage (64)', async () => {
    expect((await cli('switch', 'add', '--name', 'fs 4', '--host', '10.0.0.4')).code).toBe(64);
    expect((await cli('switch', 'add', '--name', 'fs4', '--host', 'a b')).code).toBe(64);
    expect((await cli('switch', 'add', '--name', 'fs4', '--host', '10.0.0.4', '--port', '70000')).code).toBe(64);
    expect((await cli('switch', 'drain')).code).toBe(64);
  });
});
