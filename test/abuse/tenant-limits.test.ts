import type { RowDataPacket } from 'mysql2/promise';
import { abuseConfig } from '../../src/config';
import { resolveLimits, TenantLimits, TenantLimitsStore, validateSettingsChange } from '../../src/abuse/tenant-limits';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';

interface ErrorBody {
  error: { code: string; message: string; field?: string };
}
interface LimitsBody {
  effective: Record<string, unknown>;
  own: Record<string, unknown>;
  platform: Record<string, unknown>;
}

describe('abuse limits per tenant (issue #10 item 5)', () => {
  let sys: TestSystem;
  let otherKey: string;
  let otherId: string;

  beforeAll(async () => {
    sys = await startTestSystem({
      workers: false,
      env: { CALLS_PER_CALLER_PER_MINUTE: '3', BINDINGS_PER_NUMBER_PER_HOUR: '3', FANOUT_DISTINCT_PARTIES: '50', PAIR_BINDINGS_PER_HOUR: '30' },
    });
    const other = await sys.tenants.create({ name: 'other', defaultX: '700190000000001' });
    await sys.app.bindings.importNumbers(other.id, [{ x: '700190000000001', area: '010' }]);
    otherId = other.id;
    otherKey = (await sys.tenants.createApiKey(other.id, 'test')).key;
    await sys.app.bindings.importNumbers(sys.tenantId, Array.from({ length: 6 }, (_, i) => ({ x: `70010000000010${i}`, area: '010' })));
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('GET /v1/abuse/limits shows the platform defaults until the tenant sets its own', async () => {
    const { status, body } = await sys.api<LimitsBody>('GET', '/v1/abuse/limits');
    expect(status).toBe(200);
    expect(body.effective).toMatchObject({ callsPerCallerPerMinute: 3, bindingsPerNumberPerHour: 3, pairBindingsPerHour: 30, fanoutDistinctParties: 50 });
    expect(body.own).toMatchObject({ callsPerCallerPerMinute: null, disposal: null });
    expect(body.platform).toMatchObject({ callsPerCallerPerMinute: 3 });
    expect(body.effective.disposal).toEqual({ fanout: 'warn', caller_burst: 'warn', x_burst: 'warn', short_calls: 'warn', bulk_binding: 'warn' });
  });

  it("a tenant's own calls limit applies to its calls at once; another tenant keeps the platform's", async () => {
    const set = await sys.api<LimitsBody>('PATCH', '/v1/abuse/limits', { callsPerCallerPerMinute: 1 });
    expect(set.status).toBe(200);
    expect(set.body.effective.callsPerCallerPerMinute).toBe(1);
    const a = '13800031001';
    sys.sim.setPhone(a, { answer: 'busy' });
    expect((await sys.api('POST', '/v1/calls', { requestId: 'tl-1', a, b: '13900031001' })).status).toBe(202);
    const second = await sys.api<ErrorBody>('POST', '/v1/calls', { requestId: 'tl-2', a, b: '13900031002' });
    expect(second.status).toBe(429);
    expect(second.body.error).toMatchObject({ code: 'caller_rate_limited', field: 'a' });
    // The other tenant: the platform's 3.
    for (const i of [1, 2, 3]) expect((await sys.api('POST', '/v1/calls', { requestId: `tl-o${i}`, a, b: `1390003110${i}` }, otherKey)).status).toBe(202);
    expect((await sys.api('POST', '/v1/calls', { requestId: 'tl-o4', a, b: '13900031104' }, otherKey)).status).toBe(429);
    // null puts the platform's back.
    expect((await sys.api<LimitsBody>('PATCH', '/v1/abuse/limits', { callsPerCallerPerMinute: null })).body.effective.callsPerCallerPerMinute).toBe(3);
  });

  it("a tenant's own bindings limit and fan-out threshold apply to its bindings", async () => {
    expect((await sys.api('PATCH', '/v1/abuse/limits', { bindingsPerNumberPerHour: 1, fanoutDistinctParties: 1 })).status).toBe(200);
    const a = '13800032001';
    expect((await sys.api('POST', '/v1/bindings', { mode: 'axb', a, b: '13900032001' })).status).toBe(201);
    const refused = await sys.api<ErrorBody>('POST', '/v1/bindings', { mode: 'axb', a, b: '13900032002' });
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'number_binding_rate_limited', field: 'a' });
    // Fan-out over 1 distinct party: A -> B1 (binding above), then a call A -> B2 raises the flag.
    sys.sim.setPhone(a, { answer: 'busy' });
    expect((await sys.api('POST', '/v1/calls', { requestId: 'tl-f1', a, b: '13900032003' })).status).toBe(202);
    const flags = await waitUntil('the fan-out flag', async () => {
      const { body } = await sys.api<{ items: Array<{ kind: string; evidence: Record<string, number> }> }>('GET', '/v1/abuse/flags?kind=fanout');
      return body.items.length > 0 ? body.items : null;
    });
    expect(flags[0]!.evidence).toMatchObject({ distinctParties: 2, threshold: 1 });
    await sys.api('PATCH', '/v1/abuse/limits', { bindingsPerNumberPerHour: null, fanoutDistinctParties: null });
  });

  it('a tenant may only tighten a limit (403 operator_only, field the setting); bad values are 400 with the field', async () => {
    const looser = await sys.api<ErrorBody>('PATCH', '/v1/abuse/limits', { callsPerCallerPerMinute: 4 });
    expect(looser.status).toBe(403);
    expect(looser.body.error).toMatchObject({ code: 'operator_only', field: 'callsPerCallerPerMinute' });
    const off = await sys.api<ErrorBody>('PATCH', '/v1/abuse/limits', { pairBindingsPerHour: 0 });
    expect(off.body.error).toMatchObject({ code: 'operator_only', field: 'pairBindingsPerHour' });
    const shorterWindow = await sys.api<ErrorBody>('PATCH', '/v1/abuse/limits', { fanoutWindowSeconds: 10 });
    expect(shorterWindow.body.error).toMatchObject({ code: 'operator_only', field: 'fanoutWindowSeconds' });
    const bad = await sys.api<ErrorBody>('PATCH', '/v1/abuse/limits', { callsPerCallerPerMinute: -1 });
    expect(bad.status).toBe(400);
    const unknown = await sys.api<ErrorBody>('PATCH', '/v1/abuse/limits', { callsPerCaller: 1 });
    expect(unknown.status).toBe(400);
    const badDisposal = await sys.api<ErrorBody>('PATCH', '/v1/abuse/limits', { disposal: { short_calls: 'explode' } });
    expect(badDisposal.status).toBe(400);
    // Nothing of the refused changes was stored.
    expect((await sys.api<LimitsBody>('GET', '/v1/abuse/limits')).body.own).toMatchObject({ callsPerCallerPerMinute: null, pairBindingsPerHour: null, fanoutWindowSeconds: null });
  });

  it('changes are audited with the key that made them; refusals are not', async () => {
    expect((await sys.api('PATCH', '/v1/abuse/limits', { pairBindingsPerHour: 5, disposal: { short_calls: 'block' } })).status).toBe(200);
    // One entry per successful change (5 in this suite), none for the 6 refusals; written after the response.
    const rows = await waitUntil('the audit entries', async () => {
      const [found] = await sys.app.pool.query<RowDataPacket[]>("SELECT * FROM audit_log WHERE tenant_id = ? AND action = 'abuse.limits' ORDER BY id", [sys.tenantId]);
      return found.length >= 5 ? found : null;
    });
    expect(rows).toHaveLength(5);
    const last = rows.at(-1)!;
    expect(String(last.actor)).toBe(`key:${sys.apiKeyId}`);
    const details = (typeof last.details === 'string' ? JSON.parse(last.details) : last.details) as { body: Record<string, unknown> };
    expect(details.body).toEqual({ pairBindingsPerHour: 5, disposal: { short_calls: 'block' } });
  });

  it('the pair limit the binding service must apply comes from the same resolver', async () => {
    expect(await sys.app.abuse.pairBindingsPerHour(sys.tenantId)).toBe(5);
    expect(await sys.app.abuse.pairBindingsPerHour(otherId)).toBe(30);
  });

  it("a tenant's own pair limit refuses the pair's next binding within the hour", async () => {
    expect((await sys.api('PATCH', '/v1/abuse/limits', { pairBindingsPerHour: 2 })).status).toBe(200);
    const pair = { mode: 'axb', a: '13800032101', b: '13900032101' };
    expect((await sys.api('POST', '/v1/bindings', pair)).status).toBe(201);
    expect((await sys.api('POST', '/v1/bindings', pair)).status).toBe(201);
    const refused = await sys.api<ErrorBody>('POST', '/v1/bindings', pair);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'pair_rate_limited', field: 'b' });
    await sys.api('PATCH', '/v1/abuse/limits', { pairBindingsPerHour: null });
  });
});

describe('the resolver of effective limits', () => {
  const platform = abuseConfig({ CALLS_PER_CALLER_PER_MINUTE: '10', FANOUT_WINDOW_SECONDS: '600' });

  it("takes each setting from the tenant's own when set, else the platform's; disposal defaults to warn", () => {
    const limits = resolveLimits(platform, { callsPerCallerPerMinute: 2, bindingsPerNumberPerHour: null, disposal: { x_burst: 'quarantine' } });
    expect(limits.callsPerCallerPerMinute).toBe(2);
    expect(limits.bindingsPerNumberPerHour).toBe(platform.bindingsPerNumberPerHour);
    expect(limits.disposal).toMatchObject({ x_burst: 'quarantine', fanout: 'warn' });
  });

  it('the operator may loosen what a tenant may not', () => {
    expect(() => validateSettingsChange({ callsPerCallerPerMinute: 0 }, platform, true)).toThrow(/operator/);
    expect(validateSettingsChange({ callsPerCallerPerMinute: 0 }, platform, false)).toEqual({ callsPerCallerPerMinute: 0 });
    expect(validateSettingsChange({ fanoutWindowSeconds: 3600, shortCallSeconds: 30 }, platform, true)).toEqual({ fanoutWindowSeconds: 3600, shortCallSeconds: 30 });
  });

  it("caches a tenant's limits for its TTL and reads them again after invalidate()", async () => {
    let reads = 0;
    let own: { callsPerCallerPerMinute: number } | null = null;
    const store: Pick<TenantLimitsStore, 'get'> = {
      get: () => {
        reads++;
        return Promise.resolve(own);
      },
    };
    const limits = new TenantLimits(store, platform, 60_000);
    expect((await limits.effective('t1')).callsPerCallerPerMinute).toBe(10);
    own = { callsPerCallerPerMinute: 4 };
    expect((await limits.effective('t1')).callsPerCallerPerMinute).toBe(10);
    expect(reads).toBe(1);
    limits.invalidate('t1');
    expect((await limits.effective('t1')).callsPerCallerPerMinute).toBe(4);
    expect(reads).toBe(2);
    // Past the TTL the routing path answers with what it holds and refreshes behind it.
    own = { callsPerCallerPerMinute: 6 };
    const later = Date.now() + 120_000;
    expect((await limits.forRouting('t1', later)).callsPerCallerPerMinute).toBe(4);
    await waitUntil('the refresh behind the routing answer', async () => (await limits.forRouting('t1', later)).callsPerCallerPerMinute === 6);
  });
});
