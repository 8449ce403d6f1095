import { EventEmitter } from 'node:events';
import type { RedisClient } from '../stores/redis';
import type { CallResult, CdrRecord } from '../domain/call';
import { isRefusal } from '../domain/call-result';
import { maskPhone } from '../domain/phone-number';
import type { MessageRecord } from '../domain/message';
import { deterministicUuid } from '../domain/ids';
import { redisKeys } from '../stores/keys';
import type { Publication } from '../stores/live-calls';

/**
 * What the platform tells the outside world about a call or a binding (SPEC §6): the feed of
 * webhooks and of the agent console. Flows only report; they never wait on a listener, so a
 * slow webhook endpoint or a gone browser can never delay a call.
 */
export type PlatformEventType =
  | 'call.calling'
  | 'call.ringing'
  | 'call.answered'
  | 'call.bridged'
  | 'call.completed'
  | 'call.refused'
  | 'recording.ready'
  | 'binding.expired'
  | 'sms.received'
  | 'sms.delivered'
  | 'sms.failed'
  | 'sms.refused'
  | 'abuse.flagged';

export const PLATFORM_EVENT_TYPES: readonly PlatformEventType[] = [
  'call.calling',
  'call.ringing',
  'call.answered',
  'call.bridged',
  'call.completed',
  'call.refused',
  'recording.ready',
  'binding.expired',
  'sms.received',
  'sms.delivered',
  'sms.failed',
  'sms.refused',
  'abuse.flagged',
];

export type Leg = 'a' | 'b';

/** abuse.flagged: what the anomaly watch saw (numbers masked) and what the tenant's disposal policy did. */
export interface AbuseFlagReport {
  readonly flagId: number;
  readonly kind: string;
  /** The real number flagged, masked; null for a flag about an X or the tenant's binding rate. */
  readonly number: string | null;
  readonly x: string | null;
  readonly evidence: Readonly<Record<string, number>>;
  readonly disposal: 'warn' | 'quarantine' | 'block';
  /** The action taken (lift it with POST /v1/abuse/actions/{id}/lift); null when only warned. */
  readonly actionId: number | null;
  /** When a block ends (epoch ms). */
  readonly until: number | null;
}

/** call.refused: a call to one of the tenant's X that was never routed, and why. */
export interface RefusalReport {
  readonly x: string;
  /** The caller's number, masked. */
  readonly caller: string;
  readonly result: CallResult;
}

export interface PlatformEvent {
  /** Stable for the same fact: a redelivered job reports the same id, so receivers can de-duplicate. */
  readonly id: string;
  readonly type: PlatformEventType;
  readonly tenantId: string;
  /** epoch ms */
  readonly at: number;
  readonly callId?: string;
  readonly leg?: Leg;
  readonly bindingId?: string;
  readonly cdr?: CdrRecord;
  readonly recordingRef?: string;
  /** sms.*: the message's record as GET /v1/messages shows it (parties masked). */
  readonly message?: MessageRecord;
  readonly flag?: AbuseFlagReport;
  readonly refusal?: RefusalReport;
}

export type PlatformEventInput = Omit<PlatformEvent, 'id'>;

/** What flows and stores are given: fire and forget. */
export type ReportEvent = (event: PlatformEventInput) => void;

/** An event and the PUBLISH ([channel, message]) that reports it to every instance. */
export interface PreparedReport {
  readonly event: PlatformEvent;
  readonly publication: Publication;
}

/** Both ways of reporting (PlatformEventBus): at once, or prepared for a write of the caller's to publish. */
export interface EventReporter {
  readonly report: ReportEvent;
  readonly prepare: (event: PlatformEventInput) => PreparedReport | undefined;
  readonly reportLocally: (event: PlatformEvent) => void;
}

export function eventId(e: PlatformEventInput): string {
  const parts = ['platform-event', e.type, e.tenantId, e.callId ?? e.message?.id ?? '', e.leg ?? '', e.bindingId ?? ''];
  return deterministicUuid(...(e.flag ? [...parts, `flag:${e.flag.flagId}`] : parts));
}

export function withId(e: PlatformEventInput): PlatformEvent {
  return { id: eventId(e), ...e };
}

/**
 * The events a finished call reports: completed (carrying the CDR), then the recording when there is
 * one; a refused call reports only call.refused (its caller masked, no CDR: the caller is anyone who dialled X).
 */
export function completionEvents(cdr: CdrRecord): PlatformEventInput[] {
  const binding = cdr.bindingId ? { bindingId: cdr.bindingId } : {};
  if (isRefusal(cdr.result)) {
    const refusal: RefusalReport = { x: cdr.x, caller: cdr.a ? maskPhone(cdr.a) : '', result: cdr.result };
    return [{ type: 'call.refused', tenantId: cdr.tenantId, callId: cdr.callId, at: cdr.endedAt, refusal, ...binding }];
  }
  const events: PlatformEventInput[] = [{ type: 'call.completed', tenantId: cdr.tenantId, callId: cdr.callId, at: cdr.endedAt, cdr, ...binding }];
  if (cdr.recordingRef) {
    events.push({ type: 'recording.ready', tenantId: cdr.tenantId, callId: cdr.callId, at: cdr.endedAt, recordingRef: cdr.recordingRef });
  }
  return events;
}

/**
 * The progress events (ringing, answered, bridged) a finished call's CDR says happened, as the flows
 * report them live: same type, leg and binding, so the same event id. Queued again from the durable
 * CDR job, they reach the tenant even when the controller that saw them died before queueing them
 * (one delivery per id: the webhook job id is the event id).
 */
export function progressEvents(cdr: CdrRecord): PlatformEventInput[] {
  const base = { tenantId: cdr.tenantId, callId: cdr.callId, ...(cdr.bindingId ? { bindingId: cdr.bindingId } : {}) };
  const events: PlatformEventInput[] = [];
  if (cdr.kind === 'click_to_dial') {
    if (cdr.aRingAt !== null) events.push({ type: 'call.ringing', leg: 'a', at: cdr.aRingAt, ...base });
    if (cdr.aAnswerAt !== null) events.push({ type: 'call.answered', leg: 'a', at: cdr.aAnswerAt, ...base });
    if (cdr.bRingAt !== null) events.push({ type: 'call.ringing', leg: 'b', at: cdr.bRingAt, ...base });
  }
  if (cdr.bAnswerAt !== null) events.push({ type: 'call.answered', leg: 'b', at: cdr.bAnswerAt, ...base });
  if (cdr.result === 'connected' && cdr.bAnswerAt !== null) events.push({ type: 'call.bridged', at: cdr.bAnswerAt, ...base });
  return events;
}

type Listener = (event: PlatformEvent) => void | Promise<void>;

/**
 * In-process listeners (the webhook producer) plus a Redis pub/sub channel per tenant, so an
 * agent console attached to any controller instance sees calls driven by any other.
 */
export class PlatformEventBus implements EventReporter {
  private readonly local = new EventEmitter();

  constructor(
    private readonly publisher: RedisClient,
    private readonly prefix: string,
    private readonly onError: (err: unknown, event: PlatformEvent) => void,
  ) {
    this.local.setMaxListeners(0);
  }

  channel(tenantId: string): string {
    return redisKeys(this.prefix).tenantEvents(tenantId);
  }

  readonly report: ReportEvent = (input) => {
    const prepared = this.prepare(input);
    if (!prepared) return;
    this.reportLocally(prepared.event);
    this.publisher.publish(...prepared.publication).catch((err: unknown) => this.onError(err, prepared.event));
  };

  /**
   * An event with the PUBLISH that reports it to every other instance, for a Redis write of the caller's to
   * carry (one round trip for both; see LiveCallStore.update); the caller then gives it to reportLocally.
   * undefined: nothing to report (an event without a tenant).
   */
  readonly prepare = (input: PlatformEventInput): PreparedReport | undefined => {
    if (!input.tenantId) return undefined;
    const event = withId(input);
    return { event, publication: [this.channel(event.tenantId), JSON.stringify(event)] };
  };

  /** Reports to this instance's listeners (the rest of report, for an event whose publication a write carried). */
  readonly reportLocally = (event: PlatformEvent): void => {
    this.local.emit('event', event);
  };

  /** Listeners run on this instance only, for events reported on this instance. */
  onLocal(listener: Listener): () => void {
    const wrapped = (event: PlatformEvent): void => {
      try {
        const r = listener(event);
        if (r && typeof r.then === 'function') r.then(undefined, (err: unknown) => this.onError(err, event));
      } catch (err) {
        this.onError(err, event);
      }
    };
    this.local.on('event', wrapped);
    return () => this.local.off('event', wrapped);
  }

  /**
   * Every event of one tenant, whichever instance reported it. `subscriber` must be a Redis
   * connection of its own (a subscribed connection can do nothing else).
   */
  async subscribe(subscriber: RedisClient, tenantId: string, listener: (event: PlatformEvent) => void): Promise<() => Promise<void>> {
    const channel = this.channel(tenantId);
    const onMessage = (ch: string, message: string): void => {
      if (ch !== channel) return;
      try {
        listener(JSON.parse(message) as PlatformEvent);
      } catch {
        // a malformed message on our channel is dropped; nothing else publishes there
      }
    };
    subscriber.on('message', onMessage);
    await subscriber.subscribe(channel);
    return async () => {
      subscriber.off('message', onMessage);
      await subscriber.unsubscribe(channel).catch(() => undefined);
    };
  }
}
