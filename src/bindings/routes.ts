import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ForbiddenError, NotFoundError, ValidationError } from '../domain/errors';
import type { BindingService } from '../bindings/binding-service';
import { CursorParam, ErrorSchema, NullableInteger, NullableString, PhoneParam, ResourceId } from '../http/schemas';
import { tenantOf } from '../http/tenant-context';
import { pageLimit } from '../http/query';

/**
 * Bindings, their history, the blacklist and the number pool over HTTP (SPEC §3, §7).
 * Registered by server.ts inside the authenticated /v1 scope: every handler reads the tenant
 * from `request.tenant` and only throws; the central error handler maps AppErrors to HTTP.
 */
export interface BindingRouteDeps {
  readonly registry: BindingService;
}

const Number32 = Type.String({ minLength: 1, maxLength: 32 });
const Restriction = Type.Union([Type.Literal('both'), Type.Literal('a_to_b'), Type.Literal('b_to_a')]);
const Area = Type.String({ pattern: '^0?\\d{2,4}$' });

/** Seconds before the maximum duration ends a call that both parties hear a warning tone; 0: none. */
const EndWarningSeconds = Type.Integer({ minimum: 0, maximum: 3600 });

export const CreateBindingBody = Type.Object(
  {
    requestId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:-]+$' })),
    mode: Type.Union([Type.Literal('axb'), Type.Literal('xb'), Type.Literal('axe')]),
    a: Type.Optional(Number32),
    b: Number32,
    x: Type.Optional(Number32),
    // AXE only; exactly the tenant's extension length in digits, checked by the registry: `invalid_extension`.
    extension: Type.Optional(Type.String({ minLength: 1, maxLength: 16, description: 'AXE: the extension wanted; a free one is drawn at random otherwise' })),
    area: Type.Optional(Area),
    strictArea: Type.Optional(Type.Boolean()),
    // Range checked by the registry, so a bad value is `invalid_ttl`, not a generic schema error.
    ttlSeconds: Type.Optional(Type.Integer()),
    restriction: Type.Optional(Restriction),
    record: Type.Optional(Type.Boolean()),
    maxDurationSeconds: Type.Optional(Type.Integer({ minimum: 10, maximum: 86_400 })),
    endWarningSeconds: Type.Optional(EndWarningSeconds),
    // The id of an entry of the operator's media catalogue (GET /v1/media); checked by the registry: `unknown_media`.
    announcement: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    // Length checked by the registry: `allow_list_too_long`.
    allowList: Type.Optional(Type.Array(Number32, { maxItems: 1000 })),
    userData: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);
export type CreateBindingBody = Static<typeof CreateBindingBody>;

export const UpdateBindingBody = Type.Object(
  {
    a: Type.Optional(Number32),
    b: Type.Optional(Number32),
    ttlSeconds: Type.Optional(Type.Integer({ description: 'a new lifetime, counted from now' })),
    restriction: Type.Optional(Restriction),
    record: Type.Optional(Type.Boolean()),
    maxDurationSeconds: Type.Optional(Type.Union([Type.Integer({ minimum: 10, maximum: 86_400 }), Type.Null()])),
    endWarningSeconds: Type.Optional(Type.Union([EndWarningSeconds, Type.Null()])),
    announcement: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Null()])),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateBindingBody = Static<typeof UpdateBindingBody>;

export const BindingSchema = Type.Object({
  id: Type.String(),
  requestId: NullableString(),
  kind: Type.String(),
  x: Type.String(),
  a: NullableString(),
  b: NullableString(),
  extension: NullableString({ description: 'AXE: the digits a caller keys after dialling X' }),
  state: Type.String(),
  expiresAt: Type.Integer({ description: 'epoch ms' }),
  restriction: Type.String(),
  record: Type.Boolean(),
  maxDurationSeconds: NullableInteger(),
  endWarningSeconds: NullableInteger({ description: 'null: the platform default; 0: no warning' }),
  announcement: NullableString({ description: 'media catalogue id' }),
  allowList: Type.Array(Type.String()),
  userData: NullableString(),
});

const ListBindingsQuery = Type.Object(
  {
    number: Type.Optional(PhoneParam()),
    x: Type.Optional(PhoneParam()),
    state: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('expired'), Type.Literal('unbound')])),
    userData: Type.Optional(Type.String({ maxLength: 256 })),
    // Query strings are not coerced (strict ajv), so the limit arrives as digits.
    limit: Type.Optional(Type.String({ pattern: '^\\d{1,3}$' })),
    cursor: Type.Optional(CursorParam(128)),
  },
  { additionalProperties: false },
);

const HistoryItem = Type.Object({
  at: Type.Integer({ description: 'epoch ms' }),
  actor: Type.String(),
  requestId: Type.Union([Type.String(), Type.Null()]),
  change: Type.Record(Type.String(), Type.Array(Type.Unknown(), { minItems: 2, maxItems: 2 }), { description: '[old, new]; numbers masked' }),
});

const PoolStatsSchema = Type.Object({
  areas: Type.Array(
    Type.Object({
      area: Type.String(),
      numbers: Type.Integer(),
      enabled: Type.Integer(),
      inUse: Type.Integer({ description: 'numbers carrying at least one active binding' }),
      activeBindings: Type.Integer(),
      maxBindingsPerX: Type.Integer(),
      disabled: Type.Integer(),
      quarantined: Type.Integer(),
      free: Type.Integer({ description: 'enabled numbers carrying no active binding' }),
      avgBindingsPerX: Type.Number({ description: 'active bindings per number in use' }),
    }),
  ),
});

const PoolNumberState = Type.Union([Type.Literal('enabled'), Type.Literal('disabled'), Type.Literal('quarantined')]);
const PoolNumberSchema = Type.Object({
  x: Type.String(),
  area: Type.String(),
  state: PoolNumberState,
  legacy: Type.Boolean(),
  activeBindings: Type.Integer(),
});
const ListNumbersQuery = Type.Object(
  {
    area: Type.Optional(Area),
    state: Type.Optional(PoolNumberState),
    limit: Type.Optional(Type.String({ pattern: '^\\d{1,4}$' })),
    cursor: Type.Optional(PhoneParam()),
  },
  { additionalProperties: false },
);
const XParams = Type.Object({ x: PhoneParam() });
const SetNumberStateBody = Type.Object({ state: PoolNumberState }, { additionalProperties: false });

const AxeSettingsSchema = Type.Object({
  extensionLength: Type.Integer({ minimum: 3, maximum: 6, description: 'digits of every AXE extension of the tenant; changes only while it has no active AXE binding' }),
});
const AxeSettingsBody = Type.Object({ extensionLength: Type.Integer() }, { additionalProperties: false });

const IdParams = Type.Object({ id: ResourceId('binding id') });
const NumberParams = Type.Object({ number: PhoneParam() });
const BlacklistBody = Type.Object({ number: Number32 }, { additionalProperties: false });
const errors = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 429: ErrorSchema, 503: ErrorSchema };
const security = [{ bearer: [] }];

export function registerBindingRoutes(v1: FastifyInstance, deps: BindingRouteDeps): void {
  const { registry } = deps;

  v1.post<{ Body: CreateBindingBody }>(
    '/bindings',
    {
      schema: {
        summary: 'Bind A and B (AXB), B alone (XB), or B (and optionally A) with an extension (AXE) to a privacy number; X is allocated when not named',
        security,
        body: CreateBindingBody,
        response: { 200: BindingSchema, 201: BindingSchema, ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (body.mode === 'axb' && body.a === undefined) throw new ValidationError('a', 'a is required for an AXB binding', 'missing_field');
      if (body.mode === 'xb' && body.a !== undefined) throw new ValidationError('a', 'an XB binding has no A', 'unknown_field');
      if (body.mode !== 'xb' && body.allowList !== undefined) throw new ValidationError('allowList', 'an allow-list is for XB bindings only', 'unknown_field');
      if (body.mode !== 'axe' && body.extension !== undefined) throw new ValidationError('extension', 'an extension is for AXE bindings only', 'unknown_field');
      const { binding, created } = await registry.bind({ ...body, tenantId: tenantOf(request).tenantId });
      request.auditCreatedId = binding.id;
      return reply.status(created ? 201 : 200).header('location', `/v1/bindings/${binding.id}`).send(binding);
    },
  );

  v1.get<{ Querystring: Static<typeof ListBindingsQuery> }>(
    '/bindings',
    {
      schema: {
        summary: 'Bindings by number (as A or B), X, state or userData, newest first; page with nextCursor',
        security,
        querystring: ListBindingsQuery,
        response: { 200: Type.Object({ items: Type.Array(BindingSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...errors },
      },
    },
    async (request) => {
      const q = request.query;
      return registry.listPage(tenantOf(request).tenantId, { ...q, limit: pageLimit(q.limit) });
    },
  );

  v1.get<{ Params: Static<typeof IdParams> }>(
    '/bindings/:id',
    { schema: { summary: 'A binding, active or ended', security, params: IdParams, response: { 200: BindingSchema, ...errors } } },
    async (request) => {
      const binding = await registry.get(tenantOf(request).tenantId, request.params.id);
      if (!binding) throw new NotFoundError('binding');
      return binding;
    },
  );

  v1.patch<{ Params: Static<typeof IdParams>; Body: UpdateBindingBody }>(
    '/bindings/:id',
    {
      schema: {
        summary: 'Change A or B, the expiry, restriction, recording, max duration or announcement; the id and history stay',
        security,
        params: IdParams,
        body: UpdateBindingBody,
        response: { 200: BindingSchema, ...errors },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      return registry.update(tenant.tenantId, request.params.id, request.body, tenant.actor, Date.now(), request.id);
    },
  );

  v1.delete<{ Params: Static<typeof IdParams> }>(
    '/bindings/:id',
    { schema: { summary: 'Unbind now; the binding is kept as history', security, params: IdParams, response: { 200: BindingSchema, ...errors } } },
    async (request) => registry.unbind(tenantOf(request).tenantId, request.params.id),
  );

  v1.get<{ Params: Static<typeof IdParams> }>(
    '/bindings/:id/history',
    {
      schema: {
        summary: 'Every change of a binding, oldest first, numbers masked',
        security,
        params: IdParams,
        response: { 200: Type.Object({ items: Type.Array(HistoryItem) }), ...errors },
      },
    },
    async (request) => {
      const tenantId = tenantOf(request).tenantId;
      if (!(await registry.get(tenantId, request.params.id))) throw new NotFoundError('binding');
      return { items: await registry.history(tenantId, request.params.id) };
    },
  );

  v1.get(
    '/axe/settings',
    { schema: { summary: 'The tenant’s AXE extension length', security, response: { 200: AxeSettingsSchema, ...errors } } },
    async (request) => ({ extensionLength: await registry.axe.extensionLength(tenantOf(request).tenantId) }),
  );

  v1.patch<{ Body: Static<typeof AxeSettingsBody> }>(
    '/axe/settings',
    {
      schema: {
        summary: 'Set the tenant’s AXE extension length (3-6 digits); 409 axe_bindings_active while it has an active AXE binding',
        security,
        body: AxeSettingsBody,
        response: { 200: AxeSettingsSchema, ...errors },
      },
    },
    async (request) => ({ extensionLength: await registry.axe.setExtensionLength(tenantOf(request).tenantId, request.body.extensionLength) }),
  );

  v1.post<{ Body: Static<typeof BlacklistBody> }>(
    '/blacklist',
    { schema: { summary: 'Never bind this number for this tenant', security, body: BlacklistBody, response: { 400: ErrorSchema, 401: ErrorSchema } } },
    async (request, reply) => {
      await registry.blacklistAdd(tenantOf(request).tenantId, request.body.number);
      return reply.status(204).send();
    },
  );

  v1.delete<{ Params: Static<typeof NumberParams> }>(
    '/blacklist/:number',
    { schema: { summary: 'Take a number off the tenant’s blacklist', security, params: NumberParams, response: { 400: ErrorSchema, 401: ErrorSchema } } },
    async (request, reply) => {
      await registry.blacklistRemove(tenantOf(request).tenantId, request.params.number);
      return reply.status(204).send();
    },
  );

  // Pools belong to the operator (SPEC §7): numbers are assigned with `numguard pool import`, never claimed by a tenant.
  v1.post(
    '/pool/numbers',
    { schema: { hide: true } },
    async () => {
      throw new ForbiddenError('operator_only', 'numbers are assigned to tenants by the operator (numguard pool import); ask your operator');
    },
  );

  v1.get<{ Querystring: Static<typeof ListNumbersQuery> }>(
    '/pool/numbers',
    {
      schema: {
        summary: 'The tenant’s pool numbers with their state and active bindings; page with nextCursor',
        security,
        querystring: ListNumbersQuery,
        response: { 200: Type.Object({ items: Type.Array(PoolNumberSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...errors },
      },
    },
    async (request) => {
      const q = request.query;
      return registry.listNumbers(tenantOf(request).tenantId, { ...q, limit: pageLimit(q.limit) });
    },
  );

  v1.patch<{ Params: Static<typeof XParams>; Body: Static<typeof SetNumberStateBody> }>(
    '/pool/numbers/:x',
    {
      schema: {
        summary: 'Enable, disable or quarantine a pool number; on a disabled number bindings keep routing until they end, a quarantined one routes nothing',
        security,
        params: XParams,
        body: SetNumberStateBody,
        response: { 200: PoolNumberSchema, ...errors },
      },
    },
    async (request) => registry.setNumberState(tenantOf(request).tenantId, request.params.x, request.body.state),
  );

  v1.get(
    '/pool/stats',
    { schema: { summary: 'Pool usage per area', security, response: { 200: PoolStatsSchema, ...errors } } },
    async (request) => {
      const areas = await registry.poolStats(tenantOf(request).tenantId);
      return {
        areas: areas.map((a) => ({ ...a, avgBindingsPerX: a.inUse === 0 ? 0 : Math.round((a.activeBindings / a.inUse) * 100) / 100 })),
      };
    },
  );
}
