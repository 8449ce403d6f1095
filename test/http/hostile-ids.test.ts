import Fastify, { type FastifyInstance } from 'fastify';
import { registerBindingRoutes } from '../../src/bindings/routes';
import { toHttpError } from '../../src/http/errors';
import { BindingService } from '../../src/bindings/binding-service';
import { createTestDatabase, type TestDatabase } from '../support/mysql';

/**
 * Ids, numbers and cursors in paths and query strings are checked by the route schemas before a
 * store sees them. Over a real MariaDB: the id, x, number columns are ascii, and a non-ASCII value
 * compared with one is "Illegal mix of collations" (a 500), not a miss.
 */
type ErrorBody = { error: { code: string; message: string; field?: string } };

describe('hostile ids and query values on the binding and pool routes', () => {
  let db: TestDatabase;
  let app: FastifyInstance;

  beforeAll(async () => {
    db = await createTestDatabase();
    const registry = new BindingService(db.pool);
    app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } } });
    app.decorateRequest('tenant', null);
    app.setErrorHandler((err, _request, reply) => {
      const { status, body } = toHttpError(err);
      void reply.status(status).send(body);
    });
    app.addHook('onRequest', async (request) => {
      request.tenant = { tenantId: 'tenant-one', actor: 'key:tenant-one-key' };
    });
    void app.register(async (v1) => registerBindingRoutes(v1, { registry }), { prefix: '/v1' });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  async function refused(method: 'GET' | 'PATCH' | 'DELETE', url: string, body?: object) {
    const res = await app.inject({ method, url, ...(body === undefined ? {} : { payload: body }) });
    // An answer that is not an error (a value the schemas let through) has no error field.
    const json = res.json<Partial<ErrorBody>>();
    return { status: res.statusCode, code: json.error?.code, field: json.error?.field };
  }

  it.each(['ид', '中文', encodeURIComponent('ид'), 'a'.repeat(65), "x'%20OR%20'1'%3D'1", '%00', '%24%7Bsystem(ls)%7D'])(
    'binding id %p: GET, PATCH, DELETE and history are 400 invalid_field id',
    async (id) => {
      for (const [method, url, body] of [
        ['GET', `/v1/bindings/${id}`, undefined],
        ['PATCH', `/v1/bindings/${id}`, { record: true }],
        ['DELETE', `/v1/bindings/${id}`, undefined],
        ['GET', `/v1/bindings/${id}/history`, undefined],
      ] as const) {
        expect({ method, ...(await refused(method, url, body)) }).toEqual({ method, status: 400, code: 'invalid_field', field: 'id' });
      }
    },
  );

  it('an ASCII binding id that does not exist is a plain 404', async () => {
    expect(await refused('GET', '/v1/bindings/00000000-0000-4000-8000-000000000000')).toEqual({ status: 404, code: 'not_found', field: undefined });
    expect(await refused('GET', '/v1/bindings/no-such-binding/history')).toEqual({ status: 404, code: 'not_found', field: undefined });
  });

  it.each(['ид', '中文', '13800000001ид', '1'.repeat(33)])('number or x %p in a path is 400 invalid_field', async (value) => {
    const encoded = encodeURIComponent(value);
    expect(await refused('DELETE', `/v1/blacklist/${encoded}`)).toEqual({ status: 400, code: 'invalid_field', field: 'number' });
    expect(await refused('PATCH', `/v1/pool/numbers/${encoded}`, { state: 'enabled' })).toEqual({ status: 400, code: 'invalid_field', field: 'x' });
  });

  it.each([
    ['/v1/bindings', 'number', 'ид'],
    ['/v1/bindings', 'x', '中文'],
    ['/v1/bindings', 'cursor', 'ид'],
    ['/v1/bindings', 'cursor', 'a b'],
    ['/v1/pool/numbers', 'cursor', 'ид'],
    ['/v1/pool/numbers', 'cursor', "7001' OR '1'='1"],
  ])('GET %s?%s=%p is 400 invalid_field', async (path, key, value) => {
    expect(await refused('GET', `${path}?${key}=${encodeURIComponent(value)}`)).toEqual({ status: 400, code: 'invalid_field', field: key });
  });
});
