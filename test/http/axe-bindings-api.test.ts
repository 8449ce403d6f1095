import type { Binding } from '../../src/domain/binding-rules';
import type { BindingService } from '../../src/bindings/binding-service';
import { startBindingRoutesApp, type BindingRoutesApp } from '../support/binding-routes-app';
import { createTestDatabase, ensureTenants, type TestDatabase } from '../support/mysql';

/**
 * AXE bindings over HTTP (binding routes on a bare Fastify app, real MariaDB): the same verbs as the
 * other modes, the extension in every answer, and the tenant's extension length.
 */
type Page = { items: Binding[]; nextCursor: string | null };

const T1 = 'axe-tenant-one';
const T2 = 'axe-tenant-two';

describe('AXE bindings over HTTP', () => {
  let db: TestDatabase;
  let routes: BindingRoutesApp;
  let registry: BindingService;
  const call = <T>(...args: Parameters<BindingRoutesApp['call']>) => routes.call<T>(...args);
  const refused = (...args: Parameters<BindingRoutesApp['refused']>) => routes.refused(...args);

  beforeAll(async () => {
    db = await createTestDatabase();
    routes = await startBindingRoutesApp(db.pool, T1);
    registry = routes.registry;
    await ensureTenants(db.pool, T1, T2);
    await registry.importNumbers(T1, [
      { x: '700200000000001', area: '010' },
      { x: '700200000000002', area: '010' },
      { x: '700200000000003', area: '0755' },
    ]);
    await registry.importNumbers(T2, [{ x: '700200000000009', area: '010' }]);
  });
  afterAll(async () => {
    await routes?.app.close();
    await db?.drop();
  });

  it('create returns X and the extension (201), a retry the same binding (200); get, list, update, history and unbind work as for AXB', async () => {
    const body = { requestId: 'parcel-1', mode: 'axe', a: '13800000001', b: '13900000001', area: '0755', userData: 'parcel 1' };
    const first = await call<Binding>('POST', '/v1/bindings', body);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ kind: 'axe', x: '700200000000003', a: '13800000001', b: '13900000001', state: 'active', userData: 'parcel 1' });
    expect(first.body.extension).toMatch(/^\d{4}$/);
    const again = await call<Binding>('POST', '/v1/bindings', body);
    expect(again).toMatchObject({ status: 200, body: { id: first.body.id, extension: first.body.extension } });

    const id = first.body.id;
    expect((await call<Binding>('GET', `/v1/bindings/${id}`)).body).toMatchObject({ kind: 'axe', extension: first.body.extension });
    const page = (await call<Page>('GET', '/v1/bindings?x=700200000000003')).body;
    expect(page.items.map((b) => b.id)).toEqual([id]);
    expect((await call<Page>('GET', '/v1/bindings?number=13900000001')).body.items[0]).toMatchObject({ extension: first.body.extension });

    const updated = await call<Binding>('PATCH', `/v1/bindings/${id}`, { b: '13900000011', restriction: 'a_to_b' });
    expect(updated).toMatchObject({ status: 200, body: { id, b: '13900000011', restriction: 'a_to_b', extension: first.body.extension, x: '700200000000003' } });
    const history = (await call<{ items: Array<{ change: Record<string, [unknown, unknown]> }> }>('GET', `/v1/bindings/${id}/history`)).body.items;
    expect(history[0]!.change).toEqual({ b: ['139****0001', '139****0011'], restriction: ['both', 'a_to_b'] });

    expect(await call<Binding>('DELETE', `/v1/bindings/${id}`)).toMatchObject({ status: 200, body: { id, state: 'unbound', extension: first.body.extension } });
    // Another tenant sees none of it.
    expect((await refused('GET', `/v1/bindings/${id}`, undefined, T2)).status).toBe(404);
  });

  it('B alone (no A) and a named extension on a named X; the same extension again is a conflict on the extension', async () => {
    const res = await call<Binding>('POST', '/v1/bindings', { mode: 'axe', b: '13900000002', x: '700200000000001', extension: '0815' });
    expect(res).toMatchObject({ status: 201, body: { kind: 'axe', a: null, x: '700200000000001', extension: '0815' } });
    expect(await refused('POST', '/v1/bindings', { mode: 'axe', b: '13900000003', x: '700200000000001', extension: '0815' })).toEqual({
      status: 409, code: 'binding_conflict', field: 'extension',
    });
    // Other bindings answer extension null.
    expect((await call<Binding>('POST', '/v1/bindings', { mode: 'axb', a: '13800000004', b: '13900000004' })).body).toMatchObject({ extension: null });
  });

  it('refuses with machine-readable codes and fields', async () => {
    const cases: Array<[Record<string, unknown>, number, string, string]> = [
      [{ mode: 'axe', b: '13900000005', extension: '12' }, 400, 'invalid_extension', 'extension'],
      [{ mode: 'axe', b: '13900000005', extension: '12345' }, 400, 'invalid_extension', 'extension'],
      [{ mode: 'axe', b: '13900000005', extension: '12a4' }, 400, 'invalid_extension', 'extension'],
      [{ mode: 'axb', a: '13800000005', b: '13900000005', extension: '1234' }, 400, 'unknown_field', 'extension'],
      [{ mode: 'xb', b: '13900000005', extension: '1234' }, 400, 'unknown_field', 'extension'],
      [{ mode: 'axe', b: '13900000005', allowList: ['13600000005'] }, 400, 'unknown_field', 'allowList'],
      [{ mode: 'axe', a: '13900000005', b: '13900000005' }, 400, 'same_number', 'b'],
      [{ mode: 'axe', b: '13900000005', x: '700200000000009' }, 409, 'x_not_in_pool', 'x'],
      [{ mode: 'axe', b: '13900000005', area: '0571', strictArea: true }, 409, 'area_unavailable', 'area'],
    ];
    for (const [body, status, code, field] of cases) expect({ body, ...(await refused('POST', '/v1/bindings', body)) }).toEqual({ body, status, code, field });
  });

  it('the tenant sets its extension length (3-6), only while it has no active AXE binding', async () => {
    expect(await call('GET', '/v1/axe/settings', undefined, T2)).toEqual({ status: 200, body: { extensionLength: 4 } });
    expect(await refused('PATCH', '/v1/axe/settings', { extensionLength: 7 }, T2)).toEqual({ status: 400, code: 'invalid_extension_length', field: 'extensionLength' });
    expect(await refused('PATCH', '/v1/axe/settings', { extensionLength: 5, colour: 1 }, T2)).toMatchObject({ status: 400, code: 'unknown_field' });
    expect(await call('PATCH', '/v1/axe/settings', { extensionLength: 6 }, T2)).toEqual({ status: 200, body: { extensionLength: 6 } });
    const made = await call<Binding>('POST', '/v1/bindings', { mode: 'axe', b: '13900000006' }, T2);
    expect(made.body.extension).toMatch(/^\d{6}$/);
    expect(await refused('PATCH', '/v1/axe/settings', { extensionLength: 3 }, T2)).toEqual({ status: 409, code: 'axe_bindings_active', field: 'extensionLength' });
    // The same length again changes nothing and is no conflict.
    expect((await call('PATCH', '/v1/axe/settings', { extensionLength: 6 }, T2)).status).toBe(200);
    // T1 is unaffected.
    expect((await call('GET', '/v1/axe/settings')).body).toEqual({ extensionLength: 4 });
  });
});
