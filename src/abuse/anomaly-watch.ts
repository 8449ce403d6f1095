import type { CdrRecord } from '../domain/call';
import { tenantNumberHash, type NumberHasher } from '../domain/number-hash';
import { maskPhone } from '../domain/phone-number';
import type { PlatformEventInput } from '../events/platform-events';
import type { Logger } from '../logger';
import type { AuditEntryInput } from '../stores/audit-store';
import { redisKeys, type AnomalyWindow } from '../stores/keys';
import type { AbuseMetrics } from './abuse-metrics';
import type { AbuseAction, AbuseDisposal } from './disposal';
import type { AbuseFlagStore } from './flag-store';
import type { RedisAbuseCounters } from './redis-counters';
import type { AnomalyKind, EffectiveLimits, TenantLimits } from './tenant-limits';

export interface AnomalyWatchDeps {
  readonly prefix: string;
  readonly numberHash: NumberHasher;
  readonly counters: RedisAbuseCounters;
  readonly flags: AbuseFlagStore;
  readonly limits: TenantLimits;
  readonly disposal: AbuseDisposal;
  readonly metrics: AbuseMetrics;
  readonly logger: Logger;
  /** The audit log: every flag, and every action the disposal policy took. */
  readonly audit?: (entry: AuditEntryInput) => Promise<unknown>;
  /** Queues the abuse.flagged webhook (durably: a job per event id). */
  readonly announce?: (event: PlatformEventInput) => Promise<void>;
}

/** A threshold crossed, before it is stored. `number` is the real number flagged (never stored or sent unmasked). */
export interface Anomaly {
  readonly tenantId: string;
  readonly kind: AnomalyKind;
  readonly number: string | null;
  readonly x: string | null;
  readonly count: number;
  readonly windowSeconds: number;
  readonly evidence: Readonly<Record<string, number>>;
}

const CALL_TO_X_KINDS = new Set(['axb', 'xb', 'callback', 'axe']);

/**
 * The anomaly watch (SPEC §7 "用中监控", issue #10 item 6). Besides fan-out (abuse-guard.ts) it
 * watches, per tenant and with the tenant's own thresholds:
 *  - caller_burst: more than callerBurstCalls calls from one caller within burstWindowSeconds;
 *  - x_burst: more than xBurstCalls calls to one X within burstWindowSeconds;
 *  - short_calls: of a caller's connected calls within shortCallWindowSeconds (at least
 *    shortCallMinCalls), shortCallSharePercent or more talked under shortCallSeconds;
 *  - bulk_binding: a tenant's bindings in one minute above bulkBindingFactor times its usual rate
 *    (an EWMA of its bindings per minute, from its first whole minute on) and at least
 *    bulkBindingMinPerMinute.
 * Calls are seen from their CDRs (every call, routed or refused, ends in one), counted by call id so
 * a redelivered CDR counts once. Each kind raises at most one flag per subject per window. A flag is
 * stored with its evidence, counted, logged and audited (numbers masked), acted on by the tenant's
 * disposal policy and sent to the tenant as abuse.flagged.
 */
export class AnomalyWatch {
  private readonly log: Logger;

  constructor(private readonly deps: AnomalyWatchDeps) {
    this.log = deps.logger.child({ component: 'anomaly-watch' });
  }

  /** A call has ended (its CDR is written). Never throws: the watch is a signal, not part of the call. */
  async observeCall(cdr: CdrRecord): Promise<void> {
    await this.observeCalls([cdr]);
  }

  /**
   * Calls whose CDRs were written together, each watched as observeCall watches one; their burst
   * counts go to Redis in one round trip. Never throws.
   */
  async observeCalls(cdrs: readonly CdrRecord[]): Promise<void> {
    const watched = cdrs.filter((cdr) => cdr.tenantId && cdr.a);
    if (watched.length === 0) return;
    try {
      const calls = await Promise.all(watched.map(async (cdr) => ({ cdr, limits: await this.deps.limits.effective(cdr.tenantId, cdr.endedAt) })));
      await this.watchBursts(calls);
      await Promise.all(calls.map((call) => this.watchShortCalls(call.cdr, call.limits)));
    } catch (err) {
      this.log.error({ err, callIds: watched.map((cdr) => cdr.callId) }, 'anomaly watch failed on calls');
    }
  }

  /** A binding was admitted. Never throws. */
  async observeBinding(tenantId: string, now: number): Promise<void> {
    await this.observeBindings([{ tenantId, now }]);
  }

  /** Bindings admitted together (a batch), each noted as observeBinding notes one, in one round trip. Never throws. */
  async observeBindings(bindings: ReadonlyArray<{ tenantId: string; now: number }>): Promise<void> {
    try {
      // A tenant's bindings of one minute are noted together: one count of n, as n one after the other would count.
      const byMinute = new Map<string, { tenantId: string; now: number; count: number }>();
      for (const { tenantId, now } of bindings) {
        const key = `${tenantId}|${Math.floor(now / 60_000)}`;
        const held = byMinute.get(key);
        if (held) {
          held.count++;
          held.now = Math.max(held.now, now);
        } else byMinute.set(key, { tenantId, now, count: 1 });
      }
      const noted: Array<{ tenantId: string; now: number; count: number; limits: EffectiveLimits }> = [];
      for (const { tenantId, now, count } of byMinute.values()) {
        const limits = await this.deps.limits.effective(tenantId, now);
        if (limits.bulkBindingMinPerMinute > 0) noted.push({ tenantId, now, count, limits });
      }
      const keys = redisKeys(this.deps.prefix);
      const seen = await this.deps.counters.noteBindingMany(
        noted.map(({ tenantId, now, count, limits }) => ({
          keys: { state: keys.bindingRate(tenantId), marker: keys.bindingRateFlag(tenantId) },
          count,
          rule: { factor: limits.bulkBindingFactor, minPerMinute: limits.bulkBindingMinPerMinute, baselineMinutes: limits.bulkBindingBaselineMinutes },
          now,
        })),
      );
      for (const [i, { tenantId, now, limits }] of noted.entries()) {
        const one = seen[i];
        if (one instanceof Error) {
          this.log.error({ err: one, tenantId }, 'anomaly watch failed on a binding');
          continue;
        }
        if (!one?.flagged) continue;
        await this.raise(
          {
            tenantId,
            kind: 'bulk_binding',
            number: null,
            x: null,
            count: one.count,
            windowSeconds: 60,
            evidence: {
              bindingsThisMinute: one.count,
              usualPerMinute: Math.round((one.usualPerMinute ?? 0) * 100) / 100,
              factor: limits.bulkBindingFactor,
              minPerMinute: limits.bulkBindingMinPerMinute,
            },
          },
          limits,
          now,
        );
      }
    } catch (err) {
      this.log.error({ err }, 'anomaly watch failed on bindings');
    }
  }

  /** An X is quarantinable only when the calls were to it; a click-to-dial call only shows it. */
  private static calledX(cdr: CdrRecord): string | null {
    return CALL_TO_X_KINDS.has(cdr.kind) && cdr.x ? cdr.x : null;
  }

  /** caller_burst and x_burst: every call's counts in one round trip, then the flags they crossed, in order. */
  private async watchBursts(calls: ReadonlyArray<{ cdr: CdrRecord; limits: EffectiveLimits }>): Promise<void> {
    const notes: Array<{ cdr: CdrRecord; limits: EffectiveLimits; kind: 'caller_burst' | 'x_burst'; threshold: number; partiesKey: string; markerKey: string }> = [];
    for (const { cdr, limits } of calls) {
      const x = AnomalyWatch.calledX(cdr);
      if (limits.callerBurstCalls > 0) {
        const caller = this.hashOf(cdr.tenantId, cdr.a);
        notes.push({ cdr, limits, kind: 'caller_burst', threshold: limits.callerBurstCalls, partiesKey: this.key('caller-calls', caller), markerKey: this.key('caller-calls-flag', caller) });
      }
      if (x !== null && limits.xBurstCalls > 0) {
        const target = this.hashOf(cdr.tenantId, x);
        notes.push({ cdr, limits, kind: 'x_burst', threshold: limits.xBurstCalls, partiesKey: this.key('x-calls', target), markerKey: this.key('x-calls-flag', target) });
      }
    }
    if (notes.length === 0) return;
    const seen = await this.deps.counters.notePartiesMany(
      notes.map((n) => ({ partiesKey: n.partiesKey, markerKey: n.markerKey, parties: [n.cdr.callId], threshold: n.threshold, windowMs: n.limits.burstWindowSeconds * 1000, now: n.cdr.endedAt })),
    );
    for (const [i, n] of notes.entries()) {
      const one = seen[i];
      if (one instanceof Error || one === undefined) {
        this.log.error({ err: one, callId: n.cdr.callId }, 'anomaly watch failed on a call');
        continue;
      }
      if (!one.flagged) continue;
      const { cdr, limits, kind, threshold } = n;
      const windowSeconds = limits.burstWindowSeconds;
      await this.raise(
        {
          tenantId: cdr.tenantId,
          kind,
          number: kind === 'caller_burst' ? cdr.a : null,
          x: AnomalyWatch.calledX(cdr),
          count: one.distinct,
          windowSeconds,
          evidence: { calls: one.distinct, threshold, windowSeconds },
        },
        limits,
        cdr.endedAt,
      );
    }
  }

  private async watchShortCalls(cdr: CdrRecord, limits: EffectiveLimits): Promise<void> {
    const { tenantId } = cdr;
    const at = cdr.endedAt;
    const x = AnomalyWatch.calledX(cdr);
    const caller = this.hashOf(tenantId, cdr.a);
    if (cdr.result === 'connected' && limits.shortCallMinCalls > 0) {
      const seen = await this.deps.counters.noteShortCall(
        { connected: this.key('connected', caller), short: this.key('short', caller), marker: this.key('short-flag', caller) },
        cdr.callId,
        cdr.talkSeconds < limits.shortCallSeconds,
        { minCalls: limits.shortCallMinCalls, sharePercent: limits.shortCallSharePercent, windowMs: limits.shortCallWindowSeconds * 1000 },
        at,
      );
      if (seen.flagged) {
        await this.raise(
          {
            tenantId,
            kind: 'short_calls',
            number: cdr.a,
            x,
            count: seen.short,
            windowSeconds: limits.shortCallWindowSeconds,
            evidence: {
              connectedCalls: seen.connected,
              shortCalls: seen.short,
              sharePercent: Math.round((seen.short * 100) / seen.connected),
              shortUnderSeconds: limits.shortCallSeconds,
              windowSeconds: limits.shortCallWindowSeconds,
            },
          },
          limits,
          at,
        );
      }
    }
  }

  /** Stores, counts, logs, acts on, audits and announces one flag. */
  async raise(anomaly: Anomaly, limits: EffectiveLimits, now: number): Promise<void> {
    const { tenantId, kind, number, x } = anomaly;
    const numberHash = number === null ? null : this.hashOf(tenantId, number);
    const numberMasked = number === null ? null : maskPhone(number);
    const flagId = await this.deps.flags.insert({
      tenantId,
      kind,
      numberHash,
      numberMasked,
      x,
      distinctCount: anomaly.count,
      windowSeconds: anomaly.windowSeconds,
      evidence: anomaly.evidence,
      createdAt: now,
    });
    this.deps.metrics.flagged(kind);
    const disposal = limits.disposal[kind];
    let action: AbuseAction | null = null;
    try {
      if (disposal === 'quarantine' && x !== null) action = await this.deps.disposal.quarantine(tenantId, x, flagId, now);
      if (disposal === 'block' && number !== null && numberHash !== null && numberMasked !== null) {
        action = await this.deps.disposal.block(tenantId, number, { hash: numberHash, masked: numberMasked }, flagId, limits.blockSeconds, now);
      }
    } catch (err) {
      this.log.error({ err, tenantId, flagId }, 'disposal of an abuse flag failed; the flag stands');
    }
    if (action) this.deps.metrics.acted(action.action);
    const taken = action?.action ?? 'warn';
    this.log.warn({ tenantId, flagId, kind, number: numberMasked, x, evidence: anomaly.evidence, disposal: taken, actionId: action?.id }, 'abuse flag raised');
    const target = numberMasked ?? x;
    await this.audited({ tenantId, actor: 'system:abuse', action: 'abuse.flag', target, details: { flagId, kind, evidence: anomaly.evidence, disposal: taken } });
    if (action) {
      await this.audited({
        tenantId,
        actor: 'system:abuse',
        action: `abuse.${action.action}`,
        target: action.action === 'quarantine' ? action.x : numberMasked,
        details: { flagId, actionId: action.id, ...(action.until !== null ? { until: new Date(action.until).toISOString() } : {}) },
      });
    }
    try {
      await this.deps.announce?.({
        type: 'abuse.flagged',
        tenantId,
        at: now,
        flag: { flagId, kind, number: numberMasked, x, evidence: anomaly.evidence, disposal: taken, actionId: action?.id ?? null, until: action?.until ?? null },
      });
    } catch (err) {
      this.log.error({ err, tenantId, flagId }, 'abuse.flagged webhook not queued');
    }
  }

  private async audited(entry: AuditEntryInput): Promise<void> {
    try {
      await this.deps.audit?.(entry);
    } catch (err) {
      this.log.error({ err, action: entry.action }, 'audit entry not written');
    }
  }

  private hashOf(tenantId: string, number: string): string {
    return tenantNumberHash(this.deps.numberHash, tenantId, number);
  }

  private key(window: AnomalyWindow, hash: string): string {
    return redisKeys(this.deps.prefix).anomalyWindow(window, hash);
  }
}
