import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { CallView, ClickToDialService } from '../../src/calls/types';
import { loadConfig } from '../../src/config';
import { NotFoundError } from '../../src/domain/errors';
import { MemoryAuthThrottle, RedisAuthThrottle, clientKey, type AuthFailureThrottle } from '../../src/http/auth-throttle';
import { buildHttpServer } from '../../src/http/server';
import { registerCallRoutes } from '../../src/calls/call-routes';
import { registerOpsRoutes } from '../../src/monitoring/ops-routes';
import { createLogger } from '../../src/logger';
import type { PlatformMetrics } from '../../src/monitoring/metrics';
import { createTestRedis, type TestRedis } from '../support/redis';

/**
 * What every request meets before a route (request-guards.ts): the error shape for Fastify's and
 * Node's own refusals, ids validated before any store sees them, the server's own request id,
 * and the failed-authentication throttle. The app is buildHttpServer with stand-in stores that
 * count what reaches them.
 */
const GOOD_KEY = 'ngk_good';
const ADMIN_TOKEN = 'guards-admin-token-0123456789';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

class CountingCalls implements ClickToDialService {
  lookups = 0;
  async create(): Promise<never> {
    throw new Error('not used');
  }
  async get(_ctx: unknown, id: string): Promise<CallView> {
    this.lookups++;
    // What MySQL does with a non-ASCII value against an ascii column.
    if (/[^\x20-\x7e]/.test(id)) throw new Error("Illegal mix of collations (ascii_bin,IMPLICIT) and (utf8mb4_general_ci,COERCIBLE) for operation '='");
    throw new NotFoundError('call');
  }
  async cancel(ctx: unknown, id: string): Promise<CallView> {
    return this.get(ctx, id);
  }
}

function build(opts: { throttle?: AuthFailureThrottle } = {}) {
  const auth = { calls: 0 };
  const calls = new CountingCalls();
  const app = buildHttpServer({
    logger: createLogger('silent'),
    auth: {
      authenticate: async (key) => {
        auth.calls++;
        return key === GOOD_KEY ? { tenantId: 't1', keyId: 'k1' } : null;
      },
    },
    readiness: { check: async () => ({ mysql: true }) },
    routes: [
      (api) =>
        registerOpsRoutes(api, { metrics: { contentType: 'text/plain', text: async () => 'numguard_up 1\n' } as unknown as PlatformMetrics, adminToken: ADMIN_TOKEN, queues: [] }),
    ],
    v1Routes: [(v1) => registerCallRoutes(v1, { calls, cdrs: { list: async () => ({ items: [], nextCursor: null }) } })],
    ...(opts.throttle ? { authThrottle: opts.throttle } : {}),
  });
  return { app, auth, calls };
}

type ErrorBody = { error: { code: string; message: string; field?: string } };

/** One raw HTTP/1.1 exchange over a socket: what the HTTP parser itself answers. */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let out = '';
    socket.on('data', (d) => (out += String(d)));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
  });
}

describe('Fastify\'s and Node\'s own refusals answer in the error shape', () => {
  let app: FastifyInstance;
  let port: number;

  beforeAll(async () => {
    app = build().app;
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await app?.close();
  });

  const bearer = { authorization: `Bearer ${GOOD_KEY}` };

  it.each([
    ['a path parameter over the router\'s limit', 'GET', `/v1/calls/${'a'.repeat(300)}`, 414, 'uri_too_long'],
    ['a malformed percent-escape', 'GET', '/v1/calls/%E0%A4%A', 400, 'invalid_url'],
    ['another malformed percent-escape', 'POST', '/v1/calls/%ZZ/cancel', 400, 'invalid_url'],
    ['a method no route has', 'PROPFIND', '/v1/calls', 404, 'not_found'],
    ['TRACE', 'TRACE', '/v1/cdrs', 404, 'not_found'],
    ['OPTIONS', 'OPTIONS', '/v1/cdrs', 404, 'not_found'],
    ['a path no route has', 'GET', '/v1/nothing/here', 404, 'not_found'],
  ] as const)('%s', async (_what, method, url, status, code) => {
    const res = await app.inject({ method, url, headers: bearer });
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toEqual({ error: { code, message: expect.any(String) } });
    expect(res.headers['x-request-id']).toMatch(UUID);
    // Never the request's own text back.
    expect(res.body).not.toMatch(/aaaa|%E0|%ZZ/);
  });

  it.each([
    ['text/plain', 'hello', 415, 'unsupported_media_type'],
    ['application/xml', '<a/>', 415, 'unsupported_media_type'],
    ['multipart/form-data; boundary=x', '--x--', 415, 'unsupported_media_type'],
    ['application/json', '{"requestId":', 400, 'invalid_json'],
    ['application/json', '{"__proto__":{"a":1}}', 400, 'invalid_json'],
  ])('a %s body (%s) is %i %s', async (contentType, payload, status, code) => {
    const res = await app.inject({ method: 'POST', url: '/v1/calls', headers: { ...bearer, 'content-type': contentType }, payload });
    expect(res.statusCode).toBe(status);
    expect(res.json<ErrorBody>().error.code).toBe(code);
  });

  it('an unknown method, a malformed request and an over-long URL are answered by the HTTP parser in the error shape', async () => {
    const unknownMethod = await rawExchange(port, 'FOO /v1/calls HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(unknownMethod).toMatch(/^HTTP\/1\.1 400 /);
    expect(unknownMethod).toMatch(/content-type: application\/json/i);
    expect(JSON.parse(unknownMethod.slice(unknownMethod.indexOf('\r\n\r\n') + 4))).toEqual({ error: { code: 'bad_request', message: expect.any(String) } });

    const garbage = await rawExchange(port, 'GARBAGE\r\n\r\n');
    expect(JSON.parse(garbage.slice(garbage.indexOf('\r\n\r\n') + 4)).error.code).toBe('bad_request');

    const longUrl = await rawExchange(port, `GET /v1/${'x'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(longUrl).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(longUrl.slice(longUrl.indexOf('\r\n\r\n') + 4))).toEqual({ error: { code: 'headers_too_large', message: expect.any(String) } });
  });

  it('unknown query and body properties are named only when the name is a plain identifier', async () => {
    const numberKey = await app.inject({ method: 'GET', url: '/v1/cdrs?13912345678=1', headers: bearer });
    expect(numberKey.statusCode).toBe(400);
    expect(numberKey.json()).toEqual({ error: { code: 'unknown_field', message: expect.any(String) } });
    expect(numberKey.body).not.toContain('13912345678');
    const plainKey = await app.inject({ method: 'GET', url: '/v1/cdrs?colour=blue', headers: bearer });
    expect(plainKey.json()).toMatchObject({ error: { code: 'unknown_field', field: 'colour' } });
  });
});

describe('ids are validated before any store sees them', () => {
  it.each(['ид', '中文号码', 'a%00b', 'a'.repeat(65), "x'%20OR%20'1'%3D'1", '%24%7Bsystem(ls)%7D'])(
    'GET and cancel /v1/calls/%s: 400 invalid_field id, and no lookup',
    async (id) => {
      const { app, calls } = build();
      for (const [method, url] of [['GET', `/v1/calls/${id}`], ['POST', `/v1/calls/${id}/cancel`]] as const) {
        const res = await app.inject({ method, url, headers: { authorization: `Bearer ${GOOD_KEY}` } });
        expect(res.statusCode).toBe(400);
        expect(res.json()).toEqual({ error: { code: 'invalid_field', field: 'id', message: expect.any(String) } });
      }
      expect(calls.lookups).toBe(0);
      await app.close();
    },
  );

  it('an ASCII id that does not exist is still a plain 404', async () => {
    const { app, calls } = build();
    const res = await app.inject({ method: 'GET', url: '/v1/calls/00000000-0000-4000-8000-000000000000', headers: { authorization: `Bearer ${GOOD_KEY}` } });
    expect(res.statusCode).toBe(404);
    expect(calls.lookups).toBe(1);
    await app.close();
  });
});

describe('request ids are the server\'s own', () => {
  it('answers with a UUID of its own, whatever x-request-id the client sent', async () => {
    const { app } = build();
    for (const sent of ['r'.repeat(200), 'rq-1', '13812345678', '../../etc/passwd']) {
      const res = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': sent } });
      expect(res.headers['x-request-id']).toMatch(UUID);
    }
    await app.close();
  });
});

describe('failed authentications are throttled per client address', () => {
  const bad = (app: FastifyInstance, remoteAddress: string, authorization = 'Bearer ngk_wrong') =>
    app.inject({ method: 'GET', url: '/v1/cdrs', headers: { authorization }, remoteAddress });

  it('the 21st bad key from one address within a minute is 429 too_many_failed_auth with Retry-After, and no key lookup', async () => {
    const { app, auth } = build();
    for (let i = 0; i < 20; i++) expect((await bad(app, '198.51.100.7')).statusCode).toBe(401);
    expect(auth.calls).toBe(20);
    const refused = await bad(app, '198.51.100.7');
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({ error: { code: 'too_many_failed_auth', message: expect.any(String) } });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    // A good key from that address is not looked up either until the window ends.
    expect((await bad(app, '198.51.100.7', `Bearer ${GOOD_KEY}`)).statusCode).toBe(429);
    expect(auth.calls).toBe(20);

    // Another address is unaffected, and its success resets nobody's count.
    expect((await bad(app, '198.51.100.8', `Bearer ${GOOD_KEY}`)).statusCode).toBe(200);
    expect((await bad(app, '198.51.100.8')).statusCode).toBe(401);
    expect((await bad(app, '198.51.100.7')).statusCode).toBe(429);
    expect(auth.calls).toBe(22);
    await app.close();
  });

  it('counts bad admin tokens too; requests without any credential are not failures', async () => {
    const { app } = build({ throttle: new MemoryAuthThrottle(3) });
    for (let i = 0; i < 5; i++) {
      expect((await app.inject({ method: 'GET', url: '/v1/cdrs', remoteAddress: '198.51.100.20' })).statusCode).toBe(401);
    }
    const admin = (authorization: string) => app.inject({ method: 'GET', url: '/metrics', headers: { authorization }, remoteAddress: '198.51.100.20' });
    for (let i = 0; i < 3; i++) expect((await admin('Bearer wrong-admin-token-000000')).statusCode).toBe(401);
    const refused = await admin(`Bearer ${ADMIN_TOKEN}`);
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error.code).toBe('too_many_failed_auth');
    // Routes that check no credential are not throttled.
    expect((await app.inject({ method: 'GET', url: '/healthz', remoteAddress: '198.51.100.20' })).statusCode).toBe(200);
    await app.close();
  });

  it('the window ends: an address may try again a minute after its first failure', async () => {
    let now = 1_000_000;
    const throttle = new MemoryAuthThrottle(2, 60_000, 100, () => now);
    await throttle.failed('198.51.100.30');
    await throttle.failed('198.51.100.30');
    expect(await throttle.blockedFor('198.51.100.30')).toBe(60_000);
    now += 59_000;
    expect(await throttle.blockedFor('198.51.100.30')).toBe(1_000);
    now += 1_000;
    expect(await throttle.blockedFor('198.51.100.30')).toBe(0);
  });

  it('counts an IPv6 client by its /64, and an IPv4-mapped address as the IPv4 one', () => {
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe(clientKey('2001:0db8:0001:0002:ffff:1:2:3'));
    expect(clientKey('2001:db8:1:2::1')).not.toBe(clientKey('2001:db8:1:3::1'));
    expect(clientKey('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(clientKey('198.51.100.7')).toBe('198.51.100.7');
  });

  describe('kept in Redis', () => {
    let redis: TestRedis;
    beforeAll(async () => {
      redis = await createTestRedis();
    });
    afterAll(async () => {
      await redis?.cleanup();
    });

    it('is shared by every instance on the same Redis', async () => {
      const one = build({ throttle: new RedisAuthThrottle(redis.redis, redis.prefix, 3) });
      const two = build({ throttle: new RedisAuthThrottle(redis.redis, redis.prefix, 3) });
      for (let i = 0; i < 3; i++) expect((await bad(one.app, '203.0.113.9')).statusCode).toBe(401);
      const refused = await bad(two.app, '203.0.113.9', `Bearer ${GOOD_KEY}`);
      expect(refused.statusCode).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(59);
      expect(two.auth.calls).toBe(0);
      expect((await bad(two.app, '203.0.113.10', `Bearer ${GOOD_KEY}`)).statusCode).toBe(200);
      const ttl = await redis.redis.pttl(`${redis.prefix}:authfail:203.0.113.9`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
      await one.app.close();
      await two.app.close();
    });
  });

  it('AUTH_FAILURES_PER_MINUTE is read once and checked, naming the variable', () => {
    expect(loadConfig({ ESL_PASSWORD: 'x' }).authFailuresPerMinute).toBe(20);
    expect(loadConfig({ ESL_PASSWORD: 'x', AUTH_FAILURES_PER_MINUTE: '0' }).authFailuresPerMinute).toBe(0);
    expect(() => loadConfig({ ESL_PASSWORD: 'x', AUTH_FAILURES_PER_MINUTE: 'lots' })).toThrow(/AUTH_FAILURES_PER_MINUTE/);
    expect(() => loadConfig({ ESL_PASSWORD: 'x', AUTH_FAILURES_PER_MINUTE: '-1' })).toThrow(/AUTH_FAILURES_PER_MINUTE/);
  });
});
