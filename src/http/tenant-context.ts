import type { FastifyRequest } from 'fastify';
import type { TenantContext } from '../domain/tenant-context';
import { AppError } from '../domain/errors';

/** The tenant an authenticated /v1 request acts for (set by the API-key hook in server.ts). */
export function tenantOf(request: FastifyRequest): TenantContext {
  if (!request.tenant) throw new AppError('unauthorized', 'not authenticated');
  return request.tenant;
}
