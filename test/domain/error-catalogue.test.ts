import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { AppError, ERROR_CATALOGUE, type ErrorCode } from '../../src/domain/errors';
import { toHttpError } from '../../src/http/errors';

/** Errors are a typed catalogue, mapped to HTTP in one place, Retry-After included. */
describe('the error catalogue', () => {
  it('maps each kind to one HTTP status, and a refusal that knows when to come back to Retry-After', () => {
    const statusOf = (code: ErrorCode) => toHttpError(new AppError(code, 'x')).status;
    expect(statusOf('invalid_field')).toBe(400);
    expect(statusOf('unauthorized')).toBe(401);
    expect(statusOf('passthrough_forbidden')).toBe(403);
    expect(statusOf('not_found')).toBe(404);
    expect(statusOf('x_not_in_pool')).toBe(409);
    expect(statusOf('caller_rate_limited')).toBe(429);
    expect(statusOf('switch_at_capacity')).toBe(503);
    const limited = toHttpError(new AppError('caller_rate_limited', 'x', 'a', 7));
    expect(limited).toMatchObject({ status: 429, retryAfterSeconds: 7, body: { error: { code: 'caller_rate_limited', field: 'a' } } });
    expect(toHttpError(new AppError('x_not_in_pool', 'x')).retryAfterSeconds).toBeUndefined();
  });

  it('says which codes are worth retrying: limits and capacity, not bad input', () => {
    expect(ERROR_CATALOGUE.caller_rate_limited.retryable).toBe(true);
    expect(ERROR_CATALOGUE.allocation_contended.retryable).toBe(true);
    expect(ERROR_CATALOGUE.invalid_phone_number.retryable).toBe(false);
  });

  it('is where every code thrown in src/ comes from: no status numbers next to a code', () => {
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (p.endsWith('.ts')) files.push(p);
      }
    };
    walk(path.resolve(__dirname, '../../src'));
    const offending = files.filter((f) => /new \w*Error\('[a-z_]+', [^\n]*, [45]\d\d(?:, '[A-Za-z]+')?\);/.test(readFileSync(f, 'utf8')));
    expect(offending).toEqual([]);
  });
});
