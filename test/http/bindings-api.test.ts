import type { Binding } from '../../src/domain/binding-rules';
import { blockNumbers } from '../../src/domain/pool';
import type { BindingService } from '../../src/bindings/binding-service';
import { startBindingRoutesApp, type BindingRoutesApp } from '../support/binding-routes-app';
import { createTestDatabase, ensureTenants, type TestDatabase } from '../support/mysql';

/**
 * The binding and pool routes of binding-routes.ts on a bare Fastify app, over a real MariaDB:
 * the tenant comes from an `x-tenant` header here instead of an API key.
 */
type Page = { items: Binding[]; nextCursor: string | null };

const T1 = 'tenant-one';
const T2 = 'tenant-two';

describe('binding routes (binding-routes.ts)', () => {
  let db: TestDatabase;
  let routes: BindingRoutesApp;
  let registry: BindingService;
  const call = <T>(...args: Parameters<BindingRoutesApp['call']>) => routes.call<T>(...args);
  const refused = (...args: Parameters<BindingRoutesApp['refused']>) => routes.refused(...args);

  beforeAll(async () => {
    db = await createTestDatabase();
    routes = await startBindingRoutesApp(db.pool, T1);
    registry = routes.registry;

    await ensureTenants(db.pool, T1, T2, 'tenant-stats');
    await registry.importNumbers(T1, [
      { x: '700100000000001', area: '010' },
      { x: '700100000000002', area: '010' },
      { x: '700100000000003', area: '0755' },
    ]);
    await registry.importNumbers(T2, [{ x: '700900000000001', area: '010' }]);
  });
  afterAll(async () => {
    await routes?.app.close();
    await db?.drop();
  });

  describe('POST /pool/numbers', () => {
    it("is the operator's: a tenant is refused with operator_only and nothing is added", async () => {
      expect(await refused('POST', '/v1/pool/numbers', { block: '70050000000', area: '021' })).toMatchObject({ status: 403, code: 'operator_only' });
      const [rows] = await db.pool.query<any[]>("SELECT COUNT(*) AS n FROM pool_numbers WHERE area = '021'");
      expect(rows[0].n).toBe(0);
    });

    it('the operator imports a whole 11-digit block once, and refuses bad numbers, areas and blocks', async () => {
      await db.pool.query('UPDATE tenants SET pool_quota = 20000 WHERE id = ?', [T1]);
      expect(await registry.importNumbers(T1, blockNumbers('70050000000', '021'))).toBe(10_000);
      const [rows] = await db.pool.query<any[]>("SELECT COUNT(*) AS n, MIN(x) AS lo, MAX(x) AS hi FROM pool_numbers WHERE tenant_id = ? AND area = '021'", [T1]);
      expect(rows[0]).toMatchObject({ n: 10_000, lo: '700500000000000', hi: '700500000009999' });
      expect(await registry.importNumbers(T1, blockNumbers('70050000000', '021'))).toBe(0);
      expect(await registry.importNumbers(T1, [{ x: '700100000000009', area: '020' }])).toBe(1);
      await expect(registry.importNumbers(T1, [{ x: '13800000001', area: '010' }])).rejects.toMatchObject({ code: 'invalid_privacy_number', field: 'numbers[0].x' });
      await expect(registry.importNumbers(T1, [{ x: '700100000000010', area: 'beijing' }])).rejects.toMatchObject({ code: 'invalid_area', field: 'numbers[0].area' });
      expect(() => blockNumbers('7005000', '021')).toThrow(expect.objectContaining({ code: 'invalid_block' }));
    });
  });

  describe('POST /bindings', () => {
    it('creates an AXB on the first free X of the area (201), and repeats by requestId (200)', async () => {
      const body = { requestId: 'order-1', mode: 'axb', a: '13800000001', b: '13900000001', area: '0755', userData: 'order 1', record: true };
      const first = await call<Binding>('POST', '/v1/bindings', body);
      expect(first.status).toBe(201);
      expect(first.body).toMatchObject({ kind: 'axb', x: '700100000000003', a: '13800000001', b: '13900000001', state: 'active', record: true, userData: 'order 1' });
      expect(first.body.expiresAt).toBeGreaterThan(Date.now() + 23 * 3600_000);
      const again = await call<Binding>('POST', '/v1/bindings', body);
      expect(again.status).toBe(200);
      expect(again.body.id).toBe(first.body.id);
    });

    it('creates an XB with an allow-list; normalises numbers', async () => {
      const res = await call<Binding>('POST', '/v1/bindings', { mode: 'xb', b: '+86 139-0000-0002', x: '700100000000002', allowList: ['13600000002'] });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ kind: 'xb', a: null, b: '13900000002', x: '700100000000002', allowList: ['13600000002'] });
    });

    it('refuses with machine-readable codes and fields', async () => {
      const cases: Array<[Record<string, unknown>, number, string, string]> = [
        [{ mode: 'axb', a: '13800000003', b: '13900000003', ttlSeconds: 59 }, 400, 'invalid_ttl', 'ttlSeconds'],
        [{ mode: 'axb', a: '13800000003', b: '13900000003', ttlSeconds: 7 * 24 * 3600 + 1 }, 400, 'invalid_ttl', 'ttlSeconds'],
        [{ mode: 'axb', b: '13900000003' }, 400, 'missing_field', 'a'],
        [{ mode: 'xb', a: '13800000003', b: '13900000003' }, 400, 'unknown_field', 'a'],
        [{ mode: 'axb', a: '13800000003', b: '13900000003', colour: 'red' }, 400, 'unknown_field', 'colour'],
        [{ mode: 'axb', a: '13800000003', b: '13800000003' }, 400, 'same_number', 'b'],
        [{ mode: 'axb', a: '12', b: '13900000003' }, 400, 'invalid_phone_number', 'a'],
        // 13800000001 is already on 700100000000003
        [{ mode: 'axb', a: '13800000001', b: '13900000009', x: '700100000000003' }, 409, 'binding_conflict', 'x'],
        // the XB holds 700100000000002 alone
        [{ mode: 'axb', a: '13800000003', b: '13900000003', x: '700100000000002' }, 409, 'binding_conflict', 'x'],
        [{ mode: 'axb', a: '13800000003', b: '13900000003', x: '700999999999999' }, 409, 'x_not_in_pool', 'x'],
        // another tenant's number is not in this pool either
        [{ mode: 'axb', a: '13800000003', b: '13900000003', x: '700900000000001' }, 409, 'x_not_in_pool', 'x'],
        [{ mode: 'axb', a: '13800000003', b: '13900000003', area: '0571', strictArea: true }, 409, 'area_unavailable', 'area'],
        [
          { mode: 'xb', b: '13900000003', allowList: Array.from({ length: 31 }, (_, i) => `136${String(i).padStart(8, '0')}`) },
          400, 'allow_list_too_long', 'allowList',
        ],
        [{ mode: 'xb', b: '13900000003', userData: 'u'.repeat(257) }, 400, 'invalid_field', 'userData'],
      ];
      for (const [body, status, code, field] of cases) {
        expect({ body, ...(await refused('POST', '/v1/bindings', body)) }).toEqual({ body, status, code, field });
      }
      // nothing was written by any of them
      expect((await call<Page>('GET', '/v1/bindings?number=13900000003')).body.items).toEqual([]);
    });

    it('falls back to another area unless strict', async () => {
      const res = await call<Binding>('POST', '/v1/bindings', { mode: 'axb', a: '13800000004', b: '13900000004', area: '0571' });
      expect(res.status).toBe(201);
    });

    it('refuses the 31st binding of one pair (either order) within an hour', async () => {
      for (let i = 0; i < 30; i++) {
        const [a, b] = i % 2 === 0 ? ['13800000030', '13900000030'] : ['13900000030', '13800000030'];
        const r = await call<Binding>('POST', '/v1/bindings', { mode: 'axb', a, b, ttlSeconds: 60 });
        expect(r.status).toBe(201);
        expect((await call('DELETE', `/v1/bindings/${r.body.id}`)).status).toBe(200);
      }
      expect(await refused('POST', '/v1/bindings', { mode: 'axb', a: '13900000030', b: '13800000030' })).toEqual({
        status: 429, code: 'pair_rate_limited', field: 'b',
      });
      // another pair with one of the same numbers is not limited
      expect((await call('POST', '/v1/bindings', { mode: 'axb', a: '13800000030', b: '13900000031' })).status).toBe(201);
      // nor is the same pair of another tenant
      expect((await call('POST', '/v1/bindings', { mode: 'axb', a: '13800000030', b: '13900000030' }, T2)).status).toBe(201);
    });

    it('refuses blacklisted numbers, the tenant’s and the platform’s, naming the field', async () => {
      expect((await call('POST', '/v1/blacklist', { number: '+86 137-0000-0040' })).status).toBe(204);
      expect(await refused('POST', '/v1/bindings', { mode: 'axb', a: '13800000040', b: '13700000040' })).toEqual({
        status: 403, code: 'number_blacklisted', field: 'b',
      });
      expect(await refused('POST', '/v1/bindings', { mode: 'axb', a: '13700000040', b: '13800000040' })).toMatchObject({ code: 'number_blacklisted', field: 'a' });
      expect(await refused('POST', '/v1/bindings', { mode: 'xb', b: '13800000041', allowList: ['13700000040'] })).toMatchObject({
        code: 'number_blacklisted', field: 'allowList[0]',
      });
      // the tenant's list is its own
      expect((await call('POST', '/v1/bindings', { mode: 'axb', a: '13800000040', b: '13700000040' }, T2)).status).toBe(201);

      await registry.blacklistAdd(null, '13700000041');
      expect(await refused('POST', '/v1/bindings', { mode: 'axb', a: '13700000041', b: '13800000042' }, T2)).toMatchObject({
        status: 403, code: 'number_blacklisted', field: 'a',
      });

      expect((await call('DELETE', '/v1/blacklist/13700000040')).status).toBe(204);
      expect((await call('POST', '/v1/bindings', { mode: 'axb', a: '13800000040', b: '13700000040' })).status).toBe(201);
    });
  });

  describe('GET, PATCH, DELETE /bindings/:id and history', () => {
    it('another tenant’s binding is not found, whatever the verb', async () => {
      const { body } = await call<Binding>('POST', '/v1/bindings', { mode: 'axb', a: '13800000050', b: '13900000050' });
      expect((await call<Binding>('GET', `/v1/bindings/${body.id}`)).body.id).toBe(body.id);
      for (const [method, url, payload] of [
        ['GET', `/v1/bindings/${body.id}`, undefined],
        ['PATCH', `/v1/bindings/${body.id}`, { record: true }],
        ['DELETE', `/v1/bindings/${body.id}`, undefined],
        ['GET', `/v1/bindings/${body.id}/history`, undefined],
      ] as const) {
        expect(await refused(method, url, payload, T2)).toMatchObject({ status: 404, code: 'not_found' });
      }
      expect((await call<Binding>('GET', `/v1/bindings/${body.id}`)).body.state).toBe('active');
      expect(await refused('GET', '/v1/bindings/00000000-0000-4000-8000-000000000000')).toMatchObject({ status: 404, code: 'not_found' });
    });

    it('an update keeps the id, re-checks the invariant and writes history with masked numbers', async () => {
      const { body: bound } = await call<Binding>('POST', '/v1/bindings', { mode: 'axb', a: '13800000060', b: '13900000060', x: '700100000000001' });
      const { body: other } = await call<Binding>('POST', '/v1/bindings', { mode: 'axb', a: '13800000061', b: '13900000061', x: '700100000000001' });

      expect(await refused('PATCH', `/v1/bindings/${bound.id}`, { b: other.a })).toEqual({ status: 409, code: 'binding_conflict', field: 'x' });
      expect(await refused('PATCH', `/v1/bindings/${bound.id}`, { ttlSeconds: 10 })).toEqual({ status: 400, code: 'invalid_ttl', field: 'ttlSeconds' });
      expect((await refused('PATCH', `/v1/bindings/${bound.id}`, {})).status).toBe(400);
      expect(await refused('PATCH', `/v1/bindings/${bound.id}`, { x: '700100000000002' })).toMatchObject({ status: 400, code: 'unknown_field', field: 'x' });
      // the refused patches changed nothing
      expect((await call<Binding>('GET', `/v1/bindings/${bound.id}`)).body).toMatchObject({ b: '13900000060', expiresAt: bound.expiresAt });

      const before = Date.now();
      const updated = await call<Binding>('PATCH', `/v1/bindings/${bound.id}`, { b: '13900000062', restriction: 'a_to_b', ttlSeconds: 600, record: true });
      expect(updated.status).toBe(200);
      expect(updated.body).toMatchObject({ id: bound.id, x: bound.x, a: '13800000060', b: '13900000062', restriction: 'a_to_b', record: true });
      expect(updated.body.expiresAt).toBeGreaterThanOrEqual(before + 600_000 - 1000);
      expect(updated.body.expiresAt).toBeLessThanOrEqual(Date.now() + 600_000);

      // the old B is free again on this X, the new one is taken
      expect((await call('POST', '/v1/bindings', { mode: 'axb', a: '13800000063', b: '13900000060', x: bound.x })).status).toBe(201);
      expect(await refused('POST', '/v1/bindings', { mode: 'axb', a: '13800000064', b: '13900000062', x: bound.x })).toMatchObject({ code: 'binding_conflict' });

      const history = await call<{ items: Array<{ at: number; actor: string; requestId: string | null; change: Record<string, unknown> }> }>(
        'GET', `/v1/bindings/${bound.id}/history`,
      );
      expect(history.status).toBe(200);
      expect(history.body.items).toHaveLength(1);
      const [entry] = history.body.items;
      expect(entry!.change.b).toEqual(['139****0060', '139****0062']);
      expect(entry!.change.restriction).toEqual(['both', 'a_to_b']);
      expect(entry!.change.record).toEqual([false, true]);
      expect(entry!.change.a).toBeUndefined();
      expect(entry!.actor).toBe('key:tenant-one-key');
      expect(entry!.requestId).toEqual(expect.any(String));
      expect(JSON.stringify(history.body)).not.toMatch(/1390000006[02]/);

      const [rows] = await db.pool.query<any[]>('SELECT change_json, request_id FROM binding_history WHERE binding_id = ?', [bound.id]);
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows[0].change_json)).not.toMatch(/1390000006[02]/);
    });

    it('DELETE ends the binding at once and returns it; it stays readable; an ended binding cannot be updated', async () => {
      const { body } = await call<Binding>('POST', '/v1/bindings', { mode: 'axb', a: '13800000070', b: '13900000070', x: '700100000000001' });
      const ended = await call<Binding>('DELETE', `/v1/bindings/${body.id}`);
      expect(ended.status).toBe(200);
      expect(ended.body).toMatchObject({ id: body.id, state: 'unbound' });
      expect((await call<Binding>('GET', `/v1/bindings/${body.id}`)).body.state).toBe('unbound');
      expect((await call<Binding>('DELETE', `/v1/bindings/${body.id}`)).body.state).toBe('unbound');
      expect(await refused('PATCH', `/v1/bindings/${body.id}`, { record: true })).toMatchObject({ status: 409, code: 'binding_ended' });
      // its numbers are free on that X again
      expect((await call('POST', '/v1/bindings', { mode: 'axb', a: '13800000070', b: '13900000071', x: '700100000000001' })).status).toBe(201);
    });
  });

  describe('GET /bindings', () => {
    it('filters by number, x, state and userData, newest first, and pages with a cursor', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await call<Binding>('POST', '/v1/bindings', { mode: 'axb', a: '13800000080', b: `1390000008${i}`, userData: 'list-me', area: '021' });
        expect(r.status).toBe(201);
        ids.push(r.body.id);
      }
      await call('DELETE', `/v1/bindings/${ids[0]}`);

      const byNumber = await call<Page>('GET', '/v1/bindings?number=13800000080');
      expect(byNumber.status).toBe(200);
      expect(byNumber.body.items.map((b) => b.id)).toEqual([...ids].reverse());
      expect(byNumber.body.nextCursor).toBeNull();

      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: { status: number; body: Page } = await call<Page>('GET', `/v1/bindings?userData=list-me&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.body.items.length).toBeLessThanOrEqual(2);
        seen.push(...res.body.items.map((b) => b.id));
        cursor = res.body.nextCursor;
        pages++;
      } while (cursor && pages < 10);
      expect(seen).toEqual([...ids].reverse());
      expect(pages).toBe(3);

      const unbound = await call<Page>('GET', '/v1/bindings?userData=list-me&state=unbound');
      expect(unbound.body.items.map((b) => b.id)).toEqual([ids[0]]);
      const x = byNumber.body.items[0]!.x;
      expect((await call<Page>(`GET`, `/v1/bindings?x=${x}&number=13800000080`)).body.items.every((b) => b.x === x)).toBe(true);

      // another tenant sees none of them
      expect((await call<Page>('GET', '/v1/bindings?number=13800000080', undefined, T2)).body.items).toEqual([]);
    });

    it('refuses bad filters', async () => {
      expect(await refused('GET', '/v1/bindings?limit=0')).toMatchObject({ status: 400, code: 'invalid_limit', field: 'limit' });
      expect((await refused('GET', '/v1/bindings?limit=abc')).status).toBe(400);
      expect(await refused('GET', '/v1/bindings?cursor=nonsense')).toMatchObject({ status: 400, code: 'invalid_cursor', field: 'cursor' });
      expect(await refused('GET', '/v1/bindings?state=gone')).toMatchObject({ status: 400, field: 'state' });
      expect(await refused('GET', '/v1/bindings?number=12')).toMatchObject({ status: 400, code: 'invalid_phone_number', field: 'number' });
      expect(await refused('GET', '/v1/bindings?colour=red')).toMatchObject({ status: 400, code: 'unknown_field' });
    });
  });

  describe('GET /pool/stats', () => {
    it('reports numbers, enabled, in use and bindings per X, per area', async () => {
      const db2 = registry; // same tenant data as above; a fresh tenant makes the numbers exact
      await db2.importNumbers('tenant-stats', [
        { x: '700700000000001', area: '010' },
        { x: '700700000000002', area: '010' },
        { x: '700700000000003', area: '020' },
      ]);
      for (const [a, b] of [['13800000090', '13900000090'], ['13800000091', '13900000091'], ['13800000090', '13900000092']]) {
        await call('POST', '/v1/bindings', { mode: 'axb', a, b, area: '010', strictArea: true }, 'tenant-stats');
      }
      const res = await call<{ areas: Array<Record<string, unknown>> }>('GET', '/v1/pool/stats', undefined, 'tenant-stats');
      expect(res.status).toBe(200);
      expect(res.body.areas).toEqual([
        { area: '010', numbers: 2, enabled: 2, inUse: 2, activeBindings: 3, maxBindingsPerX: 2, avgBindingsPerX: 1.5, disabled: 0, quarantined: 0, free: 0 },
        { area: '020', numbers: 1, enabled: 1, inUse: 0, activeBindings: 0, maxBindingsPerX: 0, avgBindingsPerX: 0, disabled: 0, quarantined: 0, free: 1 },
      ]);
      expect((await call<{ areas: unknown[] }>('GET', '/v1/pool/stats', undefined, 'tenant-nobody')).body).toEqual({ areas: [] });
    });
  });
});
