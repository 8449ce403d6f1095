import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors';
import type { PlatformEventType } from '../events/platform-events';
import { isSubscribableEventType, testPayload, WEBHOOK_EVENT_TYPES } from './payload';
import type { WebhookQueue } from './webhook-queue';
import { MAX_DELIVERY_PAGE, type WebhookEndpoint, type WebhookStore } from './webhook-store';
import { CursorParam, ErrorSchema } from '../http/schemas';
import { checkPublicHost } from './public-address';
import { publicDeliveryError } from './delivery-errors';
import { tenantOf } from '../http/tenant-context';
import { pageLimit } from '../http/query';

/**
 * The tenant's webhook endpoint and its delivery log (SPEC §6). Registered by server.ts inside
 * the authenticated /v1 scope. The secret is write-only: no response ever carries it.
 */
export interface WebhookRouteDeps {
  readonly store: Pick<WebhookStore, 'getEndpoint' | 'putEndpoint' | 'deleteEndpoint' | 'listDeliveries'>;
  /** Dropped from the producer's cache on every change, so this instance applies it at once. */
  readonly invalidate: (tenantId: string) => void;
  readonly queue: Pick<WebhookQueue, 'enqueue'>;
  /** WEBHOOK_ALLOW_PRIVATE_URLS: otherwise a URL must resolve to public addresses only. */
  readonly allowPrivateUrls?: boolean;
}

export const MIN_SECRET_LENGTH = 16;

export const PutWebhookBody = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048, description: 'http or https URL the events are POSTed to' }),
    // Length and type names are checked by the handler, for specific error codes.
    secret: Type.String({ maxLength: 256, description: `HMAC-SHA256 key, at least ${MIN_SECRET_LENGTH} characters; never shown again` }),
    events: Type.Optional(
      Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 32, description: `event types to receive (default: all): ${WEBHOOK_EVENT_TYPES.join(', ')}` }),
    ),
    enabled: Type.Optional(Type.Boolean({ description: 'default true' })),
  },
  { additionalProperties: false },
);
export type PutWebhookBody = Static<typeof PutWebhookBody>;

const WebhookSchema = Type.Object({
  url: Type.String(),
  events: Type.Union([Type.Array(Type.String()), Type.Null()], { description: 'null: every event type' }),
  enabled: Type.Boolean(),
  createdAt: Type.Integer({ description: 'epoch ms' }),
  updatedAt: Type.Integer({ description: 'epoch ms' }),
});

const DeliverySchema = Type.Object({
  id: Type.String(),
  eventId: Type.String(),
  eventType: Type.String(),
  url: Type.String(),
  attempt: Type.Integer({ description: '1 for the first attempt' }),
  status: Type.Union([Type.Literal('delivered'), Type.Literal('failed'), Type.Literal('gave_up')], {
    description: 'failed: will be retried; gave_up: the last attempt failed',
  }),
  httpStatus: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()], {
    description: 'null when delivered, else one of not_public_address, unresolvable, connection_failed, tls_failed, timeout, http_<status>',
  }),
  durationMs: Type.Integer(),
  createdAt: Type.Integer({ description: 'epoch ms' }),
});

const ListDeliveriesQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^\\d{1,3}$' })),
    cursor: Type.Optional(CursorParam(128)),
    eventId: Type.Optional(Type.String({ minLength: 1, maxLength: 36, pattern: '^[A-Za-z0-9-]+$' })),
  },
  { additionalProperties: false },
);

const errors = { 400: ErrorSchema, 401: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 429: ErrorSchema };
const security = [{ bearer: [] }];

function view(e: WebhookEndpoint): Static<typeof WebhookSchema> {
  return { url: e.url, events: e.events === null ? null : [...e.events], enabled: e.enabled, createdAt: e.createdAt, updatedAt: e.updatedAt };
}

export function parseWebhookUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ValidationError('url', 'url must be an absolute http or https URL', 'invalid_url');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ValidationError('url', 'url must use http or https', 'invalid_url');
  }
  if (url.hostname === '') throw new ValidationError('url', 'url must name a host', 'invalid_url');
  return url;
}

export function parseEventTypes(events: readonly string[] | undefined): PlatformEventType[] | null {
  if (events === undefined) return null;
  const out: PlatformEventType[] = [];
  for (const type of events) {
    if (!isSubscribableEventType(type)) {
      throw new ValidationError('events', `events may only name ${WEBHOOK_EVENT_TYPES.join(', ')}`, 'unknown_event_type');
    }
    if (!out.includes(type)) out.push(type);
  }
  return out;
}

export function registerWebhookRoutes(v1: FastifyInstance, deps: WebhookRouteDeps): void {
  const { store } = deps;

  v1.put<{ Body: PutWebhookBody }>(
    '/webhook',
    {
      schema: {
        summary: 'Set the tenant’s webhook endpoint: URL, signing secret and the event types to receive',
        security,
        body: PutWebhookBody,
        response: { 200: WebhookSchema, ...errors },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const body = request.body;
      const url = parseWebhookUrl(body.url);
      if (!deps.allowPrivateUrls) {
        const host = await checkPublicHost(url.hostname);
        if (!host.ok && host.reason === 'not_public') {
          throw new ValidationError('url', 'url must reach a public address, not a private, loopback or link-local one', 'webhook_url_not_public');
        }
        if (!host.ok) throw new ValidationError('url', 'the url\'s host name does not resolve', 'webhook_url_unresolvable');
      }
      if (body.secret.length < MIN_SECRET_LENGTH) {
        throw new ValidationError('secret', `secret must be at least ${MIN_SECRET_LENGTH} characters`, 'secret_too_short');
      }
      const events = parseEventTypes(body.events);
      const endpoint = await store.putEndpoint(tenant.tenantId, { url: body.url, secret: body.secret, events, enabled: body.enabled ?? true });
      deps.invalidate(tenant.tenantId);
      return view(endpoint);
    },
  );

  v1.get(
    '/webhook',
    { schema: { summary: 'The tenant’s webhook endpoint (without its secret)', security, response: { 200: WebhookSchema, ...errors } } },
    async (request) => {
      const endpoint = await store.getEndpoint(tenantOf(request).tenantId);
      if (!endpoint) throw new NotFoundError('webhook');
      return view(endpoint);
    },
  );

  v1.delete(
    '/webhook',
    { schema: { summary: 'Remove the webhook endpoint; queued deliveries are dropped', security, response: { 204: Type.Null({ description: 'removed' }), 401: ErrorSchema, 404: ErrorSchema } } },
    async (request, reply) => {
      const tenant = tenantOf(request);
      if (!(await store.deleteEndpoint(tenant.tenantId))) throw new NotFoundError('webhook');
      deps.invalidate(tenant.tenantId);
      return reply.status(204).send();
    },
  );

  v1.get<{ Querystring: Static<typeof ListDeliveriesQuery> }>(
    '/webhook/deliveries',
    {
      schema: {
        summary: `Delivery attempts, newest first (limit 1..${MAX_DELIVERY_PAGE}, default 50); page with nextCursor`,
        security,
        querystring: ListDeliveriesQuery,
        response: { 200: Type.Object({ items: Type.Array(DeliverySchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...errors },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await store.listDeliveries(tenantOf(request).tenantId, {
        limit: pageLimit(q.limit),
        cursor: q.cursor,
        eventId: q.eventId,
      });
      // Rows logged before the error categories may hold socket details: shown as their category.
      return { ...page, items: page.items.map((d) => ({ ...d, error: publicDeliveryError(d.error) })) };
    },
  );

  v1.post(
    '/webhook/test',
    {
      schema: {
        summary: 'Queue a `webhook.test` event to the endpoint, signed and retried like any other',
        security,
        response: { 202: Type.Object({ eventId: Type.String() }), ...errors },
      },
    },
    async (request, reply) => {
      const tenantId = tenantOf(request).tenantId;
      const endpoint = await store.getEndpoint(tenantId);
      if (!endpoint) throw new NotFoundError('webhook');
      if (!endpoint.enabled) throw new ConflictError('webhook_disabled', 'the webhook endpoint is disabled');
      // The worker reads the endpoint through the cache; it must see this one.
      deps.invalidate(tenantId);
      const payload = testPayload(tenantId);
      await deps.queue.enqueue(payload);
      return reply.status(202).send({ eventId: payload.id });
    },
  );
}
