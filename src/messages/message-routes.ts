import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { timeWindow, pageLimit } from '../http/query';
import { MESSAGE_STATUSES } from '../domain/message';
import { NotFoundError } from '../domain/errors';
import { CursorParam, ErrorSchema, ResourceId } from '../http/schemas';
import { tenantOf } from '../http/tenant-context';
import type { MessageStore } from './message-store';

const TimeOrEpoch = Type.String({ pattern: '^(\\d{1,15}|\\d{4}-\\d{2}-\\d{2}T[0-9:.]+(Z|[+-]\\d{2}:\\d{2}))$' });
const NullableString = () => Type.Union([Type.String(), Type.Null()]);
const NullableInt = () => Type.Union([Type.Integer(), Type.Null()]);

const ListMessagesQuery = Type.Object(
  {
    from: Type.Optional(TimeOrEpoch),
    to: Type.Optional(TimeOrEpoch),
    status: Type.Optional(Type.Union(MESSAGE_STATUSES.map((s) => Type.Literal(s)))),
    bindingId: Type.Optional(ResourceId('binding id')),
    limit: Type.Optional(Type.String({ pattern: '^\\d{1,3}$' })),
    cursor: Type.Optional(CursorParam(200, 0)),
  },
  { additionalProperties: false },
);
type ListMessagesQuery = Static<typeof ListMessagesQuery>;

const MessageIdParams = Type.Object({ id: ResourceId('message id') });
type MessageIdParams = Static<typeof MessageIdParams>;

const MessageSchema = Type.Object({
  id: Type.String(),
  tenantId: Type.String(),
  bindingId: NullableString(),
  x: Type.String(),
  direction: NullableString(),
  senderMasked: Type.String(),
  recipientMasked: NullableString(),
  transport: Type.String(),
  parts: Type.Integer(),
  length: Type.Integer(),
  status: Type.String(),
  refusal: NullableString(),
  failure: NullableString(),
  receivedAt: Type.Integer({ description: 'epoch ms' }),
  forwardedAt: NullableInt(),
  deliveredAt: NullableInt(),
  failedAt: NullableInt(),
  body: Type.Union([Type.String(), Type.Null()], { description: 'only when the tenant keeps bodies, within their retention' }),
});

const MessagePageSchema = Type.Object({ items: Type.Array(MessageSchema), nextCursor: NullableString() });

const SettingsBody = Type.Object(
  {
    storeBody: Type.Optional(Type.Boolean({ description: 'keep message bodies (off by default)' })),
    bodyRetentionDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
  },
  { additionalProperties: false },
);
type SettingsBody = Static<typeof SettingsBody>;

const SettingsSchema = Type.Object({
  transport: Type.Union([Type.String(), Type.Null()], { description: 'set by the operator; null: the platform default' }),
  storeBody: Type.Boolean(),
  bodyRetentionDays: Type.Integer(),
});

const errorResponses = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 429: ErrorSchema, 503: ErrorSchema };
const security = [{ bearer: [] }];

/** Text messages relayed through the tenant's numbers: their records, and whether bodies are kept. */
export function registerMessageRoutes(v1: FastifyInstance, deps: { store: MessageStore }): void {
  v1.get<{ Querystring: ListMessagesQuery }>(
    '/messages',
    { schema: { summary: 'Text messages relayed through X, newest first', security, querystring: ListMessagesQuery, response: { 200: MessagePageSchema, ...errorResponses } } },
    async (request) => {
      const q = request.query;
      return deps.store.list(tenantOf(request).tenantId, {
        ...timeWindow(q),
        status: q.status,
        bindingId: q.bindingId,
        limit: pageLimit(q.limit),
        cursor: q.cursor,
      });
    },
  );

  v1.get(
    '/messages/settings',
    { schema: { summary: 'Whether message bodies are kept, and for how long', security, response: { 200: SettingsSchema, ...errorResponses } } },
    async (request) => deps.store.settings(tenantOf(request).tenantId),
  );

  v1.patch<{ Body: SettingsBody }>(
    '/messages/settings',
    { schema: { summary: 'Turn keeping message bodies on or off, and set their retention', security, body: SettingsBody, response: { 200: SettingsSchema, ...errorResponses } } },
    async (request) => deps.store.putSettings(tenantOf(request).tenantId, request.body),
  );

  v1.get<{ Params: MessageIdParams }>(
    '/messages/:id',
    { schema: { summary: 'One text message', security, params: MessageIdParams, response: { 200: MessageSchema, ...errorResponses } } },
    async (request) => {
      const m = await deps.store.get(tenantOf(request).tenantId, request.params.id);
      if (!m) throw new NotFoundError('message');
      return m;
    },
  );
}
