import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { CallView, ClickToDialService, TenantContext } from '../calls/types';
import type { CallResult, CdrRecord } from '../domain/call';
import { AppError, ValidationError } from '../domain/errors';
import type { Logger } from '../logger';
import type { AuditStore } from '../stores/audit-store';
import type { BindingRegistry } from '../stores/binding-registry';
import { registerAbuseRoutes } from '../abuse/abuse-routes';
import type { AbuseGuard } from '../abuse/abuse-guard';
import { registerAuditHook, type AuditSink } from './audit-hook';
import { registerAuditRoutes } from './audit-routes';
import { registerOpsRoutes, type OpsDeps } from '../monitoring/ops-routes';
import { registerConsoleRoutes, type ConsoleDeps } from '../agent-console/console-routes';
import { registerBindingRoutes } from './binding-routes';
import { registerMediaRoutes } from './media-routes';
import type { MediaCatalogue } from '../stores/media-catalogue';
import { registerWebhookRoutes, type WebhookRouteDeps } from './webhook-routes';
import { MemoryAuthThrottle, type AuthFailureThrottle } from './auth-throttle';
import { notFound, toHttpError } from './errors';
import { guardedServerOptions, registerRequestGuards } from './request-guards';
import { tenantOf } from './tenant-context';
import {
  CallIdParams,
  CallViewSchema,
  CdrPageSchema,
  CreateCallBody,
  ErrorSchema,
  ListCdrsQuery,
} from './schemas';

/** The narrow views of the rest of the system that the HTTP layer needs. */
export interface ApiKeyAuthenticator {
  authenticate(key: string): Promise<{ tenantId: string; keyId?: string; name?: string } | null>;
}

export interface CdrReader {
  list(
    tenantId: string,
    query: { from?: number; to?: number; result?: CallResult; userData?: string; limit?: number; cursor?: string },
  ): Promise<{ items: CdrRecord[]; nextCursor: string | null }>;
}

export interface ReadinessProbe {
  check(): Promise<Record<string, boolean>>;
}

export interface HttpDeps {
  readonly logger: Logger;
  readonly auth: ApiKeyAuthenticator;
  readonly calls: ClickToDialService;
  readonly cdrs: CdrReader;
  readonly readiness: ReadinessProbe;
  /** Bindings and pool routes; absent in a deployment that only does click-to-dial. */
  readonly bindings?: BindingRegistry;
  /** The operator's prompts and announcements, listed for tenants (GET /v1/media). */
  readonly media?: Pick<MediaCatalogue, 'list'>;
  /** Abuse control: the tenant request rate and GET /v1/abuse/flags. */
  readonly abuse?: AbuseGuard;
  /** The agent console page (/console) and its API (/console/api). */
  readonly agentConsole?: ConsoleDeps;
  /** /metrics, /livez and the queue dashboard. */
  readonly ops?: OpsDeps;
  /** The audit log: every change through the API is appended; GET /v1/audit reads it. */
  readonly audit?: AuditSink & Pick<AuditStore, 'page'>;
  /** Called when an audit entry could not be written (the request itself has already succeeded). */
  readonly onAuditError?: (err: unknown) => void;
  /** The tenant's webhook endpoint and delivery log (/v1/webhook). */
  readonly webhooks?: WebhookRouteDeps;
  /**
   * Failed authentications per client address (auth-throttle.ts): the app passes one kept in
   * Redis; without it, this process counts them itself, 20 per minute.
   */
  readonly authThrottle?: AuthFailureThrottle;
}

declare module 'fastify' {
  interface FastifyRequest {
    tenant: TenantContext | null;
  }
}

const BODY_LIMIT = 16 * 1024;
const errorResponses = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 429: ErrorSchema };

export function buildHttpServer(deps: HttpDeps): FastifyInstance {
  const app = Fastify({
    // Fastify's logger type is narrower than pino's child; the cast is what tsc needs (eslint's program disagrees).
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // One line per request, written in onResponse with the route pattern (never the raw URL or body).
    logController: new LogController({ disableRequestLogging: true }),
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
    const { status, body, unexpected } = toHttpError(err);
    if (unexpected) request.log.error({ err }, 'unexpected error');
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
    if (deps.ops) registerOpsRoutes(api, deps.ops);
    if (deps.agentConsole) registerConsoleRoutes(api, deps.agentConsole);
    api.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
      const checks = await deps.readiness.check();
      const ready = Object.values(checks).every(Boolean);
      return reply.status(ready ? 200 : 503).send({ ready, checks });
    });

    void api.register(async (v1) => {
      v1.addHook('onRequest', async (request) => {
        request.tenant = await authenticate(deps.auth, request);
      });
      if (deps.audit) {
        const audit = deps.audit;
        registerAuditHook(v1, audit, (request) => request.tenant, deps.onAuditError ?? ((err) => deps.logger.error({ err }, 'audit entry not written')));
        registerAuditRoutes(v1, audit);
      }
      // After authentication: the request rate is counted per tenant.
      if (deps.abuse) registerAbuseRoutes(v1, deps.abuse);

      v1.post<{ Body: CreateCallBody }>(
        '/calls',
        {
          schema: {
            summary: 'Request a click-to-dial call: A is rung first, then B; both see X',
            security: [{ bearer: [] }],
            body: CreateCallBody,
            response: { 200: CallViewSchema, 202: CallViewSchema, ...errorResponses },
          },
        },
        async (request, reply) => {
          const { call, created } = await deps.calls.create(tenantOf(request), request.body);
          return reply
            .status(created ? 202 : 200)
            .header('location', `/v1/calls/${call.id}`)
            .send(call);
        },
      );

      v1.get<{ Params: CallIdParams }>(
        '/calls/:id',
        {
          schema: {
            summary: 'A call: its state, legs and CDR',
            security: [{ bearer: [] }],
            params: CallIdParams,
            response: { 200: CallViewSchema, ...errorResponses },
          },
        },
        async (request): Promise<CallView> => deps.calls.get(tenantOf(request), request.params.id),
      );

      v1.post<{ Params: CallIdParams }>(
        '/calls/:id/cancel',
        {
          schema: {
            summary: 'Cancel a queued, ringing or connected call',
            security: [{ bearer: [] }],
            params: CallIdParams,
            response: { 200: CallViewSchema, ...errorResponses },
          },
        },
        async (request): Promise<CallView> => deps.calls.cancel(tenantOf(request), request.params.id),
      );

      if (deps.bindings) registerBindingRoutes(v1, { registry: deps.bindings });
      if (deps.media) registerMediaRoutes(v1, deps.media);
      if (deps.webhooks) registerWebhookRoutes(v1, deps.webhooks);

      v1.get<{ Querystring: ListCdrsQuery }>(
        '/cdrs',
        {
          schema: {
            summary: 'Call detail records, newest first',
            security: [{ bearer: [] }],
            querystring: ListCdrsQuery,
            response: { 200: CdrPageSchema, ...errorResponses },
          },
        },
        async (request) => {
          const q = request.query;
          return deps.cdrs.list(tenantOf(request).tenantId, {
            from: q.from === undefined ? undefined : parseTime(q.from, 'from'),
            to: q.to === undefined ? undefined : parseTime(q.to, 'to'),
            result: q.result,
            userData: q.userData,
            limit: q.limit === undefined ? undefined : Number(q.limit),
            cursor: q.cursor,
          });
        },
      );
    }, { prefix: '/v1' });
  });

  return app;
}

async function authenticate(auth: ApiKeyAuthenticator, request: FastifyRequest): Promise<TenantContext> {
  const header = request.headers.authorization;
  const key = header ? /^Bearer\s+(\S+)$/i.exec(header)?.[1] : undefined;
  if (!key) throw new AppError('unauthorized', 'send the API key as "Authorization: Bearer <key>"', 401);
  const found = await auth.authenticate(key);
  if (!found) throw new AppError('unauthorized', 'unknown or revoked API key', 401);
  return { tenantId: found.tenantId, actor: `key:${found.keyId ?? 'unknown'}` };
}

function parseTime(value: string, field: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new ValidationError(field, `${field} must be an ISO time or epoch milliseconds`);
  return ms;
}
