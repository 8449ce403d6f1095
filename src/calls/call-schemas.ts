import { Type, type Static } from '@sinclair/typebox';
import { CALL_RESULTS } from '../domain/call';
import { CursorParam, ResourceId } from '../http/schemas';

/** The click-to-dial API's request and response shapes: validation, types and OpenAPI from one source. */
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const NullableInt = () => Type.Union([Type.Integer(), Type.Null()]);
const IsoTime = () => Type.String({ format: 'date-time' });

export const CreateCallBody = Type.Object(
  {
    requestId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:-]+$', description: 'idempotency key' }),
    a: Type.String({ minLength: 1, maxLength: 32, description: 'called first' }),
    b: Type.String({ minLength: 1, maxLength: 32, description: 'called when A answers' }),
    displayMode: Type.Optional(Type.Union([Type.Literal('fixed'), Type.Literal('passthrough')])),
    x: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'privacy number; default: the tenant’s' })),
    ringTimeoutASeconds: Type.Optional(Type.Integer({ minimum: 5, maximum: 120 })),
    ringTimeoutBSeconds: Type.Optional(Type.Integer({ minimum: 5, maximum: 120 })),
    maxDurationSeconds: Type.Optional(Type.Integer({ minimum: 10, maximum: 86_400 })),
    endWarningSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 'a warning tone this long before the maximum duration ends the call; 0: none' })),
    record: Type.Optional(Type.Boolean()),
    userData: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);
export type CreateCallBody = Static<typeof CreateCallBody>;

export const CallIdParams = Type.Object({ id: ResourceId('call id') });
export type CallIdParams = Static<typeof CallIdParams>;

const TimeOrEpoch = Type.String({ pattern: '^(\\d{1,15}|\\d{4}-\\d{2}-\\d{2}T[0-9:.]+(Z|[+-]\\d{2}:\\d{2}))$' });

export const ListCdrsQuery = Type.Object(
  {
    from: Type.Optional(TimeOrEpoch),
    to: Type.Optional(TimeOrEpoch),
    result: Type.Optional(Type.Union(CALL_RESULTS.map((r) => Type.Literal(r)))),
    userData: Type.Optional(Type.String({ maxLength: 256 })),
    limit: Type.Optional(Type.String({ pattern: '^\\d{1,3}$' })),
    cursor: Type.Optional(CursorParam(200, 0)),
  },
  { additionalProperties: false },
);
export type ListCdrsQuery = Static<typeof ListCdrsQuery>;

export const CdrSchema = Type.Object({
  callId: Type.String(),
  tenantId: Type.String(),
  kind: Type.String(),
  bindingId: Nullable(Type.String()),
  x: Type.String(),
  a: Type.String(),
  b: Type.String(),
  startedAt: Type.Integer({ description: 'epoch ms' }),
  aRingAt: NullableInt(),
  aAnswerAt: NullableInt(),
  bRingAt: NullableInt(),
  bAnswerAt: NullableInt(),
  endedAt: Type.Integer(),
  talkSeconds: Type.Integer(),
  hangupCause: Nullable(Type.String()),
  hangupSide: Type.String(),
  result: Type.String(),
  recordingRef: Nullable(Type.String()),
  userData: Nullable(Type.String()),
});

const LegSchema = Type.Object({
  state: Type.String(),
  ringAt: Nullable(IsoTime()),
  answerAt: Nullable(IsoTime()),
  endAt: Nullable(IsoTime()),
});

export const CallViewSchema = Type.Object({
  id: Type.String(),
  requestId: Type.String(),
  kind: Type.String(),
  state: Type.String(),
  result: Nullable(Type.String()),
  displayMode: Type.String(),
  x: Type.String(),
  a: Type.String(),
  b: Type.String(),
  userData: Nullable(Type.String()),
  createdAt: IsoTime(),
  legs: Type.Object({ a: LegSchema, b: LegSchema }),
  hangupSide: Nullable(Type.String()),
  cdr: Type.Union([CdrSchema, Type.Null()]),
});

export const CdrPageSchema = Type.Object({
  items: Type.Array(CdrSchema),
  nextCursor: Nullable(Type.String()),
});
