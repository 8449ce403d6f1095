import type { FastifyError } from 'fastify';
import { AppError, RetryLaterError, type ErrorKind } from '../domain/errors';
import { isRedisUnavailable } from '../stores/redis';

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly field?: string };
}

interface AjvIssue {
  readonly keyword: string;
  readonly instancePath: string;
  readonly params: Record<string, unknown>;
  readonly message?: string;
}

/**
 * Every error a request can meet, mapped to HTTP in this one place: route code only throws, and
 * Fastify's own refusals (router, URL decoding, content type, body parsing, the HTTP parser's
 * client errors) come here too, so every 4xx/5xx is `{ error: { code, message, field? } }`.
 * Messages never echo request values (they may be phone numbers).
 */
/** The HTTP status of each kind of failure the domain names. */
const STATUS_OF: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_many: 429,
  unavailable: 503,
};

export interface HttpError {
  readonly status: number;
  readonly body: ErrorBody;
  /** Retry-After, when the refusal says when to try again. */
  readonly retryAfterSeconds?: number;
  readonly unexpected: boolean;
}

export function toHttpError(err: unknown): HttpError {
  if (err instanceof AppError) {
    return {
      status: STATUS_OF[err.kind],
      body: { error: { code: err.code, message: err.message, field: err.field } },
      ...(err.retryAfterSeconds !== undefined ? { retryAfterSeconds: err.retryAfterSeconds } : {}),
      unexpected: false,
    };
  }
  // Redis did not answer within its bound (request connections fail instead of waiting): nothing was done, try again.
  if (isRedisUnavailable(err)) return toHttpError(new RetryLaterError('store_unavailable', 'a data store did not answer in time', 1));
  const fe = err as Partial<FastifyError> & { validation?: AjvIssue[]; validationContext?: string };
  const firstIssue = Array.isArray(fe.validation) ? fe.validation[0] : undefined;
  if (firstIssue) return { status: 400, body: { error: fromValidation(firstIssue, fe.validationContext) }, unexpected: false };
  // The router and the HTTP parser.
  if (fe.code === 'FST_ERR_MAX_PARAM_LENGTH') return simple(414, 'uri_too_long', 'a path segment is too long');
  if (fe.code === 'FST_ERR_BAD_URL') return simple(400, 'invalid_url', 'the URL is not validly percent-encoded');
  if (fe.code === 'HPE_HEADER_OVERFLOW') return simple(431, 'headers_too_large', 'the request line or headers are too large');
  if (fe.code === 'ERR_HTTP_REQUEST_TIMEOUT') return simple(408, 'request_timeout', 'the request took too long to arrive');
  if (typeof fe.code === 'string' && fe.code.startsWith('HPE_')) return simple(400, 'bad_request', 'the request is not valid HTTP');
  // decodeURIComponent on a malformed escape (a cookie, a parameter).
  if (err instanceof URIError) return simple(400, 'invalid_encoding', 'the request is not validly percent-encoded');
  const status = fe.statusCode ?? 500;
  if (status === 415) return simple(415, 'unsupported_media_type', 'send application/json');
  if (status === 413) return simple(413, 'payload_too_large', 'request body is too large');
  if (status === 400 && (fe.code?.startsWith('FST_ERR_CTP') || err instanceof SyntaxError)) {
    return simple(400, 'invalid_json', 'request body is not valid JSON');
  }
  if (status === 404) return simple(404, 'not_found', 'no such resource');
  if (status === 405) return simple(405, 'method_not_allowed', 'the method is not allowed here');
  if (status >= 400 && status < 500) return simple(status, 'bad_request', 'the request could not be processed');
  if (status === 503) return simple(503, 'unavailable', 'the service is unavailable');
  return { status: 500, body: { error: { code: 'internal_error', message: 'internal error' } }, unexpected: true };
}

/** The answer to a request that matched no route (any method): the same shape as every other error. */
export function notFound(): { status: number; body: ErrorBody } {
  return simple(404, 'not_found', 'no such resource');
}

function simple(status: number, code: string, message: string): HttpError {
  return { status, body: { error: { code, message } }, unexpected: false };
}

function fromValidation(issue: AjvIssue, context: string | undefined): ErrorBody['error'] {
  const path = issue.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (issue.keyword === 'required') {
    const field = joinPath(path, String(issue.params.missingProperty));
    return { code: 'missing_field', message: `${field} is required`, field };
  }
  if (issue.keyword === 'additionalProperties') {
    // The name of an unknown property is the client's text (it may be a phone number): named only when it is a plain identifier.
    const field = joinPath(path, String(issue.params.additionalProperty));
    if (!isPlainField(field)) return { code: 'unknown_field', message: `${context ?? 'body'} has a property that is not a known field` };
    return { code: 'unknown_field', message: `${field} is not a known field`, field };
  }
  const field = path || (context ?? 'body');
  if (!isPlainField(field)) return { code: 'invalid_field', message: `${context ?? 'body'} ${issue.message ?? 'is invalid'}` };
  return { code: 'invalid_field', message: `${field} ${issue.message ?? 'is invalid'}`, field };
}

/** A field path of schema property names and array indexes, e.g. `numbers.0.x`: nothing a client made up. */
function isPlainField(field: string): boolean {
  return field.length <= 128 && field.split('.').every((part) => /^(?:[A-Za-z][A-Za-z0-9_]{0,63}|\d{1,6})$/.test(part));
}

function joinPath(parent: string, child: string): string {
  return parent ? `${parent}.${child}` : child;
}
