import type { Binding } from '../../src/bindings/binding-service';
import { startTestSystem, type TestSystem } from '../support/system';

type ErrorBody = { error: { code: string; field?: string } };
type PoolNumber = { x: string; area: string; state: string; activeBindings: number };
type Stats = { areas: Array<{ area: string; numbers: number; enabled: number; disabled: number; quarantined: number; free: number; inUse: number }> };

describe('pool number states over HTTP', () => {
  let sys: TestSystem;
  const X1 = '700400000000001';
  const X2 = '700400000000002';
  const X3 = '700400000000003';

  beforeAll(async () => {
    sys = await startTestSystem();
    await sys.app.bindings.importNumbers(sys.tenantId, [X1, X2, X3].map((x) => ({ x, area: '021' })));
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('a quarantined number is skipped by allocation and refused when named; its bindings stay, to route again once it is enabled', async () => {
    const first = await sys.api<Binding>('POST', '/v1/bindings', { mode: 'axb', a: '13800080001', b: '13900080001', area: '021' });
    expect(first.body.x).toBe(X1);

    const quarantined = await sys.api<PoolNumber>('PATCH', `/v1/pool/numbers/${X1}`, { state: 'quarantined' });
    expect(quarantined).toEqual({ status: 200, body: { x: X1, area: '021', state: 'quarantined', legacy: false, activeBindings: 1 } });

    const next = await sys.api<Binding>('POST', '/v1/bindings', { mode: 'axb', a: '13800080002', b: '13900080002', area: '021' });
    expect(next.body.x).toBe(X2);
    const named = await sys.api<ErrorBody>('POST', '/v1/bindings', { mode: 'axb', a: '13800080003', b: '13900080003', x: X1 });
    expect({ status: named.status, ...named.body.error }).toMatchObject({ status: 409, code: 'x_unavailable', field: 'x' });
    // Kept in the index; calls to a quarantined X are refused in front of it (test/abuse/anomaly-watch.test.ts).
    expect(await sys.app.routes.lookup(X1, '13800080001')).toMatchObject({ route: { target: '13900080001' } });

    await sys.api('PATCH', `/v1/pool/numbers/${X3}`, { state: 'disabled' });
    const stats = await sys.api<Stats>('GET', '/v1/pool/stats');
    expect(stats.body.areas.find((a) => a.area === '021')).toMatchObject({ numbers: 3, enabled: 1, disabled: 1, quarantined: 1, free: 0, inUse: 2 });

    const listed = await sys.api<{ items: PoolNumber[] }>('GET', '/v1/pool/numbers?state=quarantined');
    expect(listed.body.items.map((n) => n.x)).toEqual([X1]);

    const back = await sys.api<PoolNumber>('PATCH', `/v1/pool/numbers/${X1}`, { state: 'enabled' });
    expect(back.body.state).toBe('enabled');
    const again = await sys.api<Binding>('POST', '/v1/bindings', { mode: 'axb', a: '13800080004', b: '13900080004', area: '021' });
    expect(again.body.x).toBe(X1);
  });

  it('pages through numbers and refuses bad input with codes and fields; another tenant cannot touch them', async () => {
    // The tenant's default X (700100000000001, area 010) is in its pool too, and sorts first.
    const page1 = await sys.api<{ items: PoolNumber[]; nextCursor: string | null }>('GET', '/v1/pool/numbers?area=021&limit=2');
    expect(page1.body.items.map((n) => n.x)).toEqual([X1, X2]);
    const page2 = await sys.api<{ items: PoolNumber[]; nextCursor: string | null }>('GET', `/v1/pool/numbers?area=021&limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body).toEqual({ items: [expect.objectContaining({ x: X3 })], nextCursor: null });

    const badState = await sys.api<ErrorBody>('PATCH', `/v1/pool/numbers/${X2}`, { state: 'retired' });
    expect(badState.status).toBe(400);
    expect(badState.body.error.field).toBe('state');
    const unknown = await sys.api<ErrorBody>('PATCH', '/v1/pool/numbers/700499999999999', { state: 'disabled' });
    expect(unknown.status).toBe(404);

    const other = await sys.tenants.create({ name: 'other' });
    const otherKey = (await sys.tenants.createApiKey(other.id, 'k')).key;
    const foreign = await sys.api<ErrorBody>('PATCH', `/v1/pool/numbers/${X2}`, { state: 'disabled' }, otherKey);
    expect(foreign.status).toBe(404);
    expect((await sys.api<{ items: PoolNumber[] }>('GET', '/v1/pool/numbers', undefined, otherKey)).body.items).toEqual([]);
  });
});
