/**
 * Every failure a user can cause is an AppError with a code from this catalogue: what kind of
 * failure it is, whether trying again later can succeed, and (for bad input) the offending field.
 * The domain says nothing about transports: the HTTP layer maps kinds to statuses, and
 * retryAfterSeconds to Retry-After, in one place (http/errors.ts); the CLI maps them to exit codes.
 */
export type ErrorKind = 'invalid' | 'unauthenticated' | 'forbidden' | 'not_found' | 'conflict' | 'too_many' | 'unavailable';

interface CatalogueEntry {
  readonly kind: ErrorKind;
  /** Trying the same request again later can succeed (rate limits, capacity, contention). */
  readonly retryable: boolean;
}

const invalid: CatalogueEntry = { kind: 'invalid', retryable: false };
const conflict: CatalogueEntry = { kind: 'conflict', retryable: false };
const forbidden: CatalogueEntry = { kind: 'forbidden', retryable: false };
const tooMany: CatalogueEntry = { kind: 'too_many', retryable: true };

export const ERROR_CATALOGUE = {
  // Bad input: the field says which.
  invalid_field: invalid,
  missing_field: invalid,
  unknown_field: invalid,
  too_long: invalid,
  invalid_phone_number: invalid,
  invalid_privacy_number: invalid,
  same_number: invalid,
  no_privacy_number: invalid,
  invalid_area: invalid,
  invalid_block: invalid,
  invalid_ttl: invalid,
  invalid_cursor: invalid,
  invalid_limit: invalid,
  invalid_media_id: invalid,
  invalid_media_kind: invalid,
  invalid_media_source: invalid,
  unknown_media: invalid,
  allow_list_too_long: invalid,
  invalid_extension: invalid,
  invalid_extension_length: invalid,
  invalid_url: invalid,
  unknown_event_type: invalid,
  secret_too_short: invalid,
  webhook_url_not_public: invalid,
  webhook_url_unresolvable: invalid,
  // Who is asking.
  unauthorized: { kind: 'unauthenticated', retryable: false },
  session_ended: { kind: 'unauthenticated', retryable: false },
  tenant_disabled: forbidden,
  operator_only: forbidden,
  passthrough_forbidden: forbidden,
  number_blacklisted: forbidden,
  // What exists.
  not_found: { kind: 'not_found', retryable: false },
  // The state of things.
  x_not_in_pool: conflict,
  x_unavailable: conflict,
  binding_conflict: conflict,
  binding_ended: conflict,
  binding_not_updatable: conflict,
  no_number_available: conflict,
  area_unavailable: conflict,
  no_extension_available: conflict,
  axe_bindings_active: conflict,
  call_already_ended: conflict,
  media_exists: conflict,
  media_in_use: conflict,
  number_held_by_other_tenant: conflict,
  pool_quota_exceeded: conflict,
  webhook_disabled: conflict,
  // Limits: come back later.
  caller_rate_limited: tooMany,
  number_binding_rate_limited: tooMany,
  pair_rate_limited: tooMany,
  tenant_rate_limited: tooMany,
  too_many_failed_auth: tooMany,
  gateway_rate_limited: tooMany,
  // The platform cannot serve it now.
  switch_at_capacity: { kind: 'unavailable', retryable: true },
  controller_overloaded: { kind: 'unavailable', retryable: true },
  allocation_contended: { kind: 'unavailable', retryable: true },
  store_unavailable: { kind: 'unavailable', retryable: true },
  /** The change is committed in MySQL but the route index (Redis) has not confirmed it yet; it will be applied when Redis is back. */
  route_index_unavailable: { kind: 'unavailable', retryable: true },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class AppError extends Error {
  readonly kind: ErrorKind;
  readonly retryable: boolean;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
    /** When to try again, where the refusal knows (rate limits, capacity). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'AppError';
    this.kind = ERROR_CATALOGUE[code].kind;
    this.retryable = ERROR_CATALOGUE[code].retryable;
  }
}

export class ValidationError extends AppError {
  constructor(field: string, message: string, code: ErrorCode = 'invalid_field') {
    super(code, message, field);
    this.name = 'ValidationError';
  }
}

export class NotFoundError extends AppError {
  constructor(what: string) {
    super('not_found', `${what} not found`);
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends AppError {
  constructor(code: ErrorCode, message: string, field?: string) {
    super(code, message, field);
    this.name = 'ConflictError';
  }
}

export class ForbiddenError extends AppError {
  constructor(code: ErrorCode, message: string, field?: string) {
    super(code, message, field);
    this.name = 'ForbiddenError';
  }
}

/** A refusal that says when to try again. */
export class RetryLaterError extends AppError {
  constructor(code: ErrorCode, message: string, retryAfterSeconds: number, field?: string) {
    super(code, message, field, retryAfterSeconds);
    this.name = 'RetryLaterError';
  }
}
