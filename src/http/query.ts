import { ValidationError } from '../domain/errors';

/** A query's time bound: an ISO time or epoch milliseconds; anything else is 400 naming the field. */
export function parseTime(value: string, field: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new ValidationError(field, `${field} must be an ISO time or epoch milliseconds`);
  return ms;
}

/** The `from`/`to` window of a list query (CDRs, messages), as epoch milliseconds. */
export function timeWindow(q: { readonly from?: string; readonly to?: string }): { from: number | undefined; to: number | undefined } {
  return {
    from: q.from === undefined ? undefined : parseTime(q.from, 'from'),
    to: q.to === undefined ? undefined : parseTime(q.to, 'to'),
  };
}

/** A list query's `limit` as the route schema let it through (digits), or undefined for the store's default. */
export function pageLimit(limit: string | undefined): number | undefined {
  return limit === undefined ? undefined : Number(limit);
}
