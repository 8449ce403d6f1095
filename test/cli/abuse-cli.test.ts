import type { RowDataPacket } from 'mysql2/promise';
import { AbuseDisposal, QuarantinedNumbers } from '../../src/abuse/disposal';
import { AbuseFlagStore } from '../../src/abuse/flag-store';
import { BindingService } from '../../src/bindings/binding-service';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase } from '../support/mysql';
import { runCli, type CliRun } from '../support/admin-cli';

describe('admin CLI: abuse limits, flags, actions and lifting (issue #10 items 5, 6)', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let tenantId = '';
  const X = '700100000000401';

  const cli = (...argv: string[]): Promise<CliRun> => runCli({ MYSQL_URL: db.url, CALLS_PER_CALLER_PER_MINUTE: '10' }, argv);

  beforeAll(async () => {
    db = await createTestDatabase();
    tenantId = (await new TenantStore(db.pool).create({ name: 'acme' })).id;
    await new BindingService(db.pool).importNumbers(tenantId, [{ x: X, area: '010' }]);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('abuse set: the operator may set any limit in range, even looser than the platform; audited as cli:<user>', async () => {
    const set = await cli('abuse', 'set', '--tenant', tenantId, '--set', 'callsPerCallerPerMinute=50', '--set', 'pairBindingsPerHour=0', '--set', 'disposal.short_calls=block');
    expect(set.code).toBe(0);
    expect(set.json[0]!.own).toMatchObject({ callsPerCallerPerMinute: 50, pairBindingsPerHour: 0, disposal: { short_calls: 'block' } });
    const shown = await cli('abuse', 'limits', '--tenant', tenantId);
    expect(shown.json[0]).toMatchObject({
      effective: { callsPerCallerPerMinute: 50, pairBindingsPerHour: 0, disposal: { short_calls: 'block', x_burst: 'warn' } },
      platform: { callsPerCallerPerMinute: 10 },
    });
    // A second --set of the disposal keeps the kinds it does not name; null puts the platform's back.
    await cli('abuse', 'set', '--tenant', tenantId, '--set', 'disposal.x_burst=quarantine', '--set', 'callsPerCallerPerMinute=null');
    expect((await cli('abuse', 'limits', '--tenant', tenantId)).json[0]).toMatchObject({
      effective: { callsPerCallerPerMinute: 10, disposal: { short_calls: 'block', x_burst: 'quarantine' } },
    });
    const [rows] = await db.pool.query<RowDataPacket[]>("SELECT actor FROM audit_log WHERE tenant_id = ? AND action = 'abuse.limits'", [tenantId]);
    expect(rows).toHaveLength(2);
    expect(String(rows[0]!.actor)).toMatch(/^cli:/);
  });

  it('abuse set refuses bad input as a usage error naming the setting (64), and changes nothing', async () => {
    const bad = await cli('abuse', 'set', '--tenant', tenantId, '--set', 'callsPerCallerPerMinute=-3');
    expect(bad.code).toBe(64);
    expect(bad.lines[0]).toContain('callsPerCallerPerMinute');
    expect((await cli('abuse', 'set', '--tenant', tenantId, '--set', 'nonsense')).code).toBe(64);
    expect((await cli('abuse', 'set', '--tenant', tenantId, '--set', 'disposal.fanout=explode')).code).toBe(64);
    expect((await cli('abuse', 'set', '--tenant', tenantId)).code).toBe(64);
    expect((await cli('abuse', 'limits', '--tenant', tenantId)).json[0]).toMatchObject({
      own: { callsPerCallerPerMinute: null, disposal: { short_calls: 'block', x_burst: 'quarantine' } },
    });
    expect((await cli('abuse', '--help')).lines.join('\n')).toMatch(/abuse set[\s\S]*abuse lift/);
  });

  it('abuse flags, abuse actions and abuse lift: a quarantine lifted from the CLI enables the X again, audited', async () => {
    const flagId = await new AbuseFlagStore(db.pool).insert({
      tenantId, kind: 'x_burst', numberHash: null, numberMasked: null, x: X, distinctCount: 5, windowSeconds: 300, evidence: { calls: 5 }, createdAt: Date.now(),
    });
    const action = await new AbuseDisposal(db.pool, new QuarantinedNumbers(db.pool), () => undefined).quarantine(tenantId, X, flagId, Date.now());
    expect(action).not.toBeNull();
    const flags = await cli('abuse', 'flags', '--tenant', tenantId);
    expect(flags.json[0]).toMatchObject({ id: flagId, kind: 'x_burst', x: X, action: { action: 'quarantine', liftedAt: null } });
    expect(flags.json[0]).not.toHaveProperty('numberHash');
    expect((await cli('abuse', 'actions', '--tenant', tenantId, '--active')).json.map((a) => a.id)).toEqual([action!.id]);

    const lifted = await cli('abuse', 'lift', '--tenant', tenantId, '--id', String(action!.id));
    expect(lifted.code).toBe(0);
    expect(lifted.json[0]).toMatchObject({ id: action!.id, liftedBy: expect.stringMatching(/^cli:/) });
    const [state] = await db.pool.query<RowDataPacket[]>('SELECT state FROM pool_numbers WHERE x = ?', [X]);
    expect(state[0]!.state).toBe('enabled');
    expect((await cli('abuse', 'actions', '--tenant', tenantId, '--active')).json).toEqual([]);
    const [audit] = await db.pool.query<RowDataPacket[]>("SELECT target FROM audit_log WHERE action = 'abuse.lift'");
    expect(audit.map((r) => r.target)).toEqual([String(action!.id)]);
    // An action of no such id (or another tenant's) is refused, exit 65.
    expect((await cli('abuse', 'lift', '--tenant', tenantId, '--id', '999999')).code).toBe(65);
  });
});
