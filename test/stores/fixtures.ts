import { randomUUID } from 'node:crypto';
import type { CdrRecord } from '../../src/domain/call';
import type { CallOutcome } from '../../src/stores/call-outcome';
import type { NewCall } from '../../src/stores/call-store';

export function makeCdr(tenantId: string, over: Partial<CdrRecord> = {}): CdrRecord {
  const startedAt = over.startedAt ?? Date.UTC(2026, 0, 1, 12, 0, 0, 123);
  return {
    callId: randomUUID(),
    tenantId,
    kind: 'click_to_dial',
    bindingId: null,
    x: '700123456789012',
    a: '13800138000',
    b: '13900139000',
    startedAt,
    aRingAt: startedAt + 1000,
    aAnswerAt: startedAt + 5000,
    bRingAt: startedAt + 6000,
    bAnswerAt: startedAt + 9000,
    endedAt: startedAt + 69_000,
    talkSeconds: 60,
    hangupCause: 'NORMAL_CLEARING',
    hangupSide: 'a',
    result: 'connected',
    recordingRef: null,
    userData: 'order-1',
    ...over,
  };
}

export function makeOutcome(tenantId: string, over: Partial<CdrRecord> = {}, withBinding = true): CallOutcome {
  const cdr = makeCdr(tenantId, over);
  return withBinding
    ? {
        cdr,
        callbackBinding: {
          id: randomUUID(),
          tenantId,
          x: cdr.x,
          a: cdr.a,
          b: cdr.b,
          expiresAt: cdr.endedAt + 86_400_000,
          callId: cdr.callId,
          userData: cdr.userData,
        },
      }
    : { cdr };
}

export function makeCall(tenantId: string, over: Partial<NewCall> = {}): NewCall {
  return {
    id: randomUUID(),
    tenantId,
    requestId: `req-${randomUUID()}`,
    kind: 'click_to_dial',
    displayMode: 'fixed',
    x: '700123456789012',
    a: '13800138000',
    b: '13900139000',
    ringTimeoutASeconds: 30,
    ringTimeoutBSeconds: 30,
    maxDurationSeconds: 1800,
    record: false,
    userData: null,
    ...over,
  };
}
