import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import { AppError } from '../domain/errors';
import type { TenantContext } from '../domain/tenant-context';
import { lazyChildLogger, type Logger } from '../logger';
import { registerAuditHook, type AuditSink } from './audit-hook';
import { MemoryAuthThrottle, type AuthFailureThrottle } from './auth-throttle';
import { notFound, toHttpError } from './errors';
import { guardedServerOptions, registerRequestGuards } from './request-guards';
import { ErrorSchema } from './schemas';

/**
 * The HTTP kernel: Fastify with the error shape, request ids and guards, API-key authentication
 * and the tenant context of /v1, the audit hook, health and readiness. It knows no feature: each
 * business component brings its routes as a plugin, and app.ts hands them in.
 */
/** The narrow views of the rest of the system that the HTTP layer needs. */
export interface ApiKeyAuthenticator {
  authenticate(key: string): Promise<{ tenantId: string; keyId?: string; name?: string } | null>;
}

export interface ReadinessProbe {
  /** Each boolean must be true to be ready; a nested record (e.g. each switch of a fleet) is shown, not required. */
  check(): Promise<Record<string, boolean | Record<string, boolean>>>;
}

/** A feature's routes: registered in a scope of its own (inside /v1, or at the root). */
export type HttpPlugin = (scope: FastifyInstance) => void;

export interface HttpDeps {
  readonly logger: Logger;
  readonly auth: ApiKeyAuthenticator;
  readonly readiness: ReadinessProbe;
  /** Every change through /v1 is appended to the audit log (after the response is sent). */
  readonly audit?: AuditSink;
  /** Called when an audit entry could not be written (the request itself has already succeeded). */
  readonly onAuditError?: (err: unknown) => void;
  /**
   * Failed authentications per client address (auth-throttle.ts): the app passes one kept in
   * Redis; without it, this process counts them itself, 20 per minute.
   */
  readonly authThrottle?: AuthFailureThrottle;
  /** Features' routes inside /v1, after API-key authentication, in this order (hooks apply to what follows). */
  readonly v1Routes?: readonly HttpPlugin[];
  /** Features' routes outside /v1 (console, operations), each with its own authentication. */
  readonly routes?: readonly HttpPlugin[];
}

declare module 'fastify' {
  interface FastifyRequest {
    tenant: TenantContext | null;
  }
}

const BODY_LIMIT = 16 * 1024;

export function buildHttpServer(deps: HttpDeps): FastifyInstance {
  const app = Fastify({
    // Fastify's logger type is narrower than pino's child; the cast is what tsc needs (eslint's program disagrees).
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // One line per request, written in onResponse with the route pattern (never the raw URL or body).
    logController: new LogController({ disableRequestLogging: true }),
    // Each request's logger, made lazily; Fastify hands back the pino logger given as loggerInstance.
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
    childLoggerFactory: (logger, bindings, options) => lazyChildLogger(logger as Logger, bindings, options) as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    // Request ids are ours (UUIDs); Fastify's own refusals answer in the error shape (request-guards.ts).
    ...guardedServerOptions(),
    // Strict input: no type coercion, unknown properties are errors rather than silently dropped.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  app.decorateRequest('tenant', null);
  // JSON only: a text/plain body is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');
  registerRequestGuards(app, { throttle: deps.authThrottle ?? new MemoryAuthThrottle(20) });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
        clientRequestId: request.clientRequestId,
      },
      'request',
    );
  });

  app.setErrorHandler((err, request, reply) => {
    const { status, body, retryAfterSeconds, unexpected } = toHttpError(err);
    if (unexpected) request.log.error({ err }, 'unexpected error');
    if (retryAfterSeconds !== undefined) void reply.header('retry-after', String(retryAfterSeconds));
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((_request, reply) => {
    const { status, body } = notFound();
    void reply.status(status).send(body);
  });

  void app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'numguard',
        version: '1',
        description: 'Number protection: click-to-dial calls between two parties who both see a privacy number.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'tenant API key' } } },
    },
  });

  void app.register(async (api) => {
    api.addSchema(ErrorSchema);
    api.get('/openapi.json', { schema: { hide: true } }, async () => api.swagger());

    api.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
    api.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
      const checks = await deps.readiness.check();
      const ready = Object.values(checks).every((v) => typeof v !== 'boolean' || v);
      return reply.status(ready ? 200 : 503).send({ ready, checks });
    });
    for (const register of deps.routes ?? []) register(api);

    void api.register(
      async (v1) => {
        v1.addHook('onRequest', async (request) => {
          request.tenant = await authenticate(deps.auth, request);
        });
        if (deps.audit) {
          registerAuditHook(v1, deps.audit, (request) => request.tenant, deps.onAuditError ?? ((err) => deps.logger.error({ err }, 'audit entry not written')));
        }
        for (const register of deps.v1Routes ?? []) register(v1);
      },
      { prefix: '/v1' },
    );
  });

  return app;
}

async function authenticate(auth: ApiKeyAuthenticator, request: FastifyRequest): Promise<TenantContext> {
  const header = request.headers.authorization;
  const key = header ? /^Bearer\s+(\S+)$/i.exec(header)?.[1] : undefined;
  if (!key) throw new AppError('unauthorized', 'send the API key as "Authorization: Bearer <key>"');
  const found = await auth.authenticate(key);
  if (!found) throw new AppError('unauthorized', 'unknown or revoked API key');
  return { tenantId: found.tenantId, actor: `key:${found.keyId ?? 'unknown'}` };
}
