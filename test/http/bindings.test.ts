import type { Binding } from '../../src/bindings/binding-service';
import { blockNumbers } from '../../src/domain/pool';
import { startTestSystem, type TestSystem } from '../support/system';

type ErrorBody = { error: { code: string; field?: string } };

describe('bindings and pool over HTTP', () => {
  let sys: TestSystem;
  let otherKey: string;

  beforeAll(async () => {
    sys = await startTestSystem();
    const other = await sys.tenants.create({ name: 'other' });
    otherKey = (await sys.tenants.createApiKey(other.id, 'k')).key;
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('the operator assigns a whole 11-digit 700 block and a list; a non-700 number is refused; the tenant cannot import', async () => {
    await sys.tenants.update(sys.tenantId, { poolQuota: 20_000 });
    expect(await sys.app.bindings.importNumbers(sys.tenantId, blockNumbers('70020000000', '010'))).toBe(10_000);
    expect(await sys.app.bindings.importNumbers(sys.tenantId, [{ x: '700300000000001', area: '0755' }])).toBe(1);
    await expect(sys.app.bindings.importNumbers(sys.tenantId, [{ x: '13800000001', area: '010' }])).rejects.toMatchObject({
      code: 'invalid_privacy_number',
      field: 'numbers[0].x',
    });
    const byTenant = await sys.api<ErrorBody>('POST', '/v1/pool/numbers', { numbers: [{ x: '700300000000002', area: '0755' }] });
    expect(byTenant).toMatchObject({ status: 403, body: { error: { code: 'operator_only' } } });
  });

  it('creates an AXB binding with an allocated X (201), idempotent by requestId (200)', async () => {
    const body = { requestId: 'order-1', mode: 'axb', a: '13800010001', b: '13900010001', area: '0755', userData: 'order 1' };
    const first = await sys.api<Binding>('POST', '/v1/bindings', body);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ kind: 'axb', x: '700300000000001', a: '13800010001', b: '13900010001', state: 'active', userData: 'order 1' });
    const again = await sys.api<Binding>('POST', '/v1/bindings', body);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect((await sys.app.routes.lookup(first.body.x, '13800010001'))).toMatchObject({ route: { target: '13900010001' } });
  });

  it('refuses with machine-readable codes and fields', async () => {
    const cases: Array<[unknown, number, string, string]> = [
      [{ mode: 'axb', a: '13800010002', b: '13900010002', ttlSeconds: 30 }, 400, 'invalid_ttl', 'ttlSeconds'],
      [{ mode: 'axb', b: '13900010002' }, 400, 'missing_field', 'a'],
      [{ mode: 'xb', a: '13800010002', b: '13900010002' }, 400, 'unknown_field', 'a'],
      [{ mode: 'axb', a: '13800010001', b: '13900010009', x: '700300000000001' }, 409, 'binding_conflict', 'x'],
      [{ mode: 'axb', a: '13800010002', b: '13900010002', area: '0571', strictArea: true }, 409, 'area_unavailable', 'area'],
      [{ mode: 'axb', a: '13800010002', b: '13900010002', x: '700999999999999' }, 409, 'x_not_in_pool', 'x'],
      [{ mode: 'axb', a: '12', b: '13900010002' }, 400, 'invalid_phone_number', 'a'],
      [{ mode: 'abx', b: '13900010002' }, 400, 'invalid_field', 'mode'],
    ];
    for (const [body, status, code, field] of cases) {
      const res = await sys.api<ErrorBody>('POST', '/v1/bindings', body);
      expect({ status: res.status, ...res.body.error }).toMatchObject({ status, code, field });
    }
  });

  it('another tenant sees none of it; unbinding keeps the binding as history and stops its routes', async () => {
    const { body } = await sys.api<Binding>('POST', '/v1/bindings', { mode: 'xb', b: '13900010003', allowList: ['13600010003'] });
    expect((await sys.api('GET', `/v1/bindings/${body.id}`, undefined, otherKey)).status).toBe(404);
    expect((await sys.api('DELETE', `/v1/bindings/${body.id}`, undefined, otherKey)).status).toBe(404);
    expect((await sys.app.routes.lookup(body.x, '13600010003'))).toMatchObject({ route: { target: '13900010003' } });
    const ended = await sys.api<Binding>('DELETE', `/v1/bindings/${body.id}`);
    expect(ended.body.state).toBe('unbound');
    expect((await sys.api<Binding>('GET', `/v1/bindings/${body.id}`)).body.state).toBe('unbound');
    expect(await sys.app.routes.lookup(body.x, '13600010003')).toEqual({ refused: 'unbound' });
  });

  it('an update keeps the id, re-checks the invariant, moves the routes and writes masked history', async () => {
    const { body: bound } = await sys.api<Binding>('POST', '/v1/bindings', { mode: 'axb', a: '13800010010', b: '13900010010' });
    const { body: other } = await sys.api<Binding>('POST', '/v1/bindings', { mode: 'axb', a: '13800010011', b: '13900010011', x: bound.x });
    const clash = await sys.api<ErrorBody>('PATCH', `/v1/bindings/${bound.id}`, { b: other.b });
    expect({ status: clash.status, ...clash.body.error }).toMatchObject({ status: 409, code: 'binding_conflict' });

    const updated = await sys.api<Binding>('PATCH', `/v1/bindings/${bound.id}`, { b: '13900010012', restriction: 'a_to_b', ttlSeconds: 600 });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ id: bound.id, b: '13900010012', restriction: 'a_to_b' });
    expect(updated.body.expiresAt).toBeLessThan(Date.now() + 601_000);
    expect(await sys.app.routes.lookup(bound.x, '13800010010')).toMatchObject({ route: { target: '13900010012' } });
    expect(await sys.app.routes.lookup(bound.x, '13900010010')).toEqual({ refused: 'unbound' });
    expect(await sys.app.routes.lookup(bound.x, '13900010012')).toMatchObject({ refused: 'restricted' });

    const history = await sys.api<{ items: Array<{ change: Record<string, unknown>; actor: string }> }>('GET', `/v1/bindings/${bound.id}/history`);
    expect(history.body.items).toHaveLength(1);
    expect(history.body.items[0]!.change.b).toEqual(['139****0010', '139****0012']);
    expect(JSON.stringify(history.body)).not.toContain('13900010012');
    expect(history.body.items[0]!.actor).toMatch(/^key:/);
  });

  it('lists bindings by number and state', async () => {
    await sys.api('POST', '/v1/bindings', { mode: 'axb', a: '13800010020', b: '13900010020', userData: 'list-me' });
    const byNumber = await sys.api<{ items: Binding[] }>('GET', '/v1/bindings?number=13900010020');
    expect(byNumber.body.items.map((b) => b.userData)).toEqual(['list-me']);
    const ended = await sys.api<{ items: Binding[] }>('GET', '/v1/bindings?state=unbound');
    expect(ended.body.items.every((b) => b.state === 'unbound')).toBe(true);
  });

  it('the same pair bound more than 30 times in an hour is refused; blacklisted numbers are refused', async () => {
    for (let i = 0; i < 30; i++) {
      const r = await sys.api<Binding>('POST', '/v1/bindings', { mode: 'axb', a: '13800010030', b: '13900010030', ttlSeconds: 60 });
      expect(r.status).toBe(201);
      await sys.api('DELETE', `/v1/bindings/${r.body.id}`);
    }
    const refused = await sys.api<ErrorBody>('POST', '/v1/bindings', { mode: 'axb', a: '13900010030', b: '13800010030' });
    expect({ status: refused.status, ...refused.body.error }).toMatchObject({ status: 429, code: 'pair_rate_limited' });

    expect((await sys.api('POST', '/v1/blacklist', { number: '+86 137-0001-0040' })).status).toBe(204);
    const black = await sys.api<ErrorBody>('POST', '/v1/bindings', { mode: 'axb', a: '13800010040', b: '13700010040' });
    expect({ status: black.status, ...black.body.error }).toMatchObject({ status: 403, code: 'number_blacklisted', field: 'b' });
    expect((await sys.api('POST', '/v1/bindings', { mode: 'axb', a: '13800010040', b: '13700010040' }, otherKey)).status).not.toBe(403);
    expect((await sys.api('DELETE', '/v1/blacklist/13700010040')).status).toBe(204);
    expect((await sys.api('POST', '/v1/bindings', { mode: 'axb', a: '13800010040', b: '13700010040' })).status).toBe(201);
  });

  it('reports pool usage per area', async () => {
    const { body } = await sys.api<{ areas: Array<Record<string, unknown>> }>('GET', '/v1/pool/stats');
    const byArea = Object.fromEntries(body.areas.map((a) => [a.area, a]));
    // The block, and the tenant's default X (also area 010).
    expect(byArea['010']).toMatchObject({ numbers: 10_001, enabled: 10_001 });
    expect(Number(byArea['010']!.inUse)).toBeGreaterThan(0);
    expect(byArea['0755']).toMatchObject({ numbers: 1, inUse: 1, activeBindings: 1, maxBindingsPerX: 1 });
  });
});
