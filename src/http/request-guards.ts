import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { RetryLaterError } from '../domain/errors';
import { maskPhonesInText } from '../domain/phone-number';
import type { AuthFailureThrottle } from './auth-throttle';
import { toHttpError } from './errors';
import { within } from '../deadline';

/**
 * What every request meets before any route: its own request id, the error shape for the
 * refusals Fastify and Node make themselves, and the failed-authentication throttle.
 */

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The client's `x-request-id`, if it sent one: printable ASCII, at most 64 characters, numbers
     * masked. Kept beside the server's own id (request.id, always a UUID) for correlation: logged
     * with the request line and stored in the audit entry's details, never used as an id.
     */
    clientRequestId?: string;
  }
}

/** Fastify refuses a longer path parameter itself; the guards turn that into 414 uri_too_long. */
export const MAX_PARAM_LENGTH = 100;
export const MAX_CLIENT_REQUEST_ID = 64;

export function clientRequestIdOf(header: string | string[] | undefined): string | undefined {
  const raw = Array.isArray(header) ? header[0] : header;
  if (typeof raw !== 'string') return undefined;
  const printable = raw.replace(/[^\x20-\x7e]/g, '').trim().slice(0, MAX_CLIENT_REQUEST_ID);
  return printable === '' ? undefined : maskPhonesInText(printable);
}

function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const { status, body, retryAfterSeconds } = toHttpError(err);
  if (retryAfterSeconds !== undefined) void reply.header('retry-after', String(retryAfterSeconds));
  return reply.status(status).send(body);
}

/** Writes a mapped error straight to a socket the HTTP parser gave up on (no request object exists); also the metrics listener's. */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody left to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const { status, body } = toHttpError(err);
  const text = JSON.stringify(body);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy();
}

/**
 * Server options: the request id is always generated here (a client's `x-request-id` is never
 * trusted as an id), and the router's and the HTTP parser's own refusals (a malformed
 * percent-escape, an over-long path parameter, an unknown method, oversized headers) answer in
 * the documented error shape through toHttpError.
 */
export function guardedServerOptions(): Pick<FastifyServerOptions, 'requestIdHeader' | 'genReqId' | 'routerOptions' | 'frameworkErrors' | 'clientErrorHandler'> {
  return {
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Called before any hook runs (there is no route): the request id header is set here.
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      void sendError(reply.header('x-request-id', request.id), error);
    },
    clientErrorHandler,
  };
}

/** Where a credential is checked: the tenant API, the console API, the operator endpoints. */
function isAuthenticatedSurface(url: string): boolean {
  const path = url.split('?', 1)[0] ?? '';
  return path.startsWith('/v1/') || path === '/v1' || path.startsWith('/console/api/') || path === '/metrics' || path === '/admin/queues';
}

/** A 401 to a request that brought a credential is a failed authentication; one that brought none is not. */
function presentedCredentials(request: FastifyRequest): boolean {
  if (request.headers.authorization !== undefined) return true;
  if (/(?:^|;)\s*ng_agent=/.test(request.headers.cookie ?? '')) return true;
  return request.method === 'POST' && request.routeOptions.url === '/console/api/session';
}


export interface RequestGuardOptions {
  readonly throttle: AuthFailureThrottle;
  /** How long a throttle lookup may take before the request goes on unthrottled (default 1 s). */
  readonly throttleTimeoutMs?: number;
}

/** Registers the guards on the root instance, before any route or scope. */
export function registerRequestGuards(app: FastifyInstance, opts: RequestGuardOptions): void {
  const timeoutMs = opts.throttleTimeoutMs ?? 1000;
  app.addHook('onRequest', async (request, reply) => {
    request.clientRequestId = clientRequestIdOf(request.headers['x-request-id']);
    if (!isAuthenticatedSurface(request.url)) return;
    let blockedMs = 0;
    try {
      blockedMs = await within(opts.throttle.blockedFor(request.ip), timeoutMs, 'auth throttle');
    } catch (err) {
      request.log.warn({ err }, 'failed-authentication throttle unavailable; request let through');
    }
    if (blockedMs > 0) {
      return sendError(reply, new RetryLaterError('too_many_failed_auth', 'too many failed authentications from this address: try again later', Math.max(1, Math.ceil(blockedMs / 1000))));
    }
  });
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode === 401 && presentedCredentials(request)) {
      try {
        await within(opts.throttle.failed(request.ip), timeoutMs, 'auth throttle');
      } catch (err) {
        request.log.warn({ err }, 'failed authentication not counted');
      }
    }
    return payload;
  });
}
