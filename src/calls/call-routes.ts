import type { FastifyInstance } from 'fastify';
import type { CallResult, CdrRecord } from '../domain/call';
import { tenantCdrView } from '../domain/call-result';
import { timeWindow, pageLimit } from '../http/query';
import { ErrorSchema } from '../http/schemas';
import { tenantOf } from '../http/tenant-context';
import { CallIdParams, CallViewSchema, CdrPageSchema, CreateCallBody, ListCdrsQuery } from './call-schemas';
import type { CallView, ClickToDialService } from './types';

/** The CDRs a tenant may read (the CDR store). */
export interface CdrReader {
  list(
    tenantId: string,
    query: { from?: number; to?: number; result?: CallResult; userData?: string; limit?: number; cursor?: string },
  ): Promise<{ items: CdrRecord[]; nextCursor: string | null }>;
}

export interface CallRouteDeps {
  readonly calls: ClickToDialService;
  readonly cdrs: CdrReader;
}

const errorResponses = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 429: ErrorSchema, 503: ErrorSchema };
const security = [{ bearer: [] }];

/** Click-to-dial over HTTP: request, follow and cancel a call; read the CDRs. Registered in the authenticated /v1 scope. */
export function registerCallRoutes(v1: FastifyInstance, deps: CallRouteDeps): void {
  v1.post<{ Body: CreateCallBody }>(
    '/calls',
    {
      schema: {
        summary: 'Request a click-to-dial call: A is rung first, then B; both see X',
        security,
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
    { schema: { summary: 'A call: its state, legs and CDR', security, params: CallIdParams, response: { 200: CallViewSchema, ...errorResponses } } },
    async (request): Promise<CallView> => deps.calls.get(tenantOf(request), request.params.id),
  );

  v1.post<{ Params: CallIdParams }>(
    '/calls/:id/cancel',
    {
      schema: { summary: 'Cancel a queued, ringing or connected call', security, params: CallIdParams, response: { 200: CallViewSchema, ...errorResponses } },
    },
    async (request): Promise<CallView> => deps.calls.cancel(tenantOf(request), request.params.id),
  );

  v1.get<{ Querystring: ListCdrsQuery }>(
    '/cdrs',
    { schema: { summary: 'Call detail records, newest first', security, querystring: ListCdrsQuery, response: { 200: CdrPageSchema, ...errorResponses } } },
    async (request) => {
      const q = request.query;
      const page = await deps.cdrs.list(tenantOf(request).tenantId, {
        ...timeWindow(q),
        result: q.result,
        userData: q.userData,
        limit: pageLimit(q.limit),
        cursor: q.cursor,
      });
      return { ...page, items: page.items.map(tenantCdrView) };
    },
  );
}
