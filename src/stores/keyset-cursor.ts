import { ValidationError } from '../domain/errors';

/**
 * The opaque cursor of a newest-first page ordered by (time, numeric id): the last row's time
 * (epoch ms) and id, so rows added meanwhile neither repeat nor shift a page.
 */
export function encodeTimeIdCursor(at: number, id: number): string {
  return Buffer.from(`${at}.${id}`, 'utf8').toString('base64url');
}

export function decodeTimeIdCursor(cursor: string): { at: number; id: number } {
  const m = /^(\d{1,15})\.(\d{1,20})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new ValidationError('cursor', 'cursor is not one this API returned', 'invalid_cursor');
  return { at: Number(m[1]), id: Number(m[2]) };
}

/** The same for rows keyed by a UUID: the last row's time (epoch ms) and id. */
export function encodeTimeUuidCursor(at: number, id: string): string {
  return Buffer.from(`${at}|${id}`, 'utf8').toString('base64url');
}

export function decodeTimeUuidCursor(cursor: string): { at: number; id: string } {
  const [, at, id] = /^(\d{1,15})\|([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8')) ?? [];
  if (at === undefined || id === undefined) throw new ValidationError('cursor', 'cursor is not one this API returned', 'invalid_cursor');
  return { at: Number(at), id };
}
