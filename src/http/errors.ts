import type { FastifyError } from 'fastify';
import { AppError } from '../domain/errors';

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
 * Every error a request can meet, mapped to HTTP in this one place: route code only throws.
 * Messages never echo request values (they may be phone numbers).
 */
export function toHttpError(err: unknown): { status: number; body: ErrorBody; unexpected: boolean } {
  if (err instanceof AppError) {
    return { status: err.status, body: { error: { code: err.code, message: err.message, field: err.field } }, unexpected: false };
  }
  const fe = err as Partial<FastifyError> & { validation?: AjvIssue[]; validationContext?: string };
  if (Array.isArray(fe.validation) && fe.validation.length > 0) {
    return { status: 400, body: { error: fromValidation(fe.validation[0]!, fe.validationContext) }, unexpected: false };
  }
  const status = fe.statusCode ?? 500;
  if (status === 415) return simple(415, 'unsupported_media_type', 'send application/json');
  if (status === 413) return simple(413, 'payload_too_large', 'request body is too large');
  if (status === 400 && (fe.code?.startsWith('FST_ERR_CTP') || err instanceof SyntaxError)) {
    return simple(400, 'invalid_json', 'request body is not valid JSON');
  }
  if (status === 404) return simple(404, 'not_found', 'no such resource');
  if (status >= 400 && status < 500) return simple(status, 'bad_request', 'the request could not be processed');
  return { status: 500, body: { error: { code: 'internal_error', message: 'internal error' } }, unexpected: true };
}

function simple(status: number, code: string, message: string) {
  return { status, body: { error: { code, message } }, unexpected: false };
}

function fromValidation(issue: AjvIssue, context: string | undefined): ErrorBody['error'] {
  const path = issue.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (issue.keyword === 'required') {
    const field = joinPath(path, String(issue.params.missingProperty));
    return { code: 'missing_field', message: `${field} is required`, field };
  }
  if (issue.keyword === 'additionalProperties') {
    const field = joinPath(path, String(issue.params.additionalProperty));
    return { code: 'unknown_field', message: `${field} is not a known field`, field };
  }
  const field = path || (context ?? 'body');
  return { code: 'invalid_field', message: `${field} ${issue.message ?? 'is invalid'}`, field };
}

function joinPath(parent: string, child: string): string {
  return parent ? `${parent}.${child}` : child;
}
