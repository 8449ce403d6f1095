import { randomUUID } from 'node:crypto';
import type { CdrRecord } from '../domain/call';
import type { MessageRecord } from '../domain/message';
import { PLATFORM_EVENT_TYPES, type AbuseFlagReport, type Leg, type RefusalReport, type PlatformEvent, type PlatformEventType } from '../events/platform-events';

/** What an endpoint can subscribe to: every platform event type. `webhook.test` is sent on request only. */
export const WEBHOOK_EVENT_TYPES: readonly PlatformEventType[] = PLATFORM_EVENT_TYPES;
export type WebhookEventType = PlatformEventType | 'webhook.test';

export function isSubscribableEventType(value: string): value is PlatformEventType {
  return (WEBHOOK_EVENT_TYPES as readonly string[]).includes(value);
}

export interface WebhookEventData {
  readonly callId?: string;
  readonly leg?: Leg;
  readonly bindingId?: string;
  /** call.completed: the CDR as GET /v1/cdrs shows it (the tenant's own numbers included). */
  readonly cdr?: CdrRecord;
  readonly recordingRef?: string;
  /** sms.*: the message's record as GET /v1/messages shows it (parties masked; the body only when the tenant keeps bodies). */
  readonly sms?: MessageRecord;
  /** abuse.flagged: the flag (numbers masked) and what the disposal policy did. */
  readonly flag?: AbuseFlagReport;
  /** call.refused: X, the caller (masked) and the result (unbound, expired, restricted, …). */
  readonly refusal?: RefusalReport;
  readonly message?: string;
}

/** The JSON body POSTed to the endpoint. */
export interface WebhookPayload {
  /** Stable for the same fact, also across retries: receivers de-duplicate on it. */
  readonly id: string;
  readonly type: WebhookEventType;
  /** ISO time of the fact (not of the delivery). */
  readonly createdAt: string;
  readonly tenantId: string;
  readonly data: WebhookEventData;
}

/** The fields of /v1/cdrs, copied one by one so nothing else a flow may attach leaves the platform. */
function cdrView(c: CdrRecord): CdrRecord {
  return {
    callId: c.callId,
    tenantId: c.tenantId,
    kind: c.kind,
    bindingId: c.bindingId,
    x: c.x,
    a: c.a,
    b: c.b,
    startedAt: c.startedAt,
    aRingAt: c.aRingAt,
    aAnswerAt: c.aAnswerAt,
    bRingAt: c.bRingAt,
    bAnswerAt: c.bAnswerAt,
    endedAt: c.endedAt,
    talkSeconds: c.talkSeconds,
    hangupCause: c.hangupCause,
    hangupSide: c.hangupSide,
    result: c.result,
    recordingRef: c.recordingRef,
    userData: c.userData,
  };
}

/** The fields of /v1/messages, copied one by one for the same reason. */
function messageView(m: MessageRecord): MessageRecord {
  return {
    id: m.id,
    tenantId: m.tenantId,
    bindingId: m.bindingId,
    x: m.x,
    direction: m.direction,
    senderMasked: m.senderMasked,
    recipientMasked: m.recipientMasked,
    transport: m.transport,
    parts: m.parts,
    length: m.length,
    status: m.status,
    refusal: m.refusal,
    failure: m.failure,
    receivedAt: m.receivedAt,
    forwardedAt: m.forwardedAt,
    deliveredAt: m.deliveredAt,
    failedAt: m.failedAt,
    body: m.body,
  };
}

export function toWebhookPayload(event: PlatformEvent): WebhookPayload {
  const data: WebhookEventData = {
    ...(event.callId !== undefined ? { callId: event.callId } : {}),
    ...(event.leg !== undefined ? { leg: event.leg } : {}),
    ...(event.bindingId !== undefined ? { bindingId: event.bindingId } : {}),
    ...(event.cdr !== undefined ? { cdr: cdrView(event.cdr) } : {}),
    ...(event.recordingRef !== undefined ? { recordingRef: event.recordingRef } : {}),
    ...(event.message !== undefined ? { sms: messageView(event.message) } : {}),
    ...(event.flag !== undefined ? { flag: event.flag } : {}),
    ...(event.refusal !== undefined ? { refusal: { x: event.refusal.x, caller: event.refusal.caller, result: event.refusal.result } } : {}),
  };
  return { id: event.id, type: event.type, createdAt: new Date(event.at).toISOString(), tenantId: event.tenantId, data };
}

export function testPayload(tenantId: string, now: number = Date.now()): WebhookPayload {
  return {
    id: randomUUID(),
    type: 'webhook.test',
    createdAt: new Date(now).toISOString(),
    tenantId,
    data: { message: 'a test event sent through POST /v1/webhook/test' },
  };
}
