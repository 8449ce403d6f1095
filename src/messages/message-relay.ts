import type { MessageRecord, MessageRefusal, MessageTransport } from '../domain/message';
import { tenantNumberHash, type NumberHasher } from '../domain/number-hash';
import { maskPhone } from '../domain/phone-number';
import { withId, type PlatformEvent, type PlatformEventType } from '../events/platform-events';
import type { Logger } from '../logger';
import { redisKeys } from '../stores/keys';
import type { RouteIndex } from '../stores/route-index';
import type { CountedKey, TakeResult } from '../abuse/redis-counters';
import { CarrierError, type DeliveryReport, type InboundMessage, type MessageCarrier } from './carrier';
import type { MessageStore } from './message-store';
import { relayDecision } from './relay-rules';
import { characterCount } from './text-segments';

/** A message as queued for relaying: the inbound message and its dedup key. */
export interface RelayJob extends InboundMessage {
  readonly dedupKey: string;
}

export interface MessageRelayDeps {
  readonly routes: Pick<RouteIndex, 'lookup'>;
  readonly store: MessageStore;
  readonly carriers: Partial<Record<MessageTransport, MessageCarrier>>;
  /** The carrier path of a tenant that chose none. */
  readonly defaultTransport: MessageTransport;
  /** Abuse control's blacklist, as the call paths read it. */
  readonly blacklist: { listed(tenantId: string, numbers: readonly string[], now: number): Promise<Set<string>> };
  /** Abuse control's sliding-window counters. */
  readonly counters: { takeSliding(keys: readonly CountedKey[], windowMs: number, now: number): Promise<TakeResult> };
  readonly prefix: string;
  readonly hash: NumberHasher;
  readonly limits: { readonly perSenderPerMinute: number; readonly perXPerMinute: number };
  /** Queues a webhook durably (the job id is the event id: queueing it again is a no-op). */
  readonly queueWebhook: (event: PlatformEvent) => Promise<void>;
  readonly logger: Logger;
}

/** What a try at relaying came to: `retry` asks the queue to try again later. */
export type RelayOutcome = 'forwarded' | 'refused' | 'failed' | 'already_done' | 'dropped' | 'retry';

const MINUTE_MS = 60_000;
const REPORT_LOOKUPS = 10;
const REPORT_LOOKUP_DELAY_MS = 300;

/**
 * Relaying one text to X (README "Text messages"): decided once by (X, sender) with the route
 * index, recorded once per dedup key, then handed to the tenant's carrier path from X. A
 * redelivered job finds the record and sends nothing again unless it was never handed over.
 * The body goes to the carrier and, when the tenant keeps bodies, to its record; never to a log.
 */
export class MessageRelay {
  private readonly log: Logger;

  constructor(private readonly deps: MessageRelayDeps) {
    this.log = deps.logger.child({ component: 'messages' });
  }

  /** One try; `lastTry` turns a retryable carrier failure into a failed message. */
  async relay(job: RelayJob, lastTry: boolean): Promise<RelayOutcome> {
    const record = (await this.deps.store.byDedup(job.dedupKey)) ?? (await this.decide(job));
    if (!record) return 'dropped';
    if (record.status === 'refused') return 'refused';
    if (record.status !== 'accepted') return 'already_done';
    // An earlier try may have recorded it and died before the webhook was queued.
    await this.emit('sms.received', record);
    return this.send(job, record, lastTry);
  }

  /**
   * A carrier's delivery report for a part sent. A report can overtake the recording of the id it names
   * (the carrier answers before the relay has written what it sent): an unknown id is looked up again for
   * a few seconds before the report is let go.
   */
  async deliveryReport(report: DeliveryReport): Promise<void> {
    let record = await this.deps.store.report(report.transport, report.carrierId, report.delivered, report.status, report.at);
    for (let i = 0; record === 'unknown' && i < REPORT_LOOKUPS; i++) {
      await new Promise((r) => setTimeout(r, REPORT_LOOKUP_DELAY_MS));
      record = await this.deps.store.report(report.transport, report.carrierId, report.delivered, report.status, report.at);
    }
    if (record === 'unknown') {
      this.log.warn({ transport: report.transport, carrierStatus: report.status }, 'delivery report for no message sent');
      return;
    }
    if (!record) return;
    this.log.info({ messageId: record.id, status: record.status, carrierStatus: report.status }, 'message delivery reported');
    await this.emit(record.status === 'delivered' ? 'sms.delivered' : 'sms.failed', record);
  }

  private async decide(job: RelayJob): Promise<MessageRecord | null> {
    const now = job.receivedAt;
    const looked = await this.deps.routes.lookup(job.x, job.sender, now);
    const bound = 'route' in looked ? looked.route : 'binding' in looked ? (looked.binding ?? null) : null;
    const tenantId = bound?.tenantId ?? (await this.deps.store.tenantOfX(job.x));
    const sender = maskPhone(job.sender);
    if (!tenantId) {
      this.log.info({ x: job.x, sender }, 'message to a number in no pool dropped');
      return null;
    }
    const refusal = 'route' in looked ? await this.admit(tenantId, job.sender, job.x, now) : null;
    const decision = relayDecision(looked, refusal);
    const settings = await this.deps.store.settings(tenantId);
    const forwarded = 'forward' in decision ? decision.forward : null;
    const keepBody = settings.storeBody;
    const { record, created } = await this.deps.store.insert({
      dedupKey: job.dedupKey,
      tenantId,
      bindingId: forwarded?.bindingId ?? ('binding' in decision ? (decision.binding?.bindingId ?? null) : null),
      x: job.x,
      direction: 'direction' in decision ? decision.direction : null,
      senderHash: tenantNumberHash(this.deps.hash, tenantId, job.sender),
      senderMasked: sender,
      recipientMasked: forwarded ? maskPhone(forwarded.target) : null,
      transport: forwarded ? (settings.transport ?? this.deps.defaultTransport) : job.transport,
      parts: job.parts,
      length: characterCount(job.text),
      status: forwarded ? 'accepted' : 'refused',
      refusal: 'refused' in decision ? decision.refused : null,
      receivedAt: job.receivedAt,
      body: keepBody ? job.text : null,
      bodyUntil: keepBody ? job.receivedAt + settings.bodyRetentionDays * 86_400_000 : null,
    });
    if (created && record.status === 'refused') {
      this.log.info({ messageId: record.id, x: job.x, sender, refusal: record.refusal }, 'message to X refused');
      await this.emit('sms.refused', record);
    }
    return record;
  }

  /** Abuse control for a routed sender: the blacklist, then the per-sender and per-X limits (one minute, sliding). */
  private async admit(tenantId: string, sender: string, x: string, now: number): Promise<Extract<MessageRefusal, 'blacklisted' | 'rate_limited'> | null> {
    if ((await this.deps.blacklist.listed(tenantId, [sender], Date.now())).size > 0) return 'blacklisted';
    const keys = redisKeys(this.deps.prefix);
    const counted: CountedKey[] = [];
    const { perSenderPerMinute, perXPerMinute } = this.deps.limits;
    if (perSenderPerMinute > 0) counted.push({ key: keys.messageRate('sender', tenantId, tenantNumberHash(this.deps.hash, tenantId, sender)), limit: perSenderPerMinute });
    if (perXPerMinute > 0) counted.push({ key: keys.messageRate('x', tenantId, x), limit: perXPerMinute });
    const taken = await this.deps.counters.takeSliding(counted, MINUTE_MS, now);
    return taken.admitted ? null : 'rate_limited';
  }

  private async send(job: RelayJob, record: MessageRecord, lastTry: boolean): Promise<RelayOutcome> {
    // The record holds the recipient masked only: the route is looked up again, as of the message's arrival.
    const looked = await this.deps.routes.lookup(job.x, job.sender, job.receivedAt);
    const decision = relayDecision(looked, null);
    if (!('forward' in decision) || decision.forward.bindingId !== record.bindingId) return this.fail(record, 'binding_ended');
    const carrier = this.deps.carriers[record.transport];
    if (!carrier) return this.fail(record, `no_${record.transport}_carrier`);
    try {
      const sent = await carrier.send({ messageId: record.id, from: job.x, to: decision.forward.target, text: job.text });
      await this.deps.store.markForwarded(record.id, carrier.transport, sent.carrierIds, Date.now());
      this.log.info({ messageId: record.id, transport: carrier.transport, parts: sent.carrierIds.length }, 'message forwarded');
      return 'forwarded';
    } catch (err) {
      const retryable = !(err instanceof CarrierError) || err.retryable;
      const code = err instanceof CarrierError ? err.code : 'carrier_error';
      if (retryable && !lastTry) {
        this.log.warn({ messageId: record.id, code }, 'message not handed to the carrier; will try again');
        return 'retry';
      }
      return this.fail(record, code);
    }
  }

  private async fail(record: MessageRecord, failure: string): Promise<RelayOutcome> {
    const failed = await this.deps.store.markFailed(record.id, failure, Date.now());
    this.log.warn({ messageId: record.id, failure }, 'message failed');
    if (failed) await this.emit('sms.failed', failed);
    return 'failed';
  }

  private async emit(type: Extract<PlatformEventType, `sms.${string}`>, record: MessageRecord): Promise<void> {
    await this.deps.queueWebhook(
      withId({ type, tenantId: record.tenantId, at: Date.now(), message: record, ...(record.bindingId ? { bindingId: record.bindingId } : {}) }),
    );
  }
}
