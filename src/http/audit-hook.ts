import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { auditDetails } from '../domain/audit-details';
import { maskPhone } from '../domain/phone-number';
import type { AuditEntryInput } from '../stores/audit-store';

/**
 * The audit log of every change made through the API (SPEC §7): who (tenant and key, or agent),
 * what, when, and the request id the client saw in the `x-request-id` response header (the
 * server's own UUID; an `x-request-id` the client sent is kept in details.clientRequestId). Registered inside an
 * authenticated scope; a request that changed nothing (a refusal, a read, an idempotent replay)
 * writes nothing. Numbers are masked and secrets dropped before anything is stored. Writing the
 * entry never fails or delays the request: it happens after the response is sent.
 */
export interface AuditSink {
  append(entry: AuditEntryInput): Promise<unknown>;
}

const ACTIONS: Record<string, string> = {
  'POST /v1/calls': 'call.create',
  'POST /v1/calls/:id/cancel': 'call.cancel',
  'POST /v1/bindings': 'binding.create',
  'PATCH /v1/bindings/:id': 'binding.update',
  'DELETE /v1/bindings/:id': 'binding.unbind',
  'POST /v1/blacklist': 'blacklist.add',
  'DELETE /v1/blacklist/:number': 'blacklist.remove',
  'POST /v1/pool/numbers': 'pool.import',
  'PATCH /v1/pool/numbers/:x': 'pool.number_state',
  'PUT /v1/webhook': 'webhook.set',
  'DELETE /v1/webhook': 'webhook.delete',
  'POST /v1/webhook/test': 'webhook.test',
  'PATCH /v1/abuse/limits': 'abuse.limits',
  'PATCH /v1/axe/settings': 'axe.settings',
  'POST /v1/abuse/actions/:id/lift': 'abuse.lift',
  'POST /console/api/calls': 'call.create',
  'POST /console/api/calls/:id/again': 'call.create',
  'POST /console/api/calls/:id/hangup': 'call.cancel',
};

/** Creations answer 201/202; a 200 to the same request is an idempotent replay, not a change. */
const CREATIONS = new Set(['call.create', 'binding.create']);

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function actionOf(method: string, route: string): string {
  return ACTIONS[`${method} ${route}`] ?? `${method} ${route}`;
}

function targetOf(request: FastifyRequest, createdId: string | undefined): string | null {
  const params = (request.params ?? {}) as Record<string, string | undefined>;
  if (params.id) return params.id;
  if (params.x) return params.x;
  if (params.number) return maskPhone(params.number);
  if (createdId) return createdId;
  const body = request.body as { number?: unknown } | null | undefined;
  return typeof body?.number === 'string' ? maskPhone(body.number) : null;
}

declare module 'fastify' {
  interface FastifyRequest {
    auditCreatedId?: string;
  }
}

export function registerAuditHook(
  scope: FastifyInstance,
  sink: AuditSink,
  actorOf: (request: FastifyRequest) => { tenantId: string; actor: string } | null,
  onError: (err: unknown) => void,
): void {
  scope.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    // A route that names what it created (request.auditCreatedId) spares parsing its answer again.
    if (request.auditCreatedId !== undefined || !MUTATING.has(request.method) || reply.statusCode >= 300 || typeof payload !== 'string' || payload.length > 64_000) return payload;
    try {
      const id = (JSON.parse(payload) as { id?: unknown }).id;
      if (typeof id === 'string') request.auditCreatedId = id;
    } catch {
      // not JSON: no id to record
    }
    return payload;
  });
  scope.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    if (!MUTATING.has(request.method) || reply.statusCode < 200 || reply.statusCode >= 300) return;
    try {
      const who = actorOf(request);
      if (!who) return;
      const action = actionOf(request.method, request.routeOptions.url ?? request.url);
      if (CREATIONS.has(action) && reply.statusCode === 200) return;
      const body = request.body === undefined || request.body === null ? null : auditDetails(request.body);
      sink
        .append({
          tenantId: who.tenantId,
          actor: who.actor,
          action,
          target: targetOf(request, request.auditCreatedId),
          requestId: request.id,
          details: {
            status: reply.statusCode,
            ...(request.clientRequestId ? { clientRequestId: request.clientRequestId } : {}),
            ...(body !== null && typeof body === 'object' ? { body } : {}),
          },
        })
        .catch(onError);
    } catch (err) {
      onError(err);
    }
  });
}
