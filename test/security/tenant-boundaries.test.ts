import { runAdminCli } from '../../src/cli/admin';
import { loadConfig } from '../../src/config';
import { startTestSystem, X, type TestSystem } from '../support/system';

/**
 * A tenant presents only its own numbers, pools belong to the operator, and pass-through (which
 * shows A's real number to B) is off unless the operator turns it on.
 */
const OTHER_X = '700200000000001';

describe('tenant boundaries: numbers, pools and pass-through', () => {
  let sys: TestSystem;
  let otherKey: string;
  let otherId: string;

  beforeAll(async () => {
    sys = await startTestSystem();
    const other = await sys.tenants.create({ name: 'other', defaultX: OTHER_X });
    otherId = other.id;
    otherKey = (await sys.tenants.createApiKey(other.id, 'k')).key;
    await sys.app.bindings.importNumbers(other.id, [{ x: OTHER_X, area: '020' }, { x: '700200000000002', area: '020' }]);
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const cli = async (...argv: string[]): Promise<{ code: number; text: string }> => {
    const lines: string[] = [];
    const code = await runAdminCli(argv, (l) => lines.push(l), { MYSQL_URL: sys.env.MYSQL_URL });
    return { code, text: lines.join('\n') };
  };

  it("a click-to-dial presenting another tenant's X (named or as the default) is refused with a code; nobody is rung", async () => {
    const before = sys.sim.originateCount();
    const foreign = await sys.api<{ error: { code: string; field: string } }>('POST', '/v1/calls', { requestId: 'foreign-x', a: '13800005001', b: '13900005001', x: X }, otherKey);
    expect(foreign).toMatchObject({ status: 409, body: { error: { code: 'x_not_in_pool', field: 'x' } } });

    const unassigned = await sys.api<{ error: { code: string } }>('POST', '/v1/calls', { requestId: 'unassigned-x', a: '13800005001', b: '13900005001', x: '700900000000009' }, otherKey);
    expect(unassigned).toMatchObject({ status: 409, body: { error: { code: 'x_not_in_pool' } } });

    const sneaky = await sys.tenants.create({ name: 'sneaky', defaultX: X });
    const sneakyKey = (await sys.tenants.createApiKey(sneaky.id, 'k')).key;
    const byDefault = await sys.api<{ error: { code: string } }>('POST', '/v1/calls', { requestId: 'default-x', a: '13800005002', b: '13900005002' }, sneakyKey);
    expect(byDefault).toMatchObject({ status: 409, body: { error: { code: 'x_not_in_pool' } } });

    await sys.app.bindings.setNumberState(otherId, '700200000000002', 'quarantined');
    const quarantined = await sys.api<{ error: { code: string } }>('POST', '/v1/calls', { requestId: 'quarantined-x', a: '13800005003', b: '13900005003', x: '700200000000002' }, otherKey);
    expect(quarantined).toMatchObject({ status: 409, body: { error: { code: 'x_unavailable' } } });
    expect(sys.sim.originateCount()).toBe(before);

    sys.sim.setPhone('13800005004', { answer: 'busy' });
    const own = await sys.api<{ id: string; x: string }>('POST', '/v1/calls', { requestId: 'own-x', a: '13800005004', b: '13900005004', x: OTHER_X }, otherKey);
    expect(own).toMatchObject({ status: 202, body: { x: OTHER_X } });
  });

  it('a tenant cannot claim pool numbers; the operator assigns them within a quota, never one another tenant holds', async () => {
    const claim = await sys.api<{ error: { code: string } }>('POST', '/v1/pool/numbers', { numbers: [{ x: X, area: '010' }] }, otherKey);
    expect(claim).toMatchObject({ status: 403, body: { error: { code: 'operator_only' } } });
    const block = await sys.api<{ error: { code: string } }>('POST', '/v1/pool/numbers', { block: '70030000000', area: '010' }, otherKey);
    expect(block.status).toBe(403);
    expect((await sys.app.bindings.numberState(otherId, X))).toBeNull();

    const taken = await cli('pool', 'import', '--tenant', otherId, '--area', '010', '--block', '70010000000');
    expect(taken.code).toBe(65);
    expect(taken.text).toContain('number_held_by_other_tenant');
    expect(await sys.app.bindings.numberState(otherId, '700100000000002')).toBeNull();

    expect((await cli('tenant', 'set', '--tenant', otherId, '--pool-quota', '5')).code).toBe(0);
    const over = await cli('pool', 'import', '--tenant', otherId, '--area', '020', '--block', '70020000001');
    expect(over.code).toBe(65);
    expect(over.text).toContain('pool_quota_exceeded');
    expect((await sys.api<{ items: unknown[] }>('GET', '/v1/pool/numbers', undefined, otherKey)).body.items).toHaveLength(2);

    expect((await cli('tenant', 'set', '--tenant', otherId, '--pool-quota', '10002')).code).toBe(0);
    expect(await cli('pool', 'import', '--tenant', otherId, '--area', '020', '--block', '70020000001')).toMatchObject({ code: 0 });
    // Running the same import again adds nothing and refuses nothing.
    const again = await cli('pool', 'import', '--tenant', otherId, '--area', '020', '--block', '70020000001');
    expect(again.code).toBe(0);
    expect(JSON.parse(again.text)).toMatchObject({ offered: 10_000, imported: 0 });
  });

  it('pass-through is off for the platform and for new tenants unless the operator turns it on', async () => {
    expect(loadConfig({ ESL_PASSWORD: 'x' }).callbacks.passthroughAllowed).toBe(false);
    const fresh = await sys.tenants.create({ name: 'fresh' });
    expect(fresh.passthroughAllowed).toBe(false);
    const made = await cli('tenant', 'create', '--name', 'cli-made');
    expect(JSON.parse(made.text)).toMatchObject({ passthroughAllowed: false, poolQuota: 10_000 });

    const refused = await sys.api<{ error: { code: string } }>('POST', '/v1/calls', { requestId: 'pt', a: '13800005100', b: '13900005100', displayMode: 'passthrough' });
    expect(refused).toMatchObject({ status: 403, body: { error: { code: 'passthrough_forbidden' } } });
  });
});
