import Fastify, { type FastifyInstance } from 'fastify';
import { BindingService } from '../../src/bindings/binding-service';
import { registerBindingRoutes } from '../../src/bindings/routes';
import { toHttpError } from '../../src/http/errors';
import type { Pool } from '../../src/stores/mysql';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
export type ErrorBody = { error: { code: string; message: string; field?: string } };

export interface BindingRoutesApp {
  readonly app: FastifyInstance;
  readonly registry: BindingService;
  call<T>(method: Method, url: string, body?: unknown, tenant?: string): Promise<{ status: number; body: T }>;
  /** An answer expected to be an error: its status, code and field. */
  refused(method: Method, url: string, body?: unknown, tenant?: string): Promise<{ status: number; code: string; field: string | undefined }>;
}

/**
 * The binding and pool routes on a bare Fastify app over a real database: the tenant comes from an
 * `x-tenant` header (default `defaultTenant`) instead of an API key.
 */
export async function startBindingRoutesApp(pool: Pool, defaultTenant: string): Promise<BindingRoutesApp> {
  const registry = new BindingService(pool);
  const app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } } });
  app.decorateRequest('tenant', null);
  app.setErrorHandler((err, _request, reply) => {
    const { status, body } = toHttpError(err);
    void reply.status(status).send(body);
  });
  app.addHook('onRequest', async (request) => {
    const tenantId = String(request.headers['x-tenant'] ?? defaultTenant);
    request.tenant = { tenantId, actor: `key:${tenantId}-key` };
  });
  void app.register(async (v1) => registerBindingRoutes(v1, { registry }), { prefix: '/v1' });
  await app.ready();

  async function call<T>(method: Method, url: string, body?: unknown, tenant = defaultTenant) {
    const res = await app.inject({ method, url, headers: { 'x-tenant': tenant }, ...(body === undefined ? {} : { payload: body as object }) });
    return { status: res.statusCode, body: (res.body ? res.json() : undefined) as T };
  }
  async function refused(method: Method, url: string, body?: unknown, tenant = defaultTenant) {
    const res = await call<ErrorBody>(method, url, body, tenant);
    return { status: res.status, code: res.body.error.code, field: res.body.error.field };
  }
  return { app, registry, call, refused };
}
