import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parsePrivacyNumber, parseRealNumber } from '../domain/phone-number';

/**
 * The click-to-dial job contract, version 1: what sits on the callback queue, whoever put it
 * there (the HTTP API, or a business backend with its own Redis connection). It is the API's
 * request body plus the tenant. The worker validates every job against it and then applies the
 * same tenant policy and defaults as the API. `schemas/click-to-dial-job.v1.json` is this schema.
 *
 * Writing to Redis is not a credential: a job that would start a new call must be signed with one
 * of its tenant's API keys (`auth`), and the worker refuses one that is unsigned, signed with a
 * revoked key, or signed for another tenant. (Jobs the API queues are for calls it has already
 * recorded; the worker runs the recorded request, not the job's copy.)
 */
export const CLICK_TO_DIAL_JOB_NAME = 'click-to-dial';
export const CLICK_TO_DIAL_JOB_VERSION = 1;

const Seconds = (min: number, max: number, description: string) => Type.Integer({ minimum: min, maximum: max, description });

export const ClickToDialJobSchema = Type.Object(
  {
    v: Type.Literal(CLICK_TO_DIAL_JOB_VERSION, { description: 'contract version' }),
    tenantId: Type.String({ minLength: 1, maxLength: 36, description: 'tenant id (as printed by `numguard tenant create`)' }),
    requestId: Type.String({
      minLength: 1,
      maxLength: 64,
      pattern: '^[A-Za-z0-9._:-]+$',
      description: 'idempotency key: the same (tenant, requestId) is one call, however often it is queued',
    }),
    a: Type.String({ minLength: 1, maxLength: 32, description: 'called first: Chinese mobile, fixed line with area code, or +E.164' }),
    b: Type.String({ minLength: 1, maxLength: 32, description: 'called when A answers' }),
    displayMode: Type.Optional(
      Type.Union([Type.Literal('fixed'), Type.Literal('passthrough')], { description: "default: the tenant's" }),
    ),
    x: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: "privacy number; default: the tenant's" })),
    ringTimeoutASeconds: Type.Optional(Seconds(5, 120, 'ring timeout of A')),
    ringTimeoutBSeconds: Type.Optional(Seconds(5, 120, 'ring timeout of B')),
    maxDurationSeconds: Type.Optional(Seconds(10, 86_400, 'maximum call duration, enforced by the switch')),
    endWarningSeconds: Type.Optional(Seconds(0, 3600, 'a warning tone this long before the maximum duration ends the call; 0: none')),
    record: Type.Optional(Type.Boolean()),
    userData: Type.Optional(Type.String({ maxLength: 256, description: 'echoed in the CDR' })),
    attempt: Type.Optional(Type.Integer({ minimum: 1, maximum: 10, description: 'set by the worker when it retries; producers leave it out' })),
    auth: Type.Optional(
      Type.Object(
        {
          keyId: Type.String({ minLength: 36, maxLength: 36, pattern: '^[0-9a-f-]{36}$', description: 'id of one of the tenant’s API keys (as printed by `numguard key create`)' }),
          signature: Type.String({
            minLength: 64,
            maxLength: 64,
            pattern: '^[0-9a-f]{64}$',
            description: 'hex HMAC-SHA256 of the canonical job (every field but auth and attempt, keys sorted, JSON) keyed by the hex SHA-256 of the API key',
          }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  {
    additionalProperties: false,
    $id: 'click-to-dial-job.v1.json',
    title: 'numguard click-to-dial job, version 1',
  },
);

export type ClickToDialJobData = Static<typeof ClickToDialJobSchema>;

export class InvalidJobError extends Error {
  constructor(
    readonly code: string,
    readonly field: string,
    message: string,
  ) {
    super(`${code}: ${field}: ${message}`);
    this.name = 'InvalidJobError';
  }
}

/** Shape and number syntax, checkable without a database; throws InvalidJobError naming the field. */
export function validateClickToDialJob(data: unknown): ClickToDialJobData {
  // The errors are walked only for a job that fails the (cheaper) check: once per refused job, not per job.
  const first = Value.Check(ClickToDialJobSchema, data) ? undefined : Value.Errors(ClickToDialJobSchema, data).First();
  if (first) {
    const field = first.path.replace(/^\//, '').replace(/\//g, '.') || '(job)';
    const missing = first.value === undefined;
    throw new InvalidJobError(missing ? 'missing_field' : 'invalid_field', field, first.message);
  }
  const job = data as ClickToDialJobData;
  try {
    parseRealNumber(job.a, 'a');
    parseRealNumber(job.b, 'b');
    if (job.x !== undefined) parsePrivacyNumber(job.x, 'x', true);
  } catch (err) {
    const e = err as { field?: string; message: string };
    throw new InvalidJobError('invalid_phone_number', e.field ?? '(job)', e.message);
  }
  return job;
}

/** The bytes a job's signature covers: every field but `auth` and `attempt`, keys sorted, as JSON. */
export function canonicalJob(data: ClickToDialJobData): string {
  // An optional field may be present and undefined (signClickToDialJob's `auth: undefined`, a producer's spread options).
  const entries: Array<[string, unknown]> = Object.entries(data);
  const fields = entries
    .filter(([k, v]) => k !== 'auth' && k !== 'attempt' && v !== undefined)
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  return JSON.stringify(Object.fromEntries(fields));
}

/** hex HMAC-SHA256 of the canonical job, keyed by the hex SHA-256 of the API key (what the platform stores of it). */
export function jobSignature(data: ClickToDialJobData, apiKeyHash: string): string {
  return createHmac('sha256', apiKeyHash).update(canonicalJob(data)).digest('hex');
}

/** The job with `auth` filled in for this API key (its id and the key itself, which never leaves the producer). */
export function signClickToDialJob(data: ClickToDialJobData, key: { readonly keyId: string; readonly apiKey: string }): ClickToDialJobData {
  const unsigned = { ...data, auth: undefined };
  return { ...data, auth: { keyId: key.keyId, signature: jobSignature(unsigned, createHash('sha256').update(key.apiKey, 'utf8').digest('hex')) } };
}

/** Constant-time check of a job's signature against the stored hash of the key it names. */
export function hasValidSignature(data: ClickToDialJobData, apiKeyHash: string): boolean {
  if (!data.auth) return false;
  const expected = Buffer.from(jobSignature(data, apiKeyHash), 'hex');
  const given = Buffer.from(data.auth.signature, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
