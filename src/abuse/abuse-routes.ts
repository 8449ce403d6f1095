import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { parsePrivacyNumber, parseRealNumber } from '../domain/phone-number';
import { ErrorSchema } from '../http/schemas';
import { tenantOf } from '../http/tenant-context';
import type { AbuseGuard } from './abuse-guard';
import type { AbuseAction } from './disposal';
import type { AbuseFlag } from './flag-store';
import type { NumberTraceReader } from './number-trace';
import { ANOMALY_KINDS, DISPOSALS, TENANT_SETTING_NAMES, validateSettingsChange } from './tenant-limits';
import { pageLimit } from '../http/query';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

const ActionSchema = Type.Object({
  id: Type.Integer(),
  flagId: Type.Integer(),
  action: Type.String({ description: "'quarantine': the X takes no new bindings and routes no call; 'block': the number is on the tenant's blacklist until `until`" }),
  x: Nullable(Type.String()),
  number: Nullable(Type.String({ description: 'the blocked number, masked' })),
  until: Nullable(Type.String({ description: 'ISO time a block ends' })),
  createdAt: Type.String(),
  liftedAt: Nullable(Type.String()),
  liftedBy: Nullable(Type.String()),
  active: Type.Boolean(),
});

const AbuseFlagSchema = Type.Object({
  id: Type.Integer(),
  kind: Type.String({ description: ANOMALY_KINDS.join(', ') }),
  number: Nullable(Type.String({ description: 'the real number, masked; null for a flag about an X or the binding rate' })),
  x: Nullable(Type.String()),
  distinctParties: Type.Integer({ description: 'the count that crossed the threshold (distinct parties, calls, short calls, bindings this minute)' }),
  windowSeconds: Type.Integer(),
  evidence: Type.Record(Type.String(), Type.Number()),
  action: Nullable(Type.Object({ id: Type.Integer(), action: Type.String(), until: Nullable(Type.String()), liftedAt: Nullable(Type.String()) })),
  createdAt: Type.String({ description: 'ISO time' }),
});

const ListFlagsQuery = Type.Object(
  {
    number: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'only the flags of this real number' })),
    x: Type.Optional(Type.String({ minLength: 1, maxLength: 20, description: 'only the flags naming this X' })),
    kind: Type.Optional(Type.Union(ANOMALY_KINDS.map((k) => Type.Literal(k)))),
    // Query strings are not coerced (strict ajv), so the limit arrives as digits.
    limit: Type.Optional(Type.String({ pattern: '^\\d{1,3}$' })),
    cursor: Type.Optional(Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })),
  },
  { additionalProperties: false },
);

const ListActionsQuery = Type.Object(
  {
    active: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
    limit: Type.Optional(Type.String({ pattern: '^\\d{1,3}$' })),
    cursor: Type.Optional(Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })),
  },
  { additionalProperties: false },
);

const ActionParams = Type.Object({ id: Type.String({ pattern: '^\\d{1,18}$' }) });

const settingProperties = Object.fromEntries(TENANT_SETTING_NAMES.map((n) => [n, Type.Optional(Nullable(Type.Integer()))]));
const DisposalSchema = Type.Object(
  Object.fromEntries(ANOMALY_KINDS.map((k) => [k, Type.Optional(Type.Union(DISPOSALS.map((d) => Type.Literal(d))))])),
  { additionalProperties: false },
);
const LimitsBody = Type.Object({ ...settingProperties, disposal: Type.Optional(Nullable(DisposalSchema)) }, { additionalProperties: false });
const LimitsView = Type.Object({
  effective: Type.Record(Type.String(), Type.Unknown(), { description: 'what applies now: the tenant\'s own settings over the platform\'s' }),
  own: Type.Record(Type.String(), Type.Unknown(), { description: 'the tenant\'s own settings (null: the platform\'s)' }),
  platform: Type.Record(Type.String(), Type.Unknown()),
});

const TraceParams = Type.Object({ x: Type.String({ minLength: 1, maxLength: 20 }) });
const TraceQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^\\d{1,3}$' })),
    cursor: Type.Optional(Type.String({ maxLength: 120, pattern: '^[A-Za-z0-9_-]+$' })),
  },
  { additionalProperties: false },
);
const TraceSchema = Type.Object({
  number: Type.Object({ x: Type.String(), area: Type.String(), state: Type.String(), importedAt: Type.String() }),
  items: Type.Array(
    Type.Object({
      at: Type.String({ description: 'ISO time' }),
      type: Type.String({ description: 'imported, state_changed, binding_created, binding_changed, binding_ended, call, flagged, quarantined, quarantine_lifted, audit' }),
      ref: Type.String({ description: 'the binding, call, flag, action or audit entry' }),
      actor: Nullable(Type.String()),
      details: Type.Record(Type.String(), Type.Unknown(), { description: 'numbers masked' }),
    }),
  ),
  nextCursor: Nullable(Type.String()),
});

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function flagView(f: AbuseFlag) {
  return {
    id: f.id,
    kind: f.kind,
    number: f.numberMasked,
    x: f.x,
    distinctParties: f.distinctCount,
    windowSeconds: f.windowSeconds,
    evidence: f.evidence,
    action: f.action ? { id: f.action.id, action: f.action.action, until: iso(f.action.until), liftedAt: iso(f.action.liftedAt) } : null,
    createdAt: new Date(f.createdAt).toISOString(),
  };
}

function actionView(a: AbuseAction, now: number = Date.now()) {
  return {
    id: a.id,
    flagId: a.flagId,
    action: a.action,
    x: a.x,
    number: a.numberMasked,
    until: iso(a.until),
    createdAt: new Date(a.createdAt).toISOString(),
    liftedAt: iso(a.liftedAt),
    liftedBy: a.liftedBy,
    active: a.liftedAt === null && (a.until === null || a.until > now),
  };
}

const errors = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 429: ErrorSchema };

/**
 * Abuse control on the authenticated /v1 scope: call right after the authentication hook is
 * added. Adds the per-tenant request rate (429 tenant_rate_limited), the tenant's flags and the
 * actions taken on them (and their lifting), its own limits, and one number's trace.
 */
export function registerAbuseRoutes(v1: FastifyInstance, guard: AbuseGuard, traces: Pick<NumberTraceReader, 'trace'>): void {
  v1.addHook('onRequest', async (request) => {
    if (request.tenant) await guard.admitTenantRequest(request.tenant.tenantId);
  });
  v1.get<{ Querystring: Static<typeof ListFlagsQuery> }>(
    '/abuse/flags',
    {
      schema: {
        summary: 'Abuse flags of the tenant, newest first, with their evidence and what the disposal policy did (numbers masked)',
        security: [{ bearer: [] }],
        querystring: ListFlagsQuery,
        response: { 200: Type.Object({ items: Type.Array(AbuseFlagSchema), nextCursor: Nullable(Type.String()) }), ...errors },
      },
    },
    async (request) => {
      const { tenantId } = tenantOf(request);
      const q = request.query;
      const page = await guard.pageFlags(tenantId, {
        number: q.number === undefined ? undefined : parseRealNumber(q.number, 'number'),
        x: q.x === undefined ? undefined : parsePrivacyNumber(q.x, 'x', true),
        kind: q.kind,
        limit: pageLimit(q.limit),
        cursor: q.cursor,
      });
      return { items: page.items.map(flagView), nextCursor: page.nextCursor };
    },
  );
  v1.get<{ Querystring: Static<typeof ListActionsQuery> }>(
    '/abuse/actions',
    {
      schema: {
        summary: 'Quarantines and blocks the disposal policy took, newest first; ?active=true for those in force',
        security: [{ bearer: [] }],
        querystring: ListActionsQuery,
        response: { 200: Type.Object({ items: Type.Array(ActionSchema), nextCursor: Nullable(Type.String()) }), ...errors },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await guard.disposal.page(tenantOf(request).tenantId, {
        active: q.active === 'true',
        limit: pageLimit(q.limit),
        cursor: q.cursor,
      });
      return { items: page.items.map((a) => actionView(a)), nextCursor: page.nextCursor };
    },
  );
  v1.post<{ Params: Static<typeof ActionParams> }>(
    '/abuse/actions/:id/lift',
    {
      schema: {
        summary: 'Lift a quarantine (the X is enabled again) or a block (the number leaves the blacklist); audited',
        security: [{ bearer: [] }],
        params: ActionParams,
        response: { 200: ActionSchema, ...errors },
      },
    },
    async (request) => {
      const { tenantId, actor } = tenantOf(request);
      return actionView(await guard.disposal.lift(tenantId, Number(request.params.id), actor));
    },
  );
  v1.get(
    '/abuse/limits',
    {
      schema: {
        summary: "The tenant's abuse limits, anomaly thresholds and disposal policy: effective, its own, and the platform's",
        security: [{ bearer: [] }],
        response: { 200: LimitsView, ...errors },
      },
    },
    async (request) => limitsView(guard, tenantOf(request).tenantId),
  );
  v1.patch<{ Body: Static<typeof LimitsBody> }>(
    '/abuse/limits',
    {
      schema: {
        summary: "Set the tenant's own limits (null: back to the platform's) and disposal policy; a tenant may only tighten a limit (403 operator_only); audited",
        security: [{ bearer: [] }],
        body: LimitsBody,
        response: { 200: LimitsView, ...errors },
      },
    },
    async (request) => {
      const { tenantId } = tenantOf(request);
      const change = validateSettingsChange(request.body, guard.limits.platform, true);
      // The disposal policy changes kind by kind: the kinds a request does not name keep theirs.
      const disposal = change.disposal ? { ...(await guard.limitSettings.get(tenantId))?.disposal, ...change.disposal } : change.disposal;
      await guard.limitSettings.update(tenantId, 'disposal' in change ? { ...change, disposal } : change);
      guard.limits.invalidate(tenantId);
      return limitsView(guard, tenantId);
    },
  );
  v1.get<{ Params: Static<typeof TraceParams>; Querystring: Static<typeof TraceQuery> }>(
    '/pool/numbers/:x/trace',
    {
      schema: {
        summary: 'The life of one of the tenant\'s numbers, newest first: imported, state changes, bindings (who asked), calls and refusals, flags, quarantines (numbers masked)',
        security: [{ bearer: [] }],
        params: TraceParams,
        querystring: TraceQuery,
        response: { 200: TraceSchema, ...errors },
      },
    },
    async (request) => {
      const trace = await traces.trace(tenantOf(request).tenantId, parsePrivacyNumber(request.params.x, 'x', true), {
        limit: pageLimit(request.query.limit),
        cursor: request.query.cursor,
      });
      return {
        number: { ...trace.number, importedAt: new Date(trace.number.importedAt).toISOString() },
        items: trace.items.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
        nextCursor: trace.nextCursor,
      };
    },
  );
}

async function limitsView(guard: AbuseGuard, tenantId: string) {
  const own = (await guard.limitSettings.get(tenantId)) ?? {};
  return {
    effective: { ...(await guard.limits.effective(tenantId)) },
    own: { ...Object.fromEntries(TENANT_SETTING_NAMES.map((n) => [n, own[n] ?? null])), disposal: own.disposal ?? null },
    platform: { ...guard.limits.platform },
  };
}
