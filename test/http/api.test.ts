import type { FastifyInstance } from 'fastify';
import type { CallView, ClickToDialService, CreateClickToDialInput } from '../../src/calls/types';
import { registerCallRoutes } from '../../src/calls/call-routes';
import type { TenantContext } from '../../src/domain/tenant-context';
import { ConflictError, NotFoundError, ValidationError } from '../../src/domain/errors';
import { createLogger } from '../../src/logger';
import { buildHttpServer } from '../../src/http/server';
import { CdrStore } from '../../src/stores/cdr-store';
import { persistCallOutcome } from '../../src/stores/call-outcome';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase } from '../support/mysql';
import type { CdrRecord } from '../../src/domain/call';

/**
 * The HTTP layer with real tenants, keys and CDRs in MariaDB. The call service is a small
 * recording implementation here: the real one is exercised end to end in test/flows.
 */
class RecordingCallService implements ClickToDialService {
  readonly created: Array<{ ctx: TenantContext; input: CreateClickToDialInput }> = [];
  private readonly calls = new Map<string, CallView & { tenantId: string }>();
  failWith: Error | null = null;

  async create(ctx: TenantContext, input: CreateClickToDialInput) {
    if (this.failWith) throw this.failWith;
    if (input.b === 'not-a-number') throw new ValidationError('b', 'b is not a valid phone number', 'invalid_phone_number');
    this.created.push({ ctx, input });
    const existing = [...this.calls.values()].find((c) => c.tenantId === ctx.tenantId && c.requestId === input.requestId);
    if (existing) return { call: existing, created: false };
    const call = view(`00000000-0000-4000-8000-${String(this.calls.size).padStart(12, '0')}`, ctx.tenantId, input);
    this.calls.set(call.id, call);
    return { call, created: true };
  }
  async get(ctx: TenantContext, id: string) {
    const c = this.calls.get(id);
    if (!c || c.tenantId !== ctx.tenantId) throw new NotFoundError('call');
    return c;
  }
  async cancel(ctx: TenantContext, id: string) {
    const c = await this.get(ctx, id);
    if (c.state === 'completed') throw new ConflictError('call_already_ended', 'the call has already ended');
    return c;
  }
  complete(id: string) {
    const c = this.calls.get(id)!;
    this.calls.set(id, { ...c, state: 'completed' });
  }
}

function view(id: string, tenantId: string, input: CreateClickToDialInput): CallView & { tenantId: string } {
  const leg = { state: 'idle' as const, ringAt: null, answerAt: null, endAt: null };
  return {
    tenantId,
    id,
    requestId: input.requestId,
    kind: 'click_to_dial',
    state: 'queued',
    result: null,
    displayMode: input.displayMode ?? 'fixed',
    x: '700100000000001',
    a: input.a,
    b: input.b,
    userData: input.userData ?? null,
    createdAt: new Date().toISOString(),
    legs: { a: leg, b: leg },
    hangupSide: null,
    cdr: null,
  };
}

function cdr(tenantId: string, n: number, result: CdrRecord['result']): CdrRecord {
  const t = Date.parse('2026-11-20T10:00:00Z') + n * 60_000;
  return {
    callId: `10000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    tenantId,
    kind: 'click_to_dial',
    bindingId: null,
    x: '700100000000001',
    a: '13800000001',
    b: '13900000002',
    startedAt: t,
    aRingAt: null,
    aAnswerAt: null,
    bRingAt: null,
    bAnswerAt: null,
    endedAt: t + 30_000,
    talkSeconds: result === 'connected' ? 25 : 0,
    hangupCause: 'NORMAL_CLEARING',
    hangupSide: 'a',
    result,
    recordingRef: null,
    userData: `order-${n}`,
  };
}

describe('HTTP API', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let app: FastifyInstance;
  let service: RecordingCallService;
  let key1: string;
  let key2: string;
  let tenant1: string;
  let ready: Record<string, boolean>;

  beforeAll(async () => {
    db = await createTestDatabase();
    const tenants = new TenantStore(db.pool);
    const t1 = await tenants.create({ name: 'one' });
    const t2 = await tenants.create({ name: 'two' });
    tenant1 = t1.id;
    key1 = (await tenants.createApiKey(t1.id, 'k')).key;
    key2 = (await tenants.createApiKey(t2.id, 'k')).key;
    await persistCallOutcome(db.pool, { cdr: cdr(t1.id, 1, 'connected') });
    await persistCallOutcome(db.pool, { cdr: cdr(t1.id, 2, 'b_busy') });
    await persistCallOutcome(db.pool, { cdr: cdr(t2.id, 3, 'connected') });
    service = new RecordingCallService();
    ready = { esl: true, mysql: true, redis: true };
    app = buildHttpServer({
      logger: createLogger('silent'),
      auth: {
        authenticate: async (key) => {
          const t = await tenants.authenticate(key);
          return t ? { tenantId: t.id, keyId: t.apiKeyId } : null;
        },
      },
      readiness: { check: async () => ready },
      v1Routes: [(v1) => registerCallRoutes(v1, { calls: service, cdrs: new CdrStore(db.pool) })],
    });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  const post = (body: unknown, key = key1, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'POST',
      url: '/v1/calls',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      payload: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const valid = { requestId: 'r-1', a: '13800000001', b: '13900000002' };

  it('refuses requests without a valid API key', async () => {
    const none = await app.inject({ method: 'GET', url: '/v1/cdrs' });
    expect(none.statusCode).toBe(401);
    expect(none.json().error.code).toBe('unauthorized');
    const bad = await app.inject({ method: 'GET', url: '/v1/cdrs', headers: { authorization: 'Bearer ngk_nope' } });
    expect(bad.statusCode).toBe(401);
  });

  it.each([
    ['missing a', { requestId: 'x', b: '13900000002' }, 'missing_field', 'a'],
    ['record of the wrong type', { ...valid, record: 'yes' }, 'invalid_field', 'record'],
    ['ring timeout out of range', { ...valid, ringTimeoutASeconds: 500 }, 'invalid_field', 'ringTimeoutASeconds'],
    ['userData over 256 characters', { ...valid, userData: 'u'.repeat(257) }, 'invalid_field', 'userData'],
    ['an unknown property', { ...valid, colour: 'blue' }, 'unknown_field', 'colour'],
    ['a bad display mode', { ...valid, displayMode: 'hidden' }, 'invalid_field', 'displayMode'],
    ['a bad requestId', { ...valid, requestId: 'has spaces' }, 'invalid_field', 'requestId'],
    ['a number the service rejects', { ...valid, b: 'not-a-number' }, 'invalid_phone_number', 'b'],
  ])('bad input (%s) is a 400 with its code and field', async (_name, body, code, field) => {
    const res = await post(body);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: { code, field, message: expect.any(String) } });
  });

  it('malformed JSON, wrong content type and oversize bodies get their own codes', async () => {
    const malformed = await post('{"requestId": ');
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe('invalid_json');
    const text = await post('hello', key1, { 'content-type': 'text/plain' });
    expect(text.statusCode).toBe(415);
    expect(text.json().error.code).toBe('unsupported_media_type');
    const huge = await post({ ...valid, userData: 'u'.repeat(20_000) });
    expect(huge.statusCode).toBe(413);
  });

  it('accepts a call with 202, and the same requestId again with 200 and the same call', async () => {
    const first = await post({ ...valid, requestId: 'idem-1' });
    expect(first.statusCode).toBe(202);
    expect(first.headers.location).toBe(`/v1/calls/${first.json().id}`);
    expect(first.headers['x-request-id']).toBeTruthy();
    const again = await post({ ...valid, requestId: 'idem-1' });
    expect(again.statusCode).toBe(200);
    expect(again.json().id).toBe(first.json().id);
    expect(service.created.at(-1)!.ctx.tenantId).toBe(tenant1);
  });

  it('isolates tenants: another tenant gets 404 for the call and none of its CDRs', async () => {
    const { id } = (await post({ ...valid, requestId: 'iso-1' })).json();
    const mine = await app.inject({ method: 'GET', url: `/v1/calls/${id}`, headers: { authorization: `Bearer ${key1}` } });
    expect(mine.statusCode).toBe(200);
    const theirs = await app.inject({ method: 'GET', url: `/v1/calls/${id}`, headers: { authorization: `Bearer ${key2}` } });
    expect(theirs.statusCode).toBe(404);
    expect(theirs.json().error.code).toBe('not_found');
    const cdrs2 = await app.inject({ method: 'GET', url: '/v1/cdrs', headers: { authorization: `Bearer ${key2}` } });
    expect(cdrs2.json().items.map((c: CdrRecord) => c.callId)).toEqual([cdr('', 3, 'connected').callId]);
  });

  it('lists CDRs with filters on result, userData and time', async () => {
    const get = (q: string) => app.inject({ method: 'GET', url: `/v1/cdrs?${q}`, headers: { authorization: `Bearer ${key1}` } });
    expect((await get('')).json().items).toHaveLength(2);
    expect((await get('result=b_busy')).json().items.map((c: CdrRecord) => c.result)).toEqual(['b_busy']);
    expect((await get('userData=order-1')).json().items).toHaveLength(1);
    expect((await get('from=2026-11-20T10:01:30Z')).json().items).toHaveLength(1);
    expect((await get(`to=${Date.parse('2026-11-20T10:01:30Z')}`)).json().items).toHaveLength(1);
    const bad = await get('limit=abc');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.field).toBe('limit');
    expect((await get('result=exploded')).json().error.field).toBe('result');
  });

  it('cancelling an ended call is a 409', async () => {
    const { id } = (await post({ ...valid, requestId: 'end-1' })).json();
    service.complete(id);
    const res = await app.inject({ method: 'POST', url: `/v1/calls/${id}/cancel`, headers: { authorization: `Bearer ${key1}` } });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('call_already_ended');
  });

  it('an unexpected exception is a 500 that leaks nothing', async () => {
    service.failWith = new Error('db password is hunter2 for 13800000001');
    const res = await post({ ...valid, requestId: 'boom' });
    service.failWith = null;
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'internal_error', message: 'internal error' } });
  });

  it('reports liveness always and readiness per dependency', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    ready.esl = false;
    const down = await app.inject({ method: 'GET', url: '/readyz' });
    ready.esl = true;
    expect(down.statusCode).toBe(503);
    expect(down.json().checks.esl).toBe(false);
  });

  it('serves an OpenAPI 3 document describing the API and its bearer auth', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/v1/calls'].post.requestBody.content['application/json'].schema.properties.requestId).toBeDefined();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/calls/{id}', '/v1/calls/{id}/cancel', '/v1/cdrs']));
  });

  it('unknown routes are 404 not_found', async () => {
    const res = await app.inject({ method: 'GET', url: '/v2/nothing' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('not_found');
  });
});
