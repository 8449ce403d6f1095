import { startTestSystem, type TestSystem } from '../support/system';

type Entry = { id: number; actor: string; action: string; target: string | null; requestId: string | null; details: Record<string, unknown> | null; at: number };

describe('audit log: every change through the API, numbers masked', () => {
  let sys: TestSystem;
  let otherKey: string;
  const A = '13800090001';
  const B = '13900090001';

  const ADMIN_TOKEN = 'audit-admin-token-0123456789';

  beforeAll(async () => {
    sys = await startTestSystem({ env: { ADMIN_TOKEN } });
    const other = await sys.tenants.create({ name: 'other' });
    otherKey = (await sys.tenants.createApiKey(other.id, 'k')).key;
    await sys.app.bindings.importNumbers(sys.tenantId, [{ x: '700500000000001', area: '010' }]);
  });
  afterAll(async () => {
    await sys?.stop();
  });

  async function call(method: 'POST' | 'PATCH' | 'DELETE' | 'GET', url: string, requestId: string, body?: unknown, key = sys.apiKey) {
    const res = await sys.app.http.inject({
      method,
      url,
      headers: { authorization: `Bearer ${key}`, 'x-request-id': requestId, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      payload: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.statusCode, body: (res.body ? res.json() : {}), requestId: String(res.headers['x-request-id']) };
  }

  /** Entries are written just after each response is sent: wait until `atLeast` are there. */
  async function entries(key = sys.apiKey, query = '', atLeast = 0): Promise<Entry[]> {
    for (let i = 0; i < 50; i++) {
      const res = await sys.app.http.inject({ method: 'GET', url: `/v1/audit${query}`, headers: { authorization: `Bearer ${key}` } });
      const items = res.json<{ items: Entry[] }>().items;
      if (items.length >= atLeast) return items;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('audit entries did not arrive');
  }

  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it('records who, what, which target and the request id of each change; refusals, reads and replays write nothing', async () => {
    const created = await call('POST', '/v1/bindings', 'rq-create', { requestId: 'order-1', mode: 'axb', a: A, b: B, userData: `customer ${B}` });
    expect(created.status).toBe(201);
    // The request id is the server's own; the client's is kept beside it.
    expect(created.requestId).toMatch(UUID);
    const id = String(created.body.id);
    expect((await call('POST', '/v1/bindings', 'rq-replay', { requestId: 'order-1', mode: 'axb', a: A, b: B })).status).toBe(200);
    expect((await call('POST', '/v1/bindings', 'rq-refused', { mode: 'axb', a: '12', b: B })).status).toBe(400);
    expect((await call('GET', `/v1/bindings/${id}`, 'rq-read')).status).toBe(200);
    const updated = await call('PATCH', `/v1/bindings/${id}`, 'rq-update', { record: true });
    expect(updated.status).toBe(200);
    const unbound = await call('DELETE', `/v1/bindings/${id}`, 'rq-unbind');
    expect(unbound.status).toBe(200);
    const blacklisted = await call('POST', '/v1/blacklist', 'rq-blacklist', { number: '13700090009' });
    expect(blacklisted.status).toBe(204);
    const stated = await call('PATCH', '/v1/pool/numbers/700500000000001', 'rq-state', { state: 'quarantined' });
    expect(stated.status).toBe(200);

    const log = await entries(sys.apiKey, '', 5);
    const keyId = log[0]!.actor;
    expect(keyId).toMatch(/^key:/);
    expect(log.map((e) => [e.action, e.requestId, e.target, e.details?.clientRequestId])).toEqual([
      ['pool.number_state', stated.requestId, '700500000000001', 'rq-state'],
      ['blacklist.add', blacklisted.requestId, '137****0009', 'rq-blacklist'],
      ['binding.unbind', unbound.requestId, id, 'rq-unbind'],
      ['binding.update', updated.requestId, id, 'rq-update'],
      ['binding.create', created.requestId, id, 'rq-create'],
    ]);
    expect(log.every((e) => e.actor === keyId)).toBe(true);
    expect(log.find((e) => e.action === 'binding.update')!.details).toEqual({ status: 200, clientRequestId: 'rq-update', body: { record: true } });
    const text = JSON.stringify(log);
    for (const real of [A, B, '13700090009']) expect(text).not.toContain(real);
    expect(text).toContain('138****0001');

    expect((await entries(sys.apiKey, '?action=binding.update')).map((e) => e.requestId)).toEqual([updated.requestId]);
    const page1 = await sys.app.http.inject({ method: 'GET', url: '/v1/audit?limit=2', headers: { authorization: `Bearer ${sys.apiKey}` } });
    const { items, nextCursor } = page1.json<{ items: Entry[]; nextCursor: string }>();
    expect(items).toHaveLength(2);
    const page2 = await sys.app.http.inject({ method: 'GET', url: `/v1/audit?limit=10&cursor=${nextCursor}`, headers: { authorization: `Bearer ${sys.apiKey}` } });
    expect(page2.json<{ items: Entry[] }>().items.map((e) => e.action)).toEqual(['binding.unbind', 'binding.update', 'binding.create']);
  });

  it('another tenant sees none of it; bad filters are refused with the field', async () => {
    expect(await entries(otherKey)).toEqual([]);
    const bad = await sys.app.http.inject({ method: 'GET', url: '/v1/audit?since=yesterday', headers: { authorization: `Bearer ${sys.apiKey}` } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ error: { field: string } }>().error.field).toBe('since');
  });

  it('an audit entry that cannot be written does not fail the change: it is logged and counted', async () => {
    const failures = async (): Promise<number> => {
      const text = (await sys.app.http.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body;
      const line = text.split('\n').find((l) => l.startsWith('numguard_audit_failures_total '));
      return Number(line?.split(' ')[1]);
    };
    expect(await failures()).toBe(0);
    await sys.app.pool.query('RENAME TABLE audit_log TO audit_log_away');
    try {
      expect((await call('POST', '/v1/blacklist', 'rq-unaudited', { number: '13700090010' })).status).toBe(204);
      for (let i = 0; i < 100 && (await failures()) === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await failures()).toBe(1);
      expect(sys.logLines.join('\n')).toContain('audit entry not written');
    } finally {
      await sys.app.pool.query('RENAME TABLE audit_log_away TO audit_log');
    }
    expect(await sys.app.bindings.blacklistHas(sys.tenantId, '13700090010')).toBe(true);
    expect(sys.logLines.join('\n')).not.toContain('13700090010');
  });

  it('keeps an over-long client request id beside its own, truncated and printable: the entry is still written', async () => {
    const clientId = `${'r'.repeat(150)}\u00e9${'s'.repeat(49)}`;
    const res = await sys.app.http.inject({
      method: 'POST',
      url: '/v1/blacklist',
      headers: { authorization: `Bearer ${sys.apiKey}`, 'content-type': 'application/json', 'x-request-id': clientId },
      payload: JSON.stringify({ number: '13700090011' }),
    });
    expect(res.statusCode).toBe(204);
    const serverId = String(res.headers['x-request-id']);
    expect(serverId).toMatch(UUID);
    expect(serverId).not.toContain('rrrr');
    const entry = (await entries(sys.apiKey, '?action=blacklist.add', 2)).find((e) => e.requestId === serverId);
    expect(entry).toBeDefined();
    expect(entry!.details).toEqual({ status: 204, clientRequestId: 'r'.repeat(64), body: { number: '137****0011' } });
    // The request line in the log carries both, the client's as stored.
    const line = sys.logLines.find((l) => l.includes(serverId) && l.includes('"msg":"request"'));
    expect(line).toContain(`"clientRequestId":"${'r'.repeat(64)}"`);
    expect(sys.logLines.join('\n')).not.toContain('r'.repeat(65));
  });

  it('masks numbers however they are written: spaced, dashed, with a country code, with an area code in parentheses', async () => {
    const formatted = ['138 1234 5678', '139-1234-5678', '+86 137 1234 5678', '(010) 1234-5678'];
    const res = await sys.app.http.inject({
      method: 'POST',
      url: '/v1/bindings',
      headers: { authorization: `Bearer ${sys.apiKey}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ mode: 'axb', a: '136 0009 0001', b: '135-0009-0001', userData: `call ${formatted.join(', or ')}; X 700 5000 0000 0001` }),
    });
    expect(res.statusCode).toBe(201);
    const requestId = String(res.headers['x-request-id']);
    const entry = (await entries(sys.apiKey, '?action=binding.create', 2)).find((e) => e.requestId === requestId);
    expect(entry).toBeDefined();
    const body = (entry!.details as { body: Record<string, unknown> }).body;
    expect(body).toEqual({
      mode: 'axb',
      a: '136****0001',
      b: '135****0001',
      userData: 'call 138****5678, or 139****5678, or +861******5678, or 010****5678; X 700 5000 0000 0001',
    });
    const text = JSON.stringify(entry);
    for (const digits of ['13812345678', '13912345678', '13712345678', '01012345678', '13600090001', '13500090001']) {
      expect(text.replace(/\D/g, '')).not.toContain(digits);
    }
  });
});
