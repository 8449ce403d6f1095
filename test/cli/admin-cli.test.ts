import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { ConsoleSessionStore } from '../../src/agent-console/console-sessions';
import { AgentTokenStore } from '../../src/stores/agent-tokens';
import { persistCallOutcomes } from '../../src/stores/call-outcome';
import { BindingService } from '../../src/bindings/binding-service';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase } from '../support/mysql';
import { runAdminCli } from '../../src/cli/admin';
import { runCli, type CliRun } from '../support/admin-cli';

describe('admin CLI against a real MariaDB', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const dir = mkdtempSync(path.join(tmpdir(), 'cli-'));

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  const cli = (...argv: string[]): Promise<CliRun> => runCli({ MYSQL_URL: db.url }, argv);

  it('--help for every group exits 0 and lists its subcommands; a bad flag or command is a usage error (64)', async () => {
    for (const [group, subs] of [['tenant', ['create', 'list', 'show']], ['key', ['create', 'list', 'revoke']], ['agent-token', ['create', 'list', 'revoke']],
      ['pool', ['import', 'stats', 'state']], ['binding', ['lookup']], ['cdr', ['export']], ['blacklist', ['add', 'remove', 'list']], ['audit', ['list']]] as const) {
      const { code, lines } = await cli(group, '--help');
      expect(code).toBe(0);
      for (const sub of subs) expect(lines.join('\n')).toContain(`${group} ${sub}`);
    }
    expect((await cli('--help')).lines.join('\n')).toContain('migrate');
    const badFlag = await cli('tenant', 'create', '--nme', 'x');
    expect(badFlag.code).toBe(64);
    expect(badFlag.lines.join('\n')).toContain('--nme');
    const missing = await cli('tenant', 'create');
    expect(missing).toMatchObject({ code: 64 });
    expect(missing.lines[0]).toBe('--name is required');
    expect((await cli('frobnicate')).code).toBe(64);
  });

  it('tenants and API keys: create, list, show, revoke; the revoked key no longer authenticates', async () => {
    const made = await cli('tenant', 'create', '--name', 'acme', '--default-x', '700100000000001', '--max-attempts', '2');
    expect(made.code).toBe(0);
    const tenantId = String(made.json[0]!.id);
    expect(made.json[0]).toMatchObject({ name: 'acme', defaultX: '700100000000001', maxAttempts: 2 });
    expect((await cli('tenant', 'list')).json.map((t) => t.id)).toContain(tenantId);
    expect((await cli('tenant', 'show', '--tenant', tenantId)).json[0]).not.toHaveProperty('webhookSecret');
    expect((await cli('tenant', 'create', '--name', 'x', '--max-attempts', '99')).code).toBe(64);

    const key = (await cli('key', 'create', '--tenant', tenantId, '--name', 'backend')).json[0]!;
    const tenants = new TenantStore(db.pool);
    expect(await tenants.authenticate(String(key.key))).toMatchObject({ id: tenantId });
    expect((await cli('key', 'list', '--tenant', tenantId)).json.map((k) => k.id)).toEqual([key.id]);
    expect(JSON.stringify((await cli('key', 'list', '--tenant', tenantId)).json)).not.toContain(String(key.key));
    expect((await cli('key', 'revoke', '--tenant', tenantId, '--key', String(key.id))).code).toBe(0);
    expect(await tenants.authenticate(String(key.key))).toBeNull();
    expect((await cli('key', 'list', '--tenant', 'no-such-tenant')).code).toBe(64);
  });

  it('tenant set --no-end-warning / --end-warning: the click-to-dial end warning, audited; both at once is a usage error', async () => {
    const tenantId = String((await cli('tenant', 'create', '--name', 'warn')).json[0]!.id);
    const tenants = new TenantStore(db.pool);
    expect((await tenants.get(tenantId))?.clickToDialEndWarning).toBe(true);
    const off = await cli('tenant', 'set', '--tenant', tenantId, '--no-end-warning');
    expect(off.json[0]).toMatchObject({ clickToDialEndWarning: false });
    expect((await tenants.get(tenantId))?.clickToDialEndWarning).toBe(false);
    expect((await cli('tenant', 'set', '--tenant', tenantId, '--end-warning')).json[0]).toMatchObject({ clickToDialEndWarning: true });
    expect((await cli('tenant', 'set', '--tenant', tenantId, '--end-warning', '--no-end-warning')).code).toBe(64);
    const [rows] = await db.pool.query<RowDataPacket[]>("SELECT details FROM audit_log WHERE tenant_id = ? AND action = 'tenant.update' ORDER BY id", [tenantId]);
    expect(rows.map((r) => (typeof r.details === 'string' ? JSON.parse(r.details) : r.details))).toEqual([{ clickToDialEndWarning: false }, { clickToDialEndWarning: true }]);
  });

  it('agent tokens: create prints the token once, list masks the agent number, revoke; a bad number names --number', async () => {
    const tenantId = String((await cli('tenant', 'create', '--name', 'agents')).json[0]!.id);
    const made = await cli('agent-token', 'create', '--tenant', tenantId, '--name', 'Li Lei', '--number', '13800070001');
    expect(made.code).toBe(0);
    expect(typeof made.json[0]!.token).toBe('string');
    const listed = await cli('agent-token', 'list', '--tenant', tenantId);
    expect(listed.json).toEqual([expect.objectContaining({ id: made.json[0]!.id, name: 'Li Lei', agentNumber: '138****0001' })]);
    expect(JSON.stringify(listed.json)).not.toContain(String(made.json[0]!.token));
    expect((await cli('agent-token', 'revoke', '--tenant', tenantId, '--id', String(made.json[0]!.id))).code).toBe(0);
    const bad = await cli('agent-token', 'create', '--tenant', tenantId, '--name', 'x', '--number', '12');
    expect(bad.code).toBe(65);
    expect(bad.lines[0]).toMatch(/^invalid --number: /);
  });

  it('agent tokens expire after --expires-days (default 90); revoking one ends its console sessions', async () => {
    const DAY = 86_400_000;
    const tenantId = String((await cli('tenant', 'create', '--name', 'expiring')).json[0]!.id);
    const before = Date.now();
    const byDefault = (await cli('agent-token', 'create', '--tenant', tenantId, '--name', 'Han', '--number', '13800070002')).json[0]!;
    const week = (await cli('agent-token', 'create', '--tenant', tenantId, '--name', 'Lin', '--number', '13800070003', '--expires-days', '7')).json[0]!;
    const after = Date.now();
    expect(Number(byDefault.expiresAt)).toBeGreaterThanOrEqual(before + 90 * DAY);
    expect(Number(byDefault.expiresAt)).toBeLessThanOrEqual(after + 90 * DAY);
    expect(Number(week.expiresAt)).toBeGreaterThanOrEqual(before + 7 * DAY);
    expect(Number(week.expiresAt)).toBeLessThanOrEqual(after + 7 * DAY);
    const listed = (await cli('agent-token', 'list', '--tenant', tenantId)).json;
    expect(listed.map((t) => t.expiresAt)).toEqual([byDefault.expiresAt, week.expiresAt]);
    for (const days of ['0', '3651', 'soon']) {
      const refused = await cli('agent-token', 'create', '--tenant', tenantId, '--name', 'x', '--number', '13800070004', '--expires-days', days);
      expect(refused.code).toBe(64);
      expect(refused.lines[0]).toContain('--expires-days');
    }

    const agent = await new AgentTokenStore(db.pool).authenticate(String(week.token));
    const sessions = new ConsoleSessionStore(db.pool, { lifetimeMs: 3_600_000, idleMs: 1_800_000, cacheMs: 0 });
    const session = await sessions.open(agent!);
    expect(await sessions.authenticate(session.id)).toMatchObject({ agent: { id: week.id } });
    expect((await cli('agent-token', 'revoke', '--tenant', tenantId, '--id', String(week.id))).code).toBe(0);
    expect(await sessions.authenticate(session.id)).toBeNull();
    const [rows] = await db.pool.query<RowDataPacket[]>('SELECT revoked_at FROM console_sessions WHERE agent_token_id = ?', [week.id]);
    expect(rows).toEqual([{ revoked_at: expect.any(Date) }]);
  });

  it('pool import (block and file), stats, state; binding lookup by id and by number', async () => {
    const tenantId = String((await cli('tenant', 'create', '--name', 'pool', '--pool-quota', '10002')).json[0]!.id);
    expect((await cli('pool', 'import', '--tenant', tenantId, '--area', '010', '--block', '70090000000')).json[0]).toEqual({ offered: 10_000, imported: 10_000 });
    const file = path.join(dir, 'numbers.txt');
    writeFileSync(file, '# extra numbers\n700910000000001\n700910000000002\n\n');
    expect((await cli('pool', 'import', '--tenant', tenantId, '--area', '021', '--file', file)).json[0]).toEqual({ offered: 2, imported: 2 });
    const badFile = path.join(dir, 'bad.txt');
    writeFileSync(badFile, '13800000000\n');
    expect((await cli('pool', 'import', '--tenant', tenantId, '--area', '021', '--file', badFile)).code).toBe(65);
    expect((await cli('pool', 'import', '--tenant', tenantId, '--area', '021')).code).toBe(64);
    expect((await cli('pool', 'state', '--tenant', tenantId, '--x', '700910000000002', '--state', 'quarantined')).json[0]).toMatchObject({ state: 'quarantined' });

    const registry = new BindingService(db.pool);
    const { binding } = await registry.bind({ tenantId, mode: 'axb', a: '13800070002', b: '13900070002', area: '021' });
    const stats = (await cli('pool', 'stats', '--tenant', tenantId)).json;
    expect(stats).toEqual([
      expect.objectContaining({ area: '010', numbers: 10_000, enabled: 10_000, inUse: 0 }),
      expect.objectContaining({ area: '021', numbers: 2, quarantined: 1, inUse: 1, activeBindings: 1 }),
    ]);
    expect((await cli('binding', 'lookup', '--tenant', tenantId, '--id', binding.id)).json[0]).toMatchObject({ id: binding.id, x: '700910000000001' });
    expect((await cli('binding', 'lookup', '--tenant', tenantId, '--number', '13900070002')).json.map((b) => b.id)).toEqual([binding.id]);
    expect((await cli('binding', 'lookup', '--tenant', tenantId)).code).toBe(64);
  });

  it('cdr export writes RFC 4180 CSV with every row, escaping commas and quotes; --mask masks A and B', async () => {
    const tenantId = String((await cli('tenant', 'create', '--name', 'cdrs')).json[0]!.id);
    const base = Date.parse('2026-11-20T10:00:00Z');
    await persistCallOutcomes(db.pool, [0, 1, 2].map((i) => ({
      cdr: {
        callId: `00000000-0000-4000-8000-00000000000${i}`, tenantId, kind: 'click_to_dial' as const, bindingId: null, x: '700100000000001',
        a: `1380007010${i}`, b: `1390007010${i}`, startedAt: base + i * 60_000, aRingAt: null, aAnswerAt: base + i * 60_000 + 1000, bRingAt: null,
        bAnswerAt: base + i * 60_000 + 5000, endedAt: base + i * 60_000 + 35_000, talkSeconds: 30, hangupCause: 'NORMAL_CLEARING',
        hangupSide: 'b' as const, result: 'connected' as const, recordingRef: null, userData: i === 1 ? 'order 7, "rush"' : null,
      },
    })));
    const out = path.join(dir, 'cdrs.csv');
    const res = await cli('cdr', 'export', '--tenant', tenantId, '--out', out);
    expect(res.json[0]).toEqual({ file: out, rows: 3 });
    const lines = readFileSync(out, 'utf8').split('\r\n').filter(Boolean);
    expect(lines[0]).toBe('callId,kind,bindingId,x,a,b,startedAt,aRingAt,aAnswerAt,bRingAt,bAnswerAt,endedAt,talkSeconds,result,hangupCause,hangupSide,recordingRef,userData');
    expect(lines).toHaveLength(4);
    expect(lines[1]).toContain(',13800070102,13900070102,2026-11-20T10:02:00.000Z,');
    expect(lines[2]!.endsWith(',"order 7, ""rush"""')).toBe(true);

    const windowed = await cli('cdr', 'export', '--tenant', tenantId, '--from', '2026-11-20T10:01:00Z', '--to', '2026-11-20T10:02:00Z', '--mask');
    expect(windowed.lines.filter(Boolean)).toHaveLength(2);
    expect(windowed.lines[1]).toContain(',138****0101,139****0101,');
    expect((await cli('cdr', 'export', '--tenant', tenantId, '--from', 'last tuesday')).code).toBe(64);
  });

  it('blacklist add, list, remove (tenant and platform); every CLI change is audited as cli:<user>', async () => {
    const tenantId = String((await cli('tenant', 'create', '--name', 'bl')).json[0]!.id);
    const registry = new BindingService(db.pool);
    expect((await cli('blacklist', 'add', '--tenant', tenantId, '--number', '+86 138 0007 0201')).json[0]).toEqual({ blacklisted: '138****0201' });
    expect(await registry.blacklistHas(tenantId, '13800070201')).toBe(true);
    expect((await cli('blacklist', 'list', '--tenant', tenantId)).json).toEqual([{ number: '13800070201' }]);
    expect((await cli('blacklist', 'add', '--platform', '--number', '13800070202')).code).toBe(0);
    expect(await registry.blacklistHas(null, '13800070202')).toBe(true);
    expect((await cli('blacklist', 'remove', '--tenant', tenantId, '--number', '13800070201')).code).toBe(0);
    expect(await registry.blacklistHas(tenantId, '13800070201')).toBe(false);
    expect((await cli('blacklist', 'add', '--tenant', tenantId, '--number', 'abc')).code).toBe(65);

    const audit = (await cli('audit', 'list', '--tenant', tenantId)).json;
    expect(audit.map((e) => e.action)).toEqual(['blacklist.remove', 'blacklist.add', 'tenant.create']);
    expect(audit.every((e) => /^cli:/.test(String(e.actor)) && typeof e.requestId === 'string')).toBe(true);
    expect(JSON.stringify(audit)).not.toContain('13800070201');
    expect((await cli('audit', 'list', '--platform', '--action', 'blacklist.add')).json).toHaveLength(1);
  });

  it('errors go to the error writer, not into the output; unreadable files fail (1) naming the flag', async () => {
    const out: string[] = [];
    const errors: string[] = [];
    const code = await runAdminCli(['cdr', 'export', '--tenant', 'x', '--form', '2026-11-01'], (l) => out.push(l), { MYSQL_URL: db.url }, (l) => errors.push(l));
    expect(code).toBe(64);
    expect(out).toEqual([]);
    expect(errors.join('\n')).toContain("'--form'");
    expect(errors.join('\n')).toContain('cdr export --tenant ID');
    expect(errors.join('\n')).not.toContain('tenant create');

    const tenantId = String((await cli('tenant', 'create', '--name', 'files')).json[0]!.id);
    const noFile = await cli('pool', 'import', '--tenant', tenantId, '--area', '010', '--file', path.join(dir, 'missing.txt'));
    expect(noFile.code).toBe(1);
    expect(noFile.lines[0]).toBe(`--file: cannot read ${path.join(dir, 'missing.txt')} (ENOENT)`);
    const noDir = await cli('cdr', 'export', '--tenant', tenantId, '--out', path.join(dir, 'no-such-dir', 'x.csv'));
    expect(noDir.code).toBe(1);
    expect(noDir.lines[0]).toMatch(/^--out: cannot write .*x\.csv \(ENOENT\)$/);
  });

  it('the executable (npm run cli): --help exits 0, usage errors 64 on stderr, a failure exits 1 with a message and no stack trace', () => {
    const run = (args: string[], mysqlUrl = db.url) =>
      spawnSync(path.join('node_modules', '.bin', 'tsx'), ['src/cli/admin.ts', ...args], { env: { ...process.env, MYSQL_URL: mysqlUrl }, encoding: 'utf8' });
    const help = run(['blacklist', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('blacklist remove');
    const bad = run(['tenant', 'show']);
    expect(bad.status).toBe(64);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain('--tenant is required');
    const down = run(['tenant', 'list'], 'mysql://root@127.0.0.1:1/numguard');
    expect(down.status).toBe(1);
    expect(down.stderr).toMatch(/^error: .*ECONNREFUSED/);
    expect(down.stderr).not.toMatch(/\n\s+at /);
  });

  it('migrate reports an up-to-date database', async () => {
    expect((await cli('migrate')).lines).toEqual(['database is up to date']);
  });
});
