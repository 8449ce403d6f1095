import { Type, type IntegerOptions, type StringOptions } from '@sinclair/typebox';

/** Shapes every feature's routes share: the error body, and bounded ids, numbers and cursors in paths and queries. */

export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'machine-readable error code' }),
      message: Type.String(),
      field: Type.Optional(Type.String({ description: 'the offending request field' })),
    }),
  },
  { $id: 'Error' },
);

/**
 * Ids, numbers and cursors in paths and query strings: bounded, ASCII only. The columns they are
 * compared with are ASCII (a non-ASCII value is a MySQL collation error, not a miss), and
 * Fastify's router refuses a path segment over 100 characters on its own (414 uri_too_long).
 */
export const ResourceId = (description?: string) =>
  Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:~-]+$', ...(description ? { description } : {}) });
/** A phone number as a client may write it: digits, +, spaces, dashes, dots, parentheses. */
export const PhoneParam = () => Type.String({ minLength: 1, maxLength: 32, pattern: '^[0-9+() .-]+$' });
/** An opaque paging cursor this API returned (base64url). */
export const CursorParam = (maxLength = 200, minLength = 1) => Type.String({ minLength, maxLength, pattern: '^[A-Za-z0-9_=-]*$' });

/**
 * A value or null, written as a type list rather than `anyOf`: the compiled serializer checks a
 * type list inline, while for `anyOf` it runs (and here kept recompiling) an Ajv validator on
 * every response. The OpenAPI document shows both the same way (`nullable: true`).
 */
export const NullableString = (options: StringOptions = {}) => Type.Unsafe<string | null>({ ...options, type: ['string', 'null'] });
export const NullableInteger = (options: IntegerOptions = {}) => Type.Unsafe<number | null>({ ...options, type: ['integer', 'null'] });
