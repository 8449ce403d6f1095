import { ALLOW_LIST_MAX, BINDING_TTL_SECONDS, bindingTtlSeconds, membersOf, XB_HOLD } from '../../src/domain/binding-rules';
import { AppError } from '../../src/domain/errors';
import { blockNumbers } from '../../src/domain/pool';
import { BindingService } from '../../src/bindings/binding-service';
import { createTestDatabase, ensureTenants, type TestDatabase } from '../support/mysql';
import { toHttpError } from '../../src/http/errors';

/** The binding rules of SPEC §3 and §7: pure ones first, then the ones the registry enforces over time. */
async function codeOf(p: Promise<unknown>): Promise<{ code: string; status: number; field?: string }> {
  try {
    await p;
  } catch (err) {
    // The status is what the one HTTP mapper gives the error's kind.
    if (err instanceof AppError) return { code: err.code, status: toHttpError(err).status, field: err.field };
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('binding rules without a database', () => {
  it('TTL: default 24 h, from 60 s to 7 days, whole seconds only', () => {
    expect(bindingTtlSeconds(undefined)).toBe(24 * 3600);
    expect(bindingTtlSeconds(60)).toBe(60);
    expect(bindingTtlSeconds(168 * 3600)).toBe(BINDING_TTL_SECONDS.max);
    for (const bad of [59, 168 * 3600 + 1, 0, -60, 90.5, Number.NaN]) {
      expect(() => bindingTtlSeconds(bad)).toThrow(expect.objectContaining({ code: 'invalid_ttl', field: 'ttlSeconds' }));
    }
  });

  it('members: an AXB holds A and B on its X; an XB holds B and the whole X', () => {
    expect(membersOf('axb', '13800000001', '13900000001')).toEqual(['13800000001', '13900000001']);
    expect(membersOf('xb', null, '13900000001')).toEqual(['13900000001', XB_HOLD]);
    expect(() => membersOf('axb', null, '13900000001')).toThrow();
    expect(ALLOW_LIST_MAX).toBe(30);
  });

  it('a block is the 10,000 15-digit numbers under an 11-digit prefix', () => {
    const numbers = blockNumbers('70010000000', '010');
    expect(numbers).toHaveLength(10_000);
    expect(new Set(numbers.map((n) => n.x)).size).toBe(10_000);
    expect(numbers[0]).toEqual({ x: '700100000000000', area: '010' });
    expect(numbers[9999]).toEqual({ x: '700100000009999', area: '010' });
    expect(numbers.every((n) => /^700\d{12}$/.test(n.x))).toBe(true);
    expect(() => blockNumbers('7001000000', '010')).toThrow(expect.objectContaining({ code: 'invalid_block' }));
  });
});

describe('binding rules the registry enforces', () => {
  let db: TestDatabase;
  let reg: BindingService;
  const T = 'rules-tenant';
  const t0 = Date.parse('2026-03-01T10:00:00Z');

  beforeAll(async () => {
    db = await createTestDatabase();
    reg = new BindingService(db.pool);
    await ensureTenants(db.pool, T, 'rules-list');
    await reg.importNumbers(T, Array.from({ length: 5 }, (_, i) => ({ x: `70020000000000${i}`, area: '010' })));
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('the pair limit counts the last hour only: 30 binds, refused, and allowed again an hour later', async () => {
    const a = '13800000101';
    const b = '13900000101';
    for (let i = 0; i < 30; i++) {
      const at = t0 + i * 60_000;
      const { binding } = await reg.bind({ tenantId: T, mode: 'axb', a: i % 2 ? b : a, b: i % 2 ? a : b, ttlSeconds: 60 }, at);
      await reg.unbind(T, binding.id, at + 1000);
    }
    const last = t0 + 29 * 60_000;
    expect(await codeOf(reg.bind({ tenantId: T, mode: 'axb', a, b }, last + 1000))).toEqual({ code: 'pair_rate_limited', status: 429, field: 'b' });
    // an hour after the first bind, one slot is free again
    const { binding } = await reg.bind({ tenantId: T, mode: 'axb', a, b, ttlSeconds: 60 }, t0 + 3600_000 + 1);
    expect(binding.state).toBe('active');
    expect(await codeOf(reg.bind({ tenantId: T, mode: 'axb', a, b }, t0 + 3600_000 + 2))).toMatchObject({ code: 'pair_rate_limited' });
  });

  it('a binding stops holding its numbers at its expiry to the second', async () => {
    const x = '700200000000004';
    const { binding } = await reg.bind({ tenantId: T, mode: 'axb', a: '13800000102', b: '13900000102', x, ttlSeconds: 60 }, t0);
    expect(binding.expiresAt).toBe(t0 + 60_000);
    expect(await codeOf(reg.bind({ tenantId: T, mode: 'axb', a: '13800000102', b: '13900000103', x }, t0 + 59_999))).toMatchObject({ code: 'binding_conflict' });
    const next = await reg.bind({ tenantId: T, mode: 'axb', a: '13800000102', b: '13900000103', x }, t0 + 60_000);
    expect(next.created).toBe(true);
    expect((await reg.get(T, binding.id))!.state).toBe('expired');
  });

  it('update re-checks the invariant for an XB too, and extends or shortens the expiry from now', async () => {
    const x = '700200000000003';
    const { binding } = await reg.bind({ tenantId: T, mode: 'xb', b: '13900000104', x, ttlSeconds: 3600 }, t0);
    expect(await codeOf(reg.update(T, binding.id, { a: '13800000104' }, 'test', t0))).toMatchObject({ code: 'unknown_field', field: 'a' });
    const moved = await reg.update(T, binding.id, { b: '13900000105', ttlSeconds: 120 }, 'test', t0 + 10_000, 'req-1');
    expect(moved).toMatchObject({ id: binding.id, b: '13900000105', expiresAt: t0 + 10_000 + 120_000 });
    // the XB still holds X alone
    expect(await codeOf(reg.bind({ tenantId: T, mode: 'axb', a: '13800000106', b: '13900000106', x }, t0 + 20_000))).toMatchObject({ code: 'binding_conflict' });
    const history = await reg.history(T, binding.id);
    expect(history).toEqual([
      {
        at: t0 + 10_000,
        actor: 'test',
        requestId: 'req-1',
        change: { b: ['139****0104', '139****0105'], expiresAt: [t0 + 3600_000, t0 + 130_000] },
      },
    ]);
    // an unchanged patch writes no history
    await reg.update(T, binding.id, { b: '13900000105' }, 'test', t0 + 20_000);
    expect(await reg.history(T, binding.id)).toHaveLength(1);
    // another tenant sees no history and cannot update
    expect(await reg.history('someone-else', binding.id)).toEqual([]);
    expect(await codeOf(reg.update('someone-else', binding.id, { record: true }, 'x', t0 + 20_000))).toMatchObject({ code: 'not_found', status: 404 });
  });

  it('blacklist: tenant and platform lists are separate; has/add/remove are idempotent', async () => {
    const n = '13700000107';
    expect(await reg.blacklistHas(T, n)).toBe(false);
    await reg.blacklistAdd(T, `+86 ${n}`);
    await reg.blacklistAdd(T, n);
    expect(await reg.blacklistHas(T, n)).toBe(true);
    expect(await reg.blacklistHas(null, n)).toBe(false);
    expect(await reg.blacklistHas('other', n)).toBe(false);
    await reg.blacklistAdd(null, n);
    expect(await reg.blacklistHas(null, n)).toBe(true);
    await reg.blacklistRemove(T, n);
    expect(await reg.blacklistHas(T, n)).toBe(false);
    // still refused: the platform's list applies to every tenant
    expect(await codeOf(reg.bind({ tenantId: T, mode: 'xb', b: n }, t0))).toEqual({ code: 'number_blacklisted', status: 403, field: 'b' });
    await reg.blacklistRemove(null, n);
    await reg.blacklistRemove(null, n);
    expect((await reg.bind({ tenantId: T, mode: 'xb', b: n }, t0)).created).toBe(true);
  });

  it('listPage pages every binding exactly once, newest first, even with equal creation times', async () => {
    const tenant = 'rules-list';
    await reg.importNumbers(tenant, [{ x: '700300000000001', area: '010' }]);
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      // two bindings per millisecond: the id breaks the tie
      const { binding } = await reg.bind({ tenantId: tenant, mode: 'axb', a: `1380000020${i}`, b: `1390000020${i}` }, t0 + Math.floor(i / 2));
      ids.push(binding.id);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const res = await reg.listPage(tenant, { limit: 3, cursor });
      seen.push(...res.items.map((b) => b.id));
      if (!res.nextCursor) break;
      cursor = res.nextCursor;
    }
    expect(seen).toHaveLength(7);
    expect(new Set(seen)).toEqual(new Set(ids));
    const all = await reg.listPage(tenant, { limit: 500 });
    expect(all.items.map((b) => b.id)).toEqual(seen);
    expect(all.nextCursor).toBeNull();
    expect(await codeOf(reg.listPage(tenant, { limit: 501 }))).toMatchObject({ code: 'invalid_limit', field: 'limit' });
  });
});
