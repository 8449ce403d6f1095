import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { parseRealNumber } from '../domain/phone-number';
import { ErrorSchema } from '../http/schemas';
import { tenantOf } from '../http/tenant-context';
import type { AbuseGuard } from './abuse-guard';

const AbuseFlagSchema = Type.Object({
  id: Type.Integer(),
  kind: Type.String({ description: "'fanout': the number reached more distinct parties than allowed within the window" }),
  number: Type.String({ description: 'the real number, masked' }),
  distinctParties: Type.Integer(),
  windowSeconds: Type.Integer(),
  createdAt: Type.String({ description: 'ISO time' }),
});

const ListFlagsQuery = Type.Object(
  {
    number: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'only the flags of this real number' })),
    // Query strings are not coerced (strict ajv), so the limit arrives as digits.
    limit: Type.Optional(Type.String({ pattern: '^\\d{1,3}$' })),
  },
  { additionalProperties: false },
);

/**
 * Abuse control on the authenticated /v1 scope: call right after the authentication hook is
 * added. Adds the per-tenant request rate (429 tenant_rate_limited) and GET /v1/abuse/flags.
 */
export function registerAbuseRoutes(v1: FastifyInstance, guard: AbuseGuard): void {
  v1.addHook('onRequest', async (request) => {
    if (request.tenant) await guard.admitTenantRequest(request.tenant.tenantId);
  });
  v1.get<{ Querystring: Static<typeof ListFlagsQuery> }>(
    '/abuse/flags',
    {
      schema: {
        summary: 'Abuse flags of the tenant, newest first: numbers that reached many distinct parties in a short time (numbers masked)',
        security: [{ bearer: [] }],
        querystring: ListFlagsQuery,
        response: { 200: Type.Object({ items: Type.Array(AbuseFlagSchema) }), 400: ErrorSchema, 401: ErrorSchema, 429: ErrorSchema },
      },
    },
    async (request) => {
      const { tenantId } = tenantOf(request);
      const q = request.query;
      const flags = await guard.listFlags(tenantId, {
        number: q.number === undefined ? undefined : parseRealNumber(q.number, 'number'),
        limit: q.limit === undefined ? undefined : Number(q.limit),
      });
      return {
        items: flags.map((f) => ({
          id: f.id,
          kind: f.kind,
          number: f.numberMasked,
          distinctParties: f.distinctCount,
          windowSeconds: f.windowSeconds,
          createdAt: new Date(f.createdAt).toISOString(),
        })),
      };
    },
  );
}
