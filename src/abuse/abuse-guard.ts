import type { RedisClient } from '../stores/redis';
import type { AppConfig } from '../config';
import { ForbiddenError, RetryLaterError, type ErrorCode } from '../domain/errors';
import { maskPhone } from '../domain/phone-number';
import type { Logger } from '../logger';
import type { Pool } from '../stores/mysql';
import type { PlatformEventInput } from '../events/platform-events';
import type { AuditEntryInput } from '../stores/audit-store';
import { NO_ABUSE_METRICS, type AbuseLimitName, type AbuseMetrics } from './abuse-metrics';
import { AnomalyWatch } from './anomaly-watch';
import { BlacklistLookup } from './blacklist-lookup';
import { AbuseDisposal, QuarantinedNumbers } from './disposal';
import { AbuseFlagStore, type AbuseFlag, type FlagQuery } from './flag-store';
import { tenantNumberHash, type NumberHasher } from '../domain/number-hash';
import { RedisAbuseCounters, type SlidingTake, type TakeResult } from './redis-counters';
import { redisKeys } from '../stores/keys';
import { TenantLimits, TenantLimitsStore } from './tenant-limits';

export type AbuseLimits = AppConfig['abuse'];
export { NO_ABUSE_METRICS, type AbuseLimitName, type AbuseMetrics };

/** A limit of abuse control refused the request: 429, and when to try again (Retry-After). */
export class RateLimitedError extends RetryLaterError {
  constructor(code: ErrorCode, message: string, retryAfterSeconds: number, field?: string) {
    super(code, message, retryAfterSeconds, field);
    this.name = 'RateLimitedError';
  }
}

export interface AbuseGuardDeps {
  readonly redis: RedisClient;
  /** The app's REDIS_PREFIX. */
  readonly prefix: string;
  /** Keyed hash: how numbers appear in counter keys and flags. */
  readonly numberHash: NumberHasher;
  readonly pool: Pool;
  /** The platform's limits; a tenant's own settings override them one by one. */
  readonly limits: AbuseLimits;
  readonly logger: Logger;
  readonly metrics?: AbuseMetrics;
  /** How long a blacklist answer is cached for the call paths (default 5 s). */
  readonly blacklistCacheMs?: number;
  /** How long a tenant's effective limits are cached (default 5 s). */
  readonly limitsCacheMs?: number;
  /** The audit log, for flags and the disposal policy's actions. */
  readonly audit?: (entry: AuditEntryInput) => Promise<unknown>;
  /** Queues the abuse.flagged webhook. */
  readonly announce?: (event: PlatformEventInput) => Promise<void>;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const SECOND_MS = 1_000;

/** A limit counted per number in a sliding window, and how a refusal by it reads. */
interface CountedRule {
  readonly counter: 'calls' | 'bindings';
  readonly windowMs: number;
  readonly code: ErrorCode;
  readonly metric: AbuseLimitName;
  readonly message: (field: string, limit: number) => string;
}

const CALLS_RULE: CountedRule = {
  counter: 'calls',
  windowMs: MINUTE_MS,
  code: 'caller_rate_limited',
  metric: 'calls_per_caller',
  message: (field, limit) => `${field} has been in ${limit} calls within a minute; try later`,
};

const BINDINGS_RULE: CountedRule = {
  counter: 'bindings',
  windowMs: HOUR_MS,
  code: 'number_binding_rate_limited',
  metric: 'bindings_per_number',
  message: (field, limit) => `${field} has been bound ${limit} times within an hour; try later`,
};

/**
 * Abuse control (SPEC §7): the limits that refuse a request, and the fan-out flag that only
 * signals. Counters live in Redis (shared by every controller) under `<prefix>:abuse:`, keyed by
 * a per-tenant hash of the number, never the number itself; flags are kept in MySQL.
 *  - calls per caller per minute: a click-to-dial request counts for A and for B; a call to X
 *    for its caller. One counter per number, so both kinds of call add up.
 *  - bindings per number per hour: a binding counts for A and for B.
 *  - requests per tenant per second, on the whole /v1 API.
 *  - fan-out: a number reaching more than FANOUT_DISTINCT_PARTIES distinct parties within
 *    FANOUT_WINDOW_SECONDS raises one flag per window; the call or binding goes ahead.
 */
export class AbuseGuard {
  readonly flags: AbuseFlagStore;
  /** The one place a tenant's effective limits are resolved. */
  readonly limits: TenantLimits;
  readonly limitSettings: TenantLimitsStore;
  /** The quarantined numbers as the routing path sees them. */
  readonly quarantined: QuarantinedNumbers;
  readonly disposal: AbuseDisposal;
  readonly watch: AnomalyWatch;
  private readonly counters: RedisAbuseCounters;
  private readonly blacklist: BlacklistLookup;
  private readonly metrics: AbuseMetrics;
  private readonly log: Logger;

  constructor(private readonly deps: AbuseGuardDeps) {
    this.flags = new AbuseFlagStore(deps.pool);
    this.limitSettings = new TenantLimitsStore(deps.pool);
    this.limits = new TenantLimits(this.limitSettings, deps.limits, deps.limitsCacheMs ?? 5_000);
    this.counters = new RedisAbuseCounters(deps.redis);
    this.blacklist = new BlacklistLookup(deps.pool, deps.blacklistCacheMs ?? 5_000);
    this.metrics = deps.metrics ?? NO_ABUSE_METRICS;
    this.log = deps.logger.child({ component: 'abuse' });
    this.quarantined = new QuarantinedNumbers(deps.pool);
    this.disposal = new AbuseDisposal(deps.pool, this.quarantined, (tenantId) => this.blacklist.forget(tenantId));
    this.watch = new AnomalyWatch({
      prefix: deps.prefix,
      numberHash: deps.numberHash,
      counters: this.counters,
      flags: this.flags,
      limits: this.limits,
      disposal: this.disposal,
      metrics: this.metrics,
      logger: deps.logger,
      audit: deps.audit,
      announce: deps.announce,
    });
  }

  /** The pair limit for a new AXB binding of this tenant: its own, or the platform's (0: off). */
  pairBindingsPerHour(tenantId: string): Promise<number> {
    return this.limits.pairBindingsPerHour(tenantId);
  }

  /**
   * Before a click-to-dial call is accepted (API) or first recorded (a job queued directly):
   * a blacklisted A or B is refused (403 number_blacklisted), then A and B are counted against
   * the calls limit (429 caller_rate_limited, field a or b), then A's contact with B is noted.
   */
  async admitClickToDial(request: { tenantId: string; a: string; b: string }, now: number = Date.now()): Promise<void> {
    const { tenantId, a, b } = request;
    const listed = await this.blacklist.listed(tenantId, [a, b], now);
    for (const [field, n] of [['a', a], ['b', b]] as const) {
      if (listed.has(n)) {
        this.metrics.refused('blacklist');
        throw new ForbiddenError('number_blacklisted', `${field} is on the blacklist`, field);
      }
    }
    await this.takeOrRefuse(CALLS_RULE, tenantId, { a, b }, (await this.limits.effective(tenantId, now)).callsPerCallerPerMinute, now);
    await this.noteContactsSafely([{ tenantId, number: a, parties: [b], now }]);
  }

  /** Numbers put into a binding, new or changed, count as bound (429 number_binding_rate_limited). */
  async admitRebinding(tenantId: string, added: Readonly<{ a?: string; b?: string }>, now: number = Date.now()): Promise<void> {
    await this.takeOrRefuse(BINDINGS_RULE, tenantId, added, (await this.limits.effective(tenantId, now)).bindingsPerNumberPerHour, now);
  }

  blacklistChanged(tenantId: string | null): void {
    this.blacklist.forget(tenantId);
  }

  /** Before a binding is written: A and B are counted against the bindings limit (429 number_binding_rate_limited). */
  async admitBinding(tenantId: string, numbers: { a: string | null; b: string }, now: number = Date.now()): Promise<void> {
    const [refusal] = await this.admitBindings([{ tenantId, numbers, now }]);
    if (refusal) throw refusal;
  }

  /**
   * New bindings written together (group commit), each admitted as admitBinding admits one, in
   * the order given as if one after the other: every take in one round trip, then the admitted
   * ones' fan-out notes in one more. Per binding: null when admitted, else its refusal (or the
   * Redis error it met).
   */
  async admitBindings(binds: ReadonlyArray<{ tenantId: string; numbers: { a: string | null; b: string }; now: number }>): Promise<Array<Error | null>> {
    const counted = await Promise.all(
      binds.map(async ({ tenantId, numbers: { a, b }, now }) => ({
        tenantId,
        numbers: countedNumbers(a, b),
        limit: (await this.limits.effective(tenantId, now)).bindingsPerNumberPerHour,
        now,
      })),
    );
    const taken = await this.counters.takeSlidingMany(counted.map((c) => this.take(BINDINGS_RULE, c.tenantId, c.numbers, c.limit, c.now)));
    const refusals = counted.map((c, i): Error | null => {
      const t = taken[i] ?? new Error('no reply');
      return t instanceof Error ? t : this.refusal(BINDINGS_RULE, c.tenantId, c.numbers, c.limit, t);
    });
    const admitted = binds.filter((_b, i) => refusals[i] === null);
    void this.watch.observeBindings(admitted);
    await this.noteContactsSafely(
      admitted.flatMap(({ tenantId, numbers: { a, b }, now }) =>
        a === null
          ? []
          : [
              { tenantId, number: a, parties: [b], now },
              { tenantId, number: b, parties: [a], now },
            ],
      ),
    );
    return refusals;
  }

  /**
   * A routed call to X: false when its caller is over the calls limit (the call is then refused
   * like an unbound one, result rate_limited). Never throws and never waits on MySQL: a Redis
   * failure lets the call through, and the fan-out note runs in the background.
   */
  async admitCallToX(tenantId: string, caller: string, target: string, now: number = Date.now()): Promise<'rate_limited' | 'blacklisted' | null> {
    try {
      if ((await this.blacklist.listedForRouting(tenantId, [caller], now)).size > 0) {
        this.metrics.refused('blacklist');
        this.log.warn({ tenantId, caller: maskPhone(caller) }, 'call to X refused: caller blacklisted');
        return 'blacklisted';
      }
      const limit = (await this.limits.forRouting(tenantId, now)).callsPerCallerPerMinute;
      if (limit > 0) {
        const taken = await this.counters.takeSliding([{ key: this.key('calls', tenantId, caller), limit }], MINUTE_MS, now);
        if (!taken.admitted) {
          this.metrics.refused('calls_per_caller');
          this.log.warn({ tenantId, caller: maskPhone(caller), limit }, 'call to X refused: caller over the calls limit');
          return 'rate_limited';
        }
      }
    } catch (err) {
      this.log.error({ err }, 'abuse check failed; call to X let through');
      return null;
    }
    void this.noteContactsSafely([{ tenantId, number: caller, parties: [target], now }]);
    return null;
  }

  /** Every /v1 request of a tenant: 429 tenant_rate_limited beyond TENANT_REQUESTS_PER_SECOND. */
  async admitTenantRequest(tenantId: string, now: number = Date.now()): Promise<void> {
    const limit = this.deps.limits.tenantRequestsPerSecond;
    if (limit <= 0) return;
    const second = Math.floor(now / SECOND_MS);
    // The key outlives its second a little, so a late request on a slow clock still finds it.
    const { count } = await this.counters.takeFixed(redisKeys(this.deps.prefix).tenantRequests(tenantId, second), 2 * SECOND_MS);
    if (count > limit) {
      this.metrics.refused('tenant_requests');
      throw new RateLimitedError('tenant_rate_limited', `more than ${limit} requests per second`, Math.ceil(((second + 1) * SECOND_MS - now) / SECOND_MS));
    }
  }

  /** A tenant's flags, newest first; `number` narrows them to one real number. */
  listFlags(tenantId: string, q: { number?: string; limit?: number } = {}): Promise<AbuseFlag[]> {
    return this.flags.list(tenantId, {
      numberHash: q.number === undefined ? undefined : tenantNumberHash(this.deps.numberHash, tenantId, q.number),
      limit: q.limit,
    });
  }

  /** A page of a tenant's flags, newest first. */
  pageFlags(tenantId: string, q: Omit<FlagQuery, 'numberHash'> & { number?: string }): Promise<{ items: AbuseFlag[]; nextCursor: string | null }> {
    const { number, ...rest } = q;
    return this.flags.page(tenantId, { ...rest, ...(number === undefined ? {} : { numberHash: tenantNumberHash(this.deps.numberHash, tenantId, number) }) });
  }

  private key(counter: 'calls' | 'bindings' | 'fanout' | 'fanout-flag', tenantId: string, number: string, hashOf?: (tenantId: string, number: string) => string): string {
    return redisKeys(this.deps.prefix).abuseCounter(counter, tenantId, hashOf ? hashOf(tenantId, number) : tenantNumberHash(this.deps.numberHash, tenantId, number));
  }

  /** The keyed hash of a tenant's number, each computed once per call of the returned function (an HMAC per number, not per use). */
  private hashOf(): (tenantId: string, number: string) => string {
    const known = new Map<string, string>();
    return (tenantId, number) => {
      const id = `${tenantId}|${number}`;
      let hash = known.get(id);
      if (hash === undefined) known.set(id, (hash = tenantNumberHash(this.deps.numberHash, tenantId, number)));
      return hash;
    };
  }

  /** The take of one request under a limit (nothing to count when the limit is off). */
  private take(rule: CountedRule, tenantId: string, numbers: Readonly<Record<string, string>>, limit: number, now: number): SlidingTake {
    const keys = limit <= 0 ? [] : Object.values(numbers).map((number) => ({ key: this.key(rule.counter, tenantId, number), limit }));
    return { keys, windowMs: rule.windowMs, now };
  }

  /** The refusal a take's answer means, counted and logged; null when admitted. */
  private refusal(rule: CountedRule, tenantId: string, numbers: Readonly<Record<string, string>>, limit: number, taken: TakeResult): RateLimitedError | null {
    if (taken.admitted) return null;
    const [field, number] = Object.entries(numbers)[taken.index] ?? ['(number)', ''];
    this.metrics.refused(rule.metric);
    this.log.info({ tenantId, code: rule.code, field, number: maskPhone(number) }, 'refused by an abuse limit');
    return new RateLimitedError(rule.code, rule.message(field, limit), Math.max(1, Math.ceil(taken.retryAfterMs / SECOND_MS)), field);
  }

  private async takeOrRefuse(rule: CountedRule, tenantId: string, numbers: Readonly<Record<string, string>>, limit: number, now: number): Promise<void> {
    const refused = this.refusal(rule, tenantId, numbers, limit, await this.counters.takeSliding(this.take(rule, tenantId, numbers, limit, now).keys, rule.windowMs, now));
    if (refused) throw refused;
  }

  /**
   * Notes each number's contact with its parties, in one round trip, and flags the numbers that
   * passed the fan-out threshold. Fan-out is a signal: a failure to note it is logged, never passed
   * on to the call or binding.
   */
  private async noteContactsSafely(contacts: ReadonlyArray<{ tenantId: string; number: string; parties: readonly string[]; now: number }>): Promise<void> {
    if (contacts.length === 0) return;
    try {
      const noted = await Promise.all(contacts.map(async (c) => ({ ...c, limits: await this.limits.effective(c.tenantId, c.now) })));
      // A binding's A and B each appear as a number and as the other's party: each is hashed once.
      const hashOf = this.hashOf();
      const seen = await this.counters.notePartiesMany(
        noted.map(({ tenantId, number, parties, now, limits }) => ({
          partiesKey: this.key('fanout', tenantId, number, hashOf),
          markerKey: this.key('fanout-flag', tenantId, number, hashOf),
          parties: parties.map((p) => hashOf(tenantId, p)),
          threshold: limits.fanoutDistinctParties,
          windowMs: limits.fanoutWindowSeconds * 1000,
          now,
        })),
      );
      for (const [i, { tenantId, number, now, limits: own }] of noted.entries()) {
        const one = seen[i];
        if (one instanceof Error) {
          this.log.error({ err: one }, 'fan-out note failed');
          continue;
        }
        if (!one?.flagged) continue;
        const { fanoutDistinctParties: threshold, fanoutWindowSeconds: windowSeconds } = own;
        await this.watch.raise(
          { tenantId, kind: 'fanout', number, x: null, count: one.distinct, windowSeconds, evidence: { distinctParties: one.distinct, threshold, windowSeconds } },
          own,
          now,
        );
      }
    } catch (err) {
      this.log.error({ err }, 'fan-out note failed');
    }
  }
}

/** The numbers a new binding counts against the bindings limit, by field. */
function countedNumbers(a: string | null, b: string): Readonly<Record<string, string>> {
  return a === null ? { b } : { a, b };
}
