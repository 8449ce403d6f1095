/**
 * Every failure a user can cause is an AppError: a stable machine-readable code,
 * the HTTP status it maps to, and (for bad input) the offending field.
 * The HTTP layer maps these in one place; everything else only throws.
 */
export class AppError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number = 400,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export class ValidationError extends AppError {
  constructor(field: string, message: string, code = 'invalid_field') {
    super(code, message, 400, field);
    this.name = 'ValidationError';
  }
}

export class NotFoundError extends AppError {
  constructor(what: string) {
    super('not_found', `${what} not found`, 404);
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends AppError {
  constructor(code: string, message: string, field?: string) {
    super(code, message, 409, field);
    this.name = 'ConflictError';
  }
}

export class ForbiddenError extends AppError {
  constructor(code: string, message: string, field?: string) {
    super(code, message, 403, field);
    this.name = 'ForbiddenError';
  }
}

/** A refusal that says when to try again: the HTTP layer sends retryAfterSeconds as Retry-After. */
export class RetryLaterError extends AppError {
  constructor(
    code: string,
    message: string,
    status: number,
    readonly retryAfterSeconds: number,
    field?: string,
  ) {
    super(code, message, status, field);
    this.name = 'RetryLaterError';
  }
}
