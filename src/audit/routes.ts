import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ValidationError } from '../domain/errors';
import type { AuditStore } from '../stores/audit-store';
import { ErrorSchema } from '../http/schemas';
import { tenantOf } from '../http/tenant-context';
import { pageLimit } from '../http/query';

const AuditQuery = Type.Object(
  {
    action: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    actor: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    since: Type.Optional(Type.String({ maxLength: 40, description: 'ISO time or epoch ms' })),
    until: Type.Optional(Type.String({ maxLength: 40, description: 'ISO time or epoch ms' })),
    limit: Type.Optional(Type.String({ pattern: '^\\d{1,3}$' })),
    cursor: Type.Optional(Type.String({ pattern: '^\\d{1,20}$' })),
  },
  { additionalProperties: false },
);

const AuditEntrySchema = Type.Object({
  id: Type.Integer(),
  actor: Type.String({ description: 'key:<api key id>, agent:<agent token id> or cli:<os user>' }),
  action: Type.String({ description: 'e.g. binding.create, binding.update, blacklist.add, call.cancel' }),
  target: Type.Union([Type.String(), Type.Null()]),
  requestId: Type.Union([Type.String(), Type.Null()], { description: 'the x-request-id of the change' }),
  details: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: 'numbers masked, secrets dropped' }),
  at: Type.Integer({ description: 'epoch ms' }),
});

function timeOf(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new ValidationError(field, `${field} must be an ISO time or epoch milliseconds`);
  return ms;
}

/** GET /v1/audit: the tenant's own audit log, newest first. */
export function registerAuditRoutes(v1: FastifyInstance, audit: Pick<AuditStore, 'page'>): void {
  v1.get<{ Querystring: Static<typeof AuditQuery> }>(
    '/audit',
    {
      schema: {
        summary: 'Every change made through the API or the CLI for this tenant, newest first; page with nextCursor',
        security: [{ bearer: [] }],
        querystring: AuditQuery,
        response: {
          200: Type.Object({ items: Type.Array(AuditEntrySchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
          400: ErrorSchema,
          401: ErrorSchema,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await audit.page(tenantOf(request).tenantId, {
        action: q.action,
        actor: q.actor,
        since: timeOf(q.since, 'since'),
        until: timeOf(q.until, 'until'),
        limit: pageLimit(q.limit),
        cursor: q.cursor,
      });
      return {
        items: page.items.map((e) => ({ id: e.id, actor: e.actor, action: e.action, target: e.target, requestId: e.requestId, details: e.details, at: e.createdAt })),
        nextCursor: page.nextCursor,
      };
    },
  );
}
