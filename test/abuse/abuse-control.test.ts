import { Queue, QueueEvents } from 'bullmq';
import { signClickToDialJob } from '../../src/calls/click-to-dial-job';
import { numberHasher } from '../../src/domain/number-hash';
import type { RowDataPacket } from 'mysql2/promise';
import type { Redis } from 'ioredis';
import { AbuseGuard, type AbuseLimitName } from '../../src/abuse/abuse-guard';
import { ConfigError, loadConfig } from '../../src/config';
import { maskPhone } from '../../src/domain/phone-number';
import { createLogger } from '../../src/logger';
import { callbackQueueName } from '../../src/calls/callback-queue';
import { CLICK_TO_DIAL_JOB_NAME } from '../../src/calls/click-to-dial-job';
import { createRedis } from '../../src/stores/redis';
import { startTestSystem, type TestSystem } from '../support/system';

interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

/** A request that also returns the headers (sys.api returns status and body only). */
async function request<T = ErrorBody & Record<string, unknown>>(sys: TestSystem, method: string, path: string, body?: unknown, key = sys.apiKey) {
  const address = sys.app.http.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: (text ? JSON.parse(text) : null) as T };
}

async function otherTenant(sys: TestSystem): Promise<{ id: string; key: string }> {
  const otherX = '700190000000001';
  const other = await sys.tenants.create({ name: 'other', defaultX: otherX });
  await sys.app.bindings.importNumbers(other.id, [{ x: otherX, area: '010' }]);
  return { id: other.id, key: (await sys.tenants.createApiKey(other.id, 'test')).key };
}

async function abuseKeys(prefix: string): Promise<string[]> {
  const redis = createRedis('redis://127.0.0.1:6379');
  try {
    return await redis.keys(`${prefix}:abuse:*`);
  } finally {
    await redis.quit();
  }
}

const xs = (i: number) => `7001000${String(800 + i).padStart(8, '0')}`;

describe('abuse limits: calls per caller, bindings per number, blacklist, calls to X', () => {
  let sys: TestSystem;
  let otherKey: string;
  const used: string[] = [];
  const num = (n: string) => {
    used.push(n);
    return n;
  };

  beforeAll(async () => {
    sys = await startTestSystem({
      env: { CALLS_PER_CALLER_PER_MINUTE: '2', BINDINGS_PER_NUMBER_PER_HOUR: '2', FANOUT_DISTINCT_PARTIES: '50' },
    });
    const other = await otherTenant(sys);
    otherKey = other.key;
    await sys.app.bindings.importNumbers(sys.tenantId, Array.from({ length: 10 }, (_, i) => ({ x: xs(i), area: '010' })));
    await sys.app.bindings.importNumbers(other.id, [{ x: xs(10), area: '010' }]);
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('the 3rd click-to-dial call within a minute for the same A is refused with 429 caller_rate_limited, field a', async () => {
    const a = num('13800011001');
    sys.sim.setPhone(a, { answer: 'busy' });
    expect((await request(sys, 'POST', '/v1/calls', { requestId: 'c1', a, b: num('13900011001') })).status).toBe(202);
    expect((await request(sys, 'POST', '/v1/calls', { requestId: 'c2', a, b: num('13900011002') })).status).toBe(202);
    const third = await request(sys, 'POST', '/v1/calls', { requestId: 'c3', a, b: num('13900011003') });
    expect(third.status).toBe(429);
    expect(third.body.error).toMatchObject({ code: 'caller_rate_limited', field: 'a' });
    const retryAfter = Number(third.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(third.text).not.toContain(a);

    // An idempotent retry of an accepted request is the first result, not a new call to count.
    expect((await request(sys, 'POST', '/v1/calls', { requestId: 'c1', a, b: '13900011001' })).status).toBe(200);
    // Other numbers, and the same numbers at another tenant, are unaffected.
    const c = num('13800011004');
    sys.sim.setPhone(c, { answer: 'busy' });
    expect((await request(sys, 'POST', '/v1/calls', { requestId: 'c4', a: c, b: num('13900011004') })).status).toBe(202);
    expect((await request(sys, 'POST', '/v1/calls', { requestId: 'c5', a, b: '13900011003' }, otherKey)).status).toBe(202);
  });

  it('a B called by many As is limited too: field b', async () => {
    const b = num('13900012001');
    const callers = [num('13800012001'), num('13800012002'), num('13800012003')];
    for (const a of callers) sys.sim.setPhone(a, { answer: 'busy' });
    expect((await request(sys, 'POST', '/v1/calls', { requestId: 'b1', a: callers[0], b })).status).toBe(202);
    expect((await request(sys, 'POST', '/v1/calls', { requestId: 'b2', a: callers[1], b })).status).toBe(202);
    const third = await request(sys, 'POST', '/v1/calls', { requestId: 'b3', a: callers[2], b });
    expect(third.status).toBe(429);
    expect(third.body.error).toMatchObject({ code: 'caller_rate_limited', field: 'b' });
  });

  it('bindings per number per hour: the 3rd binding of a number is refused with 429 number_binding_rate_limited', async () => {
    const n = num('13800013001');
    const bind = (body: Record<string, unknown>) => request(sys, 'POST', '/v1/bindings', body);
    expect((await bind({ mode: 'axb', a: n, b: num('13900013001') })).status).toBe(201);
    expect((await bind({ mode: 'axb', a: n, b: num('13900013002') })).status).toBe(201);
    const asA = await bind({ mode: 'axb', a: n, b: num('13900013003') });
    expect(asA.status).toBe(429);
    expect(asA.body.error).toMatchObject({ code: 'number_binding_rate_limited', field: 'a' });
    expect(asA.headers.get('retry-after')).toMatch(/^\d+$/);
    const asB = await bind({ mode: 'axb', a: num('13900013004'), b: n });
    expect(asB.body.error).toMatchObject({ code: 'number_binding_rate_limited', field: 'b' });
    const xb = await bind({ mode: 'xb', b: n });
    expect(xb.body.error).toMatchObject({ code: 'number_binding_rate_limited', field: 'b' });
    // A refused binding counted nothing: its partner still has its whole allowance.
    expect((await bind({ mode: 'axb', a: '13900013003', b: num('13700013001') })).status).toBe(201);
    expect((await bind({ mode: 'axb', a: n, b: '13900013005' })).status).toBe(429);
    expect((await request(sys, 'POST', '/v1/bindings', { mode: 'axb', a: n, b: '13900013005' }, otherKey)).status).toBe(201);
  });

  it('a blacklisted A or B is refused by POST /v1/calls with number_blacklisted and the field', async () => {
    const a = num('13800014001');
    const b = num('13900014001');
    expect((await request(sys, 'POST', '/v1/blacklist', { number: b })).status).toBe(204);
    const toB = await request(sys, 'POST', '/v1/calls', { requestId: 'bl1', a, b });
    expect(toB.status).toBe(403);
    expect(toB.body.error).toMatchObject({ code: 'number_blacklisted', field: 'b' });
    const fromB = await request(sys, 'POST', '/v1/calls', { requestId: 'bl2', a: b, b: a });
    expect(fromB.body.error).toMatchObject({ code: 'number_blacklisted', field: 'a' });
    expect(toB.text).not.toContain(b);
    // Nothing recorded, nobody rung.
    const [rows] = await sys.app.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM calls WHERE b = ? OR a = ?', [b, b]);
    expect(Number(rows[0]!.n)).toBe(0);
    // The platform-wide list (tenant '') applies to every tenant.
    await sys.app.bindings.blacklistAdd(null, a);
    const platform = await request(sys, 'POST', '/v1/calls', { requestId: 'bl3', a, b: num('13900014002') }, otherKey);
    expect(platform.body.error).toMatchObject({ code: 'number_blacklisted', field: 'a' });
  });

  it('a job queued straight into BullMQ with a blacklisted B fails with number_blacklisted: b, ringing nobody', async () => {
    const redis: Redis = createRedis('redis://127.0.0.1:6379');
    const eventsRedis: Redis = createRedis('redis://127.0.0.1:6379');
    const queue = new Queue(callbackQueueName('carrier'), { connection: redis, prefix: sys.env.REDIS_PREFIX! });
    const events = new QueueEvents(callbackQueueName('carrier'), { connection: eventsRedis, prefix: sys.env.REDIS_PREFIX! });
    try {
      await events.waitUntilReady();
      const a = num('13800015001');
      const b = num('13900015001');
      await sys.app.bindings.blacklistAdd(sys.tenantId, b);
      const before = sys.sim.originateCount();
      const data = signClickToDialJob({ v: 1, tenantId: sys.tenantId, requestId: 'queued-bl', a, b }, { keyId: sys.apiKeyId, apiKey: sys.apiKey });
      const job = await queue.add(CLICK_TO_DIAL_JOB_NAME, data, { attempts: 3 });
      await expect(job.waitUntilFinished(events, 10_000)).rejects.toThrow('number_blacklisted: b');
      expect(sys.sim.originateCount()).toBe(before);
      const [rows] = await sys.app.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM calls WHERE request_id = ?', ['queued-bl']);
      expect(Number(rows[0]!.n)).toBe(0);
    } finally {
      await events.close();
      await queue.close();
      await eventsRedis.quit();
      await redis.quit();
    }
  });

  it('a call to X over the caller limit is refused like an unbound call, with result rate_limited', async () => {
    const a = num('13800016001');
    const b = num('13900016001');
    const x = xs(9);
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a, b, x });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 200 });
    const callX = async (): Promise<RowDataPacket> => (await sys.callX({ callerNumber: a, destinationNumber: x })).cdr;
    expect(await callX()).toMatchObject({ result: 'connected' });
    expect(await callX()).toMatchObject({ result: 'connected' });
    const before = sys.sim.originateCount();
    const refused = await callX();
    expect(refused).toMatchObject({ result: 'rate_limited', hangup_cause: 'UNALLOCATED_NUMBER', tenant_id: sys.tenantId, b: '', talk_seconds: 0 });
    expect(sys.sim.originateCount()).toBe(before);
    expect(sys.sim.invitesTo(b)).toHaveLength(2);
    const listed = await sys.api<{ items: Array<{ callId: string }> }>('GET', '/v1/cdrs?result=rate_limited');
    expect(listed.body.items.map((c) => c.callId)).toEqual([String(refused.call_id)]);
  });

  it('moving a number into a binding by PATCH counts against its bindings limit too', async () => {
    const n = num('13800013101');
    const bind = (body: Record<string, unknown>) => request(sys, 'POST', '/v1/bindings', body);
    expect((await bind({ mode: 'axb', a: n, b: num('13900013101') })).status).toBe(201);
    expect((await bind({ mode: 'axb', a: n, b: num('13900013102') })).status).toBe(201);
    const other = await bind({ mode: 'axb', a: num('13800013102'), b: num('13900013103') });
    const moved = await request(sys, 'PATCH', `/v1/bindings/${String(other.body.id)}`, { a: n });
    expect(moved.status).toBe(429);
    expect(moved.body.error).toMatchObject({ code: 'number_binding_rate_limited', field: 'a' });
    expect((await request(sys, 'PATCH', `/v1/bindings/${String(other.body.id)}`, { record: true })).status).toBe(200);
  });

  it('a blacklisted caller of an XB number is refused like an unbound call, with result blacklisted; B is never rung', async () => {
    const b = num('13900016101');
    const harasser = num('13600016101');
    const { binding } = await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'xb', b });
    const x = binding.x;
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 200 });
    expect((await request(sys, 'POST', '/v1/blacklist', { number: harasser })).status).toBe(204);
    const { cdr } = await sys.callX({ callerNumber: harasser, destinationNumber: x });
    expect(cdr).toMatchObject({ result: 'blacklisted', hangup_cause: 'UNALLOCATED_NUMBER', b: '', talk_seconds: 0 });
    expect(sys.sim.invitesTo(b)).toHaveLength(0);
  });

  it('refusals and flags reach the metrics interface', async () => {
    const redis = createRedis('redis://127.0.0.1:6379');
    const refused: AbuseLimitName[] = [];
    const flagged: string[] = [];
    const guard = new AbuseGuard({
      redis,
      prefix: `${sys.env.REDIS_PREFIX}`,
      numberHash: numberHasher('test-number-hash-key-0123456789abcdef'),
      pool: sys.app.pool,
      limits: { ...loadConfig({ ESL_PASSWORD: 'x' }).abuse, callsPerCallerPerMinute: 1, bindingsPerNumberPerHour: 1, tenantRequestsPerSecond: 1, fanoutDistinctParties: 1, fanoutWindowSeconds: 60 },
      logger: createLogger('silent'),
      metrics: { refused: (l) => refused.push(l), flagged: (k) => flagged.push(k), acted: () => undefined },
    });
    try {
      const a = num('13800017001');
      await guard.admitBinding('metrics-tenant', { a, b: num('13900017001') }, Date.now());
      await expect(guard.admitBinding('metrics-tenant', { a, b: num('13900017002') }, Date.now())).rejects.toMatchObject({ code: 'number_binding_rate_limited' });
      await guard.admitClickToDial({ tenantId: 'metrics-tenant', a, b: '13900017002' });
      const now = Date.now();
      await guard.admitTenantRequest('metrics-tenant', now);
      await expect(guard.admitTenantRequest('metrics-tenant', now)).rejects.toMatchObject({ code: 'tenant_rate_limited', kind: 'too_many' });
      expect(refused).toEqual(['bindings_per_number', 'tenant_requests']);
      expect(flagged).toEqual(['fanout']);
    } finally {
      await redis.quit();
    }
  });

  it('abuse counters in Redis are keyed by hashes, never by a real number', async () => {
    const keys = await abuseKeys(sys.env.REDIS_PREFIX!);
    expect(keys.some((k) => k.includes(':abuse:calls:'))).toBe(true);
    expect(keys.some((k) => k.includes(':abuse:bindings:'))).toBe(true);
    const all = keys.join('\n');
    for (const n of used) expect(all).not.toContain(n);
  });
});

describe('fan-out flags', () => {
  let sys: TestSystem;
  let otherKey: string;

  beforeAll(async () => {
    sys = await startTestSystem({ workers: false, env: { FANOUT_DISTINCT_PARTIES: '3', FANOUT_WINDOW_SECONDS: '600' } });
    otherKey = (await otherTenant(sys)).key;
    await sys.app.bindings.importNumbers(sys.tenantId, Array.from({ length: 10 }, (_, i) => ({ x: xs(i), area: '010' })));
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('one A reaching more than N distinct parties raises exactly one flag, masked, for its own tenant only', async () => {
    const a = '13800021001';
    const bs = ['13900021001', '13900021002', '13900021003', '13900021004', '13900021005'];
    const flags = (query = '', key?: string) =>
      request<ErrorBody & { items: Array<Record<string, unknown>> }>(sys, 'GET', `/v1/abuse/flags${query}`, undefined, key);

    expect((await request(sys, 'POST', '/v1/bindings', { mode: 'axb', a, b: bs[0] })).status).toBe(201);
    expect((await request(sys, 'POST', '/v1/calls', { requestId: 'f1', a, b: bs[0] })).status).toBe(202); // the same party again
    expect((await request(sys, 'POST', '/v1/bindings', { mode: 'axb', a, b: bs[1] })).status).toBe(201);
    expect((await request(sys, 'POST', '/v1/calls', { requestId: 'f2', a, b: bs[2] })).status).toBe(202);
    expect((await flags()).body.items).toEqual([]); // 3 distinct parties: not more than 3

    // The 4th distinct party raises the flag; the request itself goes ahead.
    expect((await request(sys, 'POST', '/v1/calls', { requestId: 'f3', a, b: bs[3] })).status).toBe(202);
    expect((await request(sys, 'POST', '/v1/bindings', { mode: 'axb', a, b: bs[4] })).status).toBe(201);

    const listed = await flags();
    expect(listed.status).toBe(200);
    expect(listed.body.items).toEqual([
      {
        id: expect.any(Number),
        kind: 'fanout',
        number: maskPhone(a),
        x: null,
        distinctParties: 4,
        windowSeconds: 600,
        evidence: { distinctParties: 4, threshold: 3, windowSeconds: 600 },
        action: null,
        createdAt: expect.any(String),
      },
    ]);
    expect(listed.text).not.toContain(a);
    expect((await flags(`?number=${a}`)).body.items).toHaveLength(1);
    expect((await flags(`?number=${bs[0]}`)).body.items).toHaveLength(0);
    expect((await flags('?number=12')).body.error).toMatchObject({ code: 'invalid_phone_number', field: 'number' });
    expect((await flags('', otherKey)).body.items).toEqual([]);

    const [rows] = await sys.app.pool.query<RowDataPacket[]>('SELECT * FROM abuse_flags');
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(a);
    const logged = sys.logLines.filter((l) => l.includes('abuse flag'));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain(maskPhone(a));
    expect(logged[0]).not.toContain(a);

    const keys = await abuseKeys(sys.env.REDIS_PREFIX!);
    expect(keys.some((k) => k.includes(':abuse:fanout:'))).toBe(true);
    for (const n of [a, ...bs]) expect(keys.join('\n')).not.toContain(n);
  });
});

describe('tenant request rate', () => {
  let sys: TestSystem;
  let otherKey: string;

  beforeAll(async () => {
    sys = await startTestSystem({ workers: false, env: { TENANT_REQUESTS_PER_SECOND: '5' } });
    otherKey = (await otherTenant(sys)).key;
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('beyond TENANT_REQUESTS_PER_SECOND a tenant gets 429 tenant_rate_limited with Retry-After; another tenant does not', async () => {
    // Bursts of 10 until one is refused: the first refusal comes after at least 5 successes in its second.
    const replies: Array<{ status: number; headers: Headers; body: ErrorBody }> = [];
    while (!replies.some((r) => r.status === 429) && replies.length < 500) {
      replies.push(...(await Promise.all(Array.from({ length: 10 }, () => request(sys, 'GET', '/v1/abuse/flags')))));
    }
    const limited = replies.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(replies.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(5);
    expect(replies.every((r) => r.status === 200 || r.status === 429)).toBe(true);
    for (const r of limited) {
      expect(r.body.error.code).toBe('tenant_rate_limited');
      expect(r.headers.get('retry-after')).toBe('1');
    }
    expect((await request(sys, 'GET', '/v1/abuse/flags', undefined, otherKey)).status).toBe(200);
    // Authentication comes first: a bad key is a 401, whatever the rate.
    expect((await request(sys, 'GET', '/v1/abuse/flags', undefined, 'nope')).status).toBe(401);
    const doc = await request<{ paths: Record<string, { get?: unknown; post?: { responses: Record<string, unknown> } }> }>(sys, 'GET', '/openapi.json');
    expect(doc.body.paths['/v1/abuse/flags']?.get).toBeDefined();
    expect(doc.body.paths['/v1/calls']?.post?.responses['429']).toBeDefined();
  });
});

describe('abuse configuration', () => {
  it('has platform defaults, accepts 0 (off), and names a bad variable', () => {
    expect(loadConfig({ ESL_PASSWORD: 'x' }).abuse).toEqual({
      callsPerCallerPerMinute: 10,
      bindingsPerNumberPerHour: 20,
      tenantRequestsPerSecond: 200,
      fanoutDistinctParties: 20,
      fanoutWindowSeconds: 600,
      pairBindingsPerHour: 30,
      callerBurstCalls: 30,
      xBurstCalls: 100,
      burstWindowSeconds: 300,
      shortCallSeconds: 10,
      shortCallSharePercent: 80,
      shortCallMinCalls: 20,
      shortCallWindowSeconds: 3600,
      bulkBindingFactor: 10,
      bulkBindingMinPerMinute: 100,
      bulkBindingBaselineMinutes: 60,
      blockSeconds: 86_400,
    });
    expect(loadConfig({ ESL_PASSWORD: 'x', TENANT_REQUESTS_PER_SECOND: '0' }).abuse.tenantRequestsPerSecond).toBe(0);
    for (const [variable, value] of [
      ['CALLS_PER_CALLER_PER_MINUTE', '-1'],
      ['BINDINGS_PER_NUMBER_PER_HOUR', 'many'],
      ['FANOUT_DISTINCT_PARTIES', '0'],
      ['FANOUT_WINDOW_SECONDS', '100000'],
    ]) {
      expect(() => loadConfig({ ESL_PASSWORD: 'x', [variable!]: value })).toThrow(ConfigError);
      expect(() => loadConfig({ ESL_PASSWORD: 'x', [variable!]: value })).toThrow(variable);
    }
  });
});
