import { startTestSystem, type TestSystem } from '../support/system';

type Entry = { id: number; actor: string; action: string; target: string | null; requestId: string | null; details: Record<string, unknown> | null; at: number };

describe('audit log: every change through the API, numbers masked', () => {
  let sys: TestSystem;
  let otherKey: string;
  const A = '13800090001';
  const B = '13900090001';

  beforeAll(async () => {
    sys = await startTestSystem();
    const other = await sys.tenants.create({ name: 'other' });
    otherKey = (await sys.tenants.createApiKey(other.id, 'k')).key;
    await sys.api('POST', '/v1/pool/numbers', { numbers: [{ x: '700500000000001', area: '010' }] });
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
    return { status: res.statusCode, body: (res.body ? res.json() : {}) as Record<string, unknown>, requestId: res.headers['x-request-id'] };
  }

  /** Entries are written just after each response is sent: wait until `atLeast` are there. */
  async function entries(key = sys.apiKey, query = '', atLeast = 0): Promise<Entry[]> {
    for (let i = 0; i < 50; i++) {
      const res = await sys.app.http.inject({ method: 'GET', url: `/v1/audit${query}`, headers: { authorization: `Bearer ${key}` } });
      const items = (res.json() as { items: Entry[] }).items;
      if (items.length >= atLeast) return items;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('audit entries did not arrive');
  }

  it('records who, what, which target and the request id of each change; refusals, reads and replays write nothing', async () => {
    const created = await call('POST', '/v1/bindings', 'rq-create', { requestId: 'order-1', mode: 'axb', a: A, b: B, userData: `customer ${B}` });
    expect(created.status).toBe(201);
    expect(created.requestId).toBe('rq-create');
    const id = String(created.body.id);
    expect((await call('POST', '/v1/bindings', 'rq-replay', { requestId: 'order-1', mode: 'axb', a: A, b: B })).status).toBe(200);
    expect((await call('POST', '/v1/bindings', 'rq-refused', { mode: 'axb', a: '12', b: B })).status).toBe(400);
    expect((await call('GET', `/v1/bindings/${id}`, 'rq-read')).status).toBe(200);
    expect((await call('PATCH', `/v1/bindings/${id}`, 'rq-update', { record: true })).status).toBe(200);
    expect((await call('DELETE', `/v1/bindings/${id}`, 'rq-unbind')).status).toBe(200);
    expect((await call('POST', '/v1/blacklist', 'rq-blacklist', { number: '13700090009' })).status).toBe(204);
    expect((await call('PATCH', '/v1/pool/numbers/700500000000001', 'rq-state', { state: 'quarantined' })).status).toBe(200);

    const log = await entries(sys.apiKey, '', 6);
    const keyId = log[0]!.actor;
    expect(keyId).toMatch(/^key:/);
    expect(log.map((e) => [e.action, e.requestId, e.target])).toEqual([
      ['pool.number_state', 'rq-state', '700500000000001'],
      ['blacklist.add', 'rq-blacklist', '137****0009'],
      ['binding.unbind', 'rq-unbind', id],
      ['binding.update', 'rq-update', id],
      ['binding.create', 'rq-create', id],
      ['pool.import', expect.any(String), null],
    ]);
    expect(log.every((e) => e.actor === keyId)).toBe(true);
    expect(log.find((e) => e.action === 'binding.update')!.details).toEqual({ status: 200, body: { record: true } });
    const text = JSON.stringify(log);
    for (const real of [A, B, '13700090009']) expect(text).not.toContain(real);
    expect(text).toContain('138****0001');

    expect((await entries(sys.apiKey, '?action=binding.update')).map((e) => e.requestId)).toEqual(['rq-update']);
    const page1 = await sys.app.http.inject({ method: 'GET', url: '/v1/audit?limit=2', headers: { authorization: `Bearer ${sys.apiKey}` } });
    const { items, nextCursor } = page1.json() as { items: Entry[]; nextCursor: string };
    expect(items).toHaveLength(2);
    const page2 = await sys.app.http.inject({ method: 'GET', url: `/v1/audit?limit=10&cursor=${nextCursor}`, headers: { authorization: `Bearer ${sys.apiKey}` } });
    expect((page2.json() as { items: Entry[] }).items.map((e) => e.action)).toEqual(['binding.unbind', 'binding.update', 'binding.create', 'pool.import']);
  });

  it('another tenant sees none of it; bad filters are refused with the field', async () => {
    expect(await entries(otherKey)).toEqual([]);
    const bad = await sys.app.http.inject({ method: 'GET', url: '/v1/audit?since=yesterday', headers: { authorization: `Bearer ${sys.apiKey}` } });
    expect(bad.statusCode).toBe(400);
    expect((bad.json() as { error: { field: string } }).error.field).toBe('since');
  });

  it('an audit entry that cannot be written does not fail the change: it is logged and counted', async () => {
    const failures = async (): Promise<number> => {
      const text = (await sys.app.http.inject({ method: 'GET', url: '/metrics' })).body;
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
});
