import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parsePrivacyNumber, parseRealNumber } from '../domain/phone-number';

/**
 * The click-to-dial job contract, version 1: what sits on the callback queue, whoever put it
 * there (the HTTP API, or a business backend with its own Redis connection). It is the API's
 * request body plus the tenant. The worker validates every job against it and then applies the
 * same tenant policy and defaults as the API. `schemas/click-to-dial-job.v1.json` is this schema.
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
    record: Type.Optional(Type.Boolean()),
    userData: Type.Optional(Type.String({ maxLength: 256, description: 'echoed in the CDR' })),
    attempt: Type.Optional(Type.Integer({ minimum: 1, maximum: 10, description: 'set by the worker when it retries; producers leave it out' })),
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
  const first = Value.Errors(ClickToDialJobSchema, data).First();
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
