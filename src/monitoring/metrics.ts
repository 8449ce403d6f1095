import type { Queue } from 'bullmq';
import type { RowDataPacket } from 'mysql2/promise';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PlatformEvent, PlatformEventBus } from '../events/platform-events';
import type { Pool } from '../stores/mysql';
import { within } from '../deadline';

/**
 * Prometheus metrics (SPEC §8) in a registry of their own, so two apps in one process (tests)
 * never share series. Calls are counted from the platform events; queue, pool and binding
 * figures are read when Prometheus scrapes (pool figures cached a few seconds: one SQL query
 * over every tenant, never one per scrape per tenant). A scrape never waits long on Redis or
 * MySQL: a dependency that is down or hangs leaves its series out and reads 0 in
 * numguard_metrics_source_up, while everything else (ESL state, calls) is still reported.
 */
export interface MetricsSources {
  readonly events: Pick<PlatformEventBus, 'onLocal'>;
  readonly queues: ReadonlyArray<{ readonly name: string; readonly queue: Pick<Queue, 'getJobCounts' | 'getWaiting'> }>;
  readonly pool: Pool;
  readonly eslConnected: () => boolean;
  /** Each switch of the fleet as this controller sees it (per-switch series; none when absent). */
  readonly switches?: () => ReadonlyArray<SwitchFigures>;
  /** How late this controller's event loop ran over the last second, ms (mean, p99; null: not measured yet). */
  readonly loopDelay?: () => { readonly meanMs: number; readonly p99Ms: number } | null;
  /** The click-to-dial calls dialled in the last seconds by every controller: how many per second, and how long after being accepted (null: none). */
  readonly dialPace?: () => Promise<{ readonly callsPerSecond: number; readonly meanLagSeconds: number; readonly maxLagSeconds: number } | null>;
  /** False while the queues' Redis connection is down: the queues are not asked at all then. */
  readonly redisReady?: () => boolean;
  /** Longest wait for Redis or MySQL during a scrape (default 2000 ms). */
  readonly sourceTimeoutMs?: number;
  /** How long pool and binding figures are reused between scrapes (default 5 s). */
  readonly poolCacheMs?: number;
  /**
   * A call whose completion was never seen (its controller died mid-call) stops counting as
   * active after this; set it above the longest possible call (default 25 h).
   */
  readonly staleCallMs?: number;
  /** The active-call table never grows past this, whatever happens to completions (default 100,000). */
  readonly maxTrackedCalls?: number;
}

/** One switch's figures for the per-switch series. */
export interface SwitchFigures {
  readonly name: string;
  readonly connected: boolean;
  readonly draining: boolean;
  readonly sessions: number | null;
  readonly sessionsPerSecond: number | null;
  readonly idleCpu: number | null;
  /** This controller's click-to-dial calls there now, and placed there since start. */
  readonly calls: number;
  readonly placedTotal: number;
}

type WaitingQueue = Pick<Queue, 'getWaiting'>;

export type ActiveCallKind = 'click_to_dial' | 'call_to_x';

interface QueueFigures {
  readonly name: string;
  readonly counts: Record<string, number>;
  readonly oldestWaitingSince: number | null;
}

/** `read` runs once for all callers that ask while it is under way: every gauge of one scrape shares it. */
function shared<T>(read: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | null = null;
  return () =>
    (running ??= read().finally(() => {
      running = null;
    }));
}


/**
 * Since when the job at the head of the line has been waiting, or null when none waits. BullMQ
 * pushes new and promoted jobs on the left and workers take from the right, so the longest-waiting
 * job is the first one of `getWaiting(0, 0)` (`getWaiting(-1, -1)` is the newest). A retried job
 * counts from the start of its last attempt: BullMQ keeps no record of when its backoff ended.
 */
export async function oldestWaitingSince(queue: WaitingQueue): Promise<number | null> {
  const [oldest] = await queue.getWaiting(0, 0);
  if (!oldest) return null;
  return oldest.attemptsMade > 0 && oldest.processedOn ? oldest.processedOn : oldest.timestamp;
}

const CALL_KIND_OF_CDR: Record<string, string> = { click_to_dial: 'click_to_dial', axb: 'call_to_x', xb: 'call_to_x', callback: 'call_to_x', axe: 'call_to_x' };
const DEFAULT_STALE_CALL_MS = 25 * 3600_000;
const DEFAULT_MAX_TRACKED_CALLS = 100_000;
const DEFAULT_SOURCE_TIMEOUT_MS = 2000;

export class PlatformMetrics {
  readonly registry = new Registry();
  private readonly active = new Map<string, { kind: ActiveCallKind; since: number }>();
  private readonly callsTotal: Counter<'kind' | 'result'>;
  private readonly callEvents: Counter<'type'>;
  private readonly webhookFailures: Counter<'status'>;
  private readonly abuseRefusals: Counter<'limit'>;
  private readonly abuseFlags: Counter<'kind'>;
  private readonly abuseActions: Counter<'action'>;
  private readonly auditFailures: Counter;
  private readonly routeDriftFound: Counter;
  private readonly routeDriftRepaired: Counter;
  private readonly routing: Histogram;
  private poolCache: { until: number; rows: RowDataPacket[] } | null = null;
  private readonly off: () => void;
  private readonly staleCallMs: number;
  private readonly maxTrackedCalls: number;
  private readonly sourceTimeoutMs: number;
  private readonly queueFigures = shared(() => this.readQueues());
  private readonly poolFigures = shared(() => this.readPool());
  /** The dial pace, as the gauges read it: within the source timeout, and nothing while Redis is down. */
  private readonly dialPace = shared(async () => {
    const read = this.sources.dialPace;
    if (!read || (this.sources.redisReady && !this.sources.redisReady())) return null;
    return within(read(), this.sourceTimeoutMs, 'redis').catch(() => null);
  });

  constructor(private readonly sources: MetricsSources) {
    this.staleCallMs = sources.staleCallMs ?? DEFAULT_STALE_CALL_MS;
    this.maxTrackedCalls = sources.maxTrackedCalls ?? DEFAULT_MAX_TRACKED_CALLS;
    this.sourceTimeoutMs = sources.sourceTimeoutMs ?? DEFAULT_SOURCE_TIMEOUT_MS;
    const registers = [this.registry];
    this.callsTotal = new Counter({ name: 'numguard_calls_total', help: 'Calls ended, by kind and result (calls per second: rate())', labelNames: ['kind', 'result'], registers });
    this.callEvents = new Counter({ name: 'numguard_call_events_total', help: 'Platform events reported, by type', labelNames: ['type'], registers });
    this.webhookFailures = new Counter({ name: 'numguard_webhook_failures_total', help: 'Failed webhook delivery attempts (gave_up: the last one)', labelNames: ['status'], registers });
    this.abuseRefusals = new Counter({ name: 'numguard_abuse_refusals_total', help: 'Requests refused by abuse control, by limit', labelNames: ['limit'], registers });
    this.abuseFlags = new Counter({ name: 'numguard_abuse_flags_total', help: 'Abuse flags raised, by kind', labelNames: ['kind'], registers });
    this.routeDriftFound = new Counter({ name: 'numguard_route_index_drift_found_total', help: 'Routes found by a reconcile to disagree with MySQL', registers });
    this.routeDriftRepaired = new Counter({ name: 'numguard_route_index_drift_repaired_total', help: 'Routes a reconcile put right', registers });
    this.abuseActions = new Counter({ name: 'numguard_abuse_actions_total', help: 'Actions of the disposal policy on abuse flags (quarantine an X, block a number)', labelNames: ['action'], registers });
    this.auditFailures = new Counter({ name: 'numguard_audit_failures_total', help: 'Audit entries that could not be written (the change itself went through)', registers });
    this.routing = new Histogram({
      name: 'numguard_routing_decision_seconds',
      help: 'Calls to X: from the switch connecting to the outbound socket to the bridge command sent',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    });
    // prom-client calls collect() with `this` bound to the metric; the collectors read this instance through `metrics`.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const metrics = this;
    new Gauge({
      name: 'numguard_active_calls',
      help: 'Calls in progress on this instance, by kind',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        metrics.forgetStaleCalls(Date.now());
        const byKind = new Map<ActiveCallKind, number>([['click_to_dial', 0], ['call_to_x', 0]]);
        for (const c of metrics.active.values()) byKind.set(c.kind, (byKind.get(c.kind) ?? 0) + 1);
        for (const [kind, n] of byKind) this.set({ kind }, n);
      },
    });
    new Gauge({
      name: 'numguard_event_loop_delay_seconds',
      help: "How late this controller's event loop ran over the last second (new calls are refused over CONTROLLER_MAX_LOOP_DELAY_MS)",
      labelNames: ['stat'],
      registers,
      collect() {
        this.reset();
        const d = sources.loopDelay?.();
        if (!d) return;
        this.set({ stat: 'mean' }, d.meanMs / 1000);
        this.set({ stat: 'p99' }, d.p99Ms / 1000);
      },
    });
    new Gauge({
      name: 'numguard_click_to_dial_dial_wait_seconds',
      help: 'Click-to-dial calls dialled in the last 3 s (every controller): seconds from accepted to the originate, mean and max (admission refuses over CALLBACK_MAX_WAIT_SECONDS)',
      labelNames: ['stat'],
      registers,
      async collect() {
        this.reset();
        const pace = await metrics.dialPace();
        if (!pace) return;
        this.set({ stat: 'mean' }, pace.meanLagSeconds);
        this.set({ stat: 'max' }, pace.maxLagSeconds);
      },
    });
    new Gauge({
      name: 'numguard_click_to_dial_dialled_per_second',
      help: 'Click-to-dial calls dialled per second over the last 3 s, by every controller',
      registers,
      async collect() {
        this.reset();
        this.set((await metrics.dialPace())?.callsPerSecond ?? 0);
      },
    });
    new Gauge({
      name: 'numguard_esl_connected',
      help: '1 while the event socket to FreeSWITCH is up',
      registers,
      collect() {
        this.set(sources.eslConnected() ? 1 : 0);
      },
    });
    const perSwitch = (name: string, help: string, value: (s: SwitchFigures) => number | null): void => {
      new Gauge({
        name,
        help,
        labelNames: ['switch'],
        registers,
        collect() {
          this.reset();
          for (const s of sources.switches?.() ?? []) {
            const v = value(s);
            if (v !== null) this.set({ switch: s.name }, v);
          }
        },
      });
    };
    perSwitch('numguard_switch_up', '1 while the event socket to this switch is up', (s) => (s.connected ? 1 : 0));
    perSwitch('numguard_switch_draining', '1 while this switch is drained (takes no new calls)', (s) => (s.draining ? 1 : 0));
    perSwitch('numguard_switch_sessions', 'Sessions on the switch (its last HEARTBEAT or status)', (s) => s.sessions);
    perSwitch('numguard_switch_sessions_per_second_limit', "The switch's sessions-per-second", (s) => s.sessionsPerSecond);
    perSwitch('numguard_switch_idle_cpu', "Idle CPU % of the switch's host, as the switch reports it", (s) => s.idleCpu);
    perSwitch('numguard_switch_calls', "This instance's click-to-dial calls on the switch now", (s) => s.calls);
    new Counter({
      name: 'numguard_switch_calls_placed_total',
      help: 'Click-to-dial attempts this instance placed on the switch',
      labelNames: ['switch'],
      registers,
      collect() {
        this.reset();
        for (const s of sources.switches?.() ?? []) this.inc({ switch: s.name }, s.placedTotal);
      },
    });
    new Gauge({
      name: 'numguard_queue_jobs',
      help: 'BullMQ jobs by queue and state',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        this.reset();
        const figures = await metrics.queueFigures().catch(() => []);
        for (const { name, counts } of figures) for (const [state, n] of Object.entries(counts)) this.set({ queue: name, state }, n);
      },
    });
    new Gauge({
      name: 'numguard_queue_oldest_waiting_seconds',
      help: 'Age of the oldest waiting job, by queue (0 when none waits)',
      labelNames: ['queue'],
      registers,
      async collect() {
        this.reset();
        const figures = await metrics.queueFigures().catch(() => []);
        const now = Date.now();
        for (const { name, oldestWaitingSince: since } of figures) this.set({ queue: name }, since === null ? 0 : Math.max(0, (now - since) / 1000));
      },
    });
    new Gauge({
      name: 'numguard_pool_numbers',
      help: 'Pool numbers by area and state (all tenants)',
      labelNames: ['area', 'state'],
      registers,
      async collect() {
        this.reset();
        for (const r of await metrics.poolFigures().catch(() => [])) this.set({ area: String(r.area), state: String(r.state) }, Number(r.numbers));
      },
    });
    new Gauge({
      name: 'numguard_pool_numbers_in_use',
      help: 'Pool numbers carrying at least one active binding, by area',
      labelNames: ['area'],
      registers,
      async collect() {
        this.reset();
        const byArea = new Map<string, number>();
        for (const r of await metrics.poolFigures().catch(() => [])) byArea.set(String(r.area), (byArea.get(String(r.area)) ?? 0) + Number(r.in_use));
        for (const [area, n] of byArea) this.set({ area }, n);
      },
    });
    new Gauge({
      name: 'numguard_bindings_active',
      help: 'Active bindings by area of their X (all tenants)',
      labelNames: ['area'],
      registers,
      async collect() {
        this.reset();
        const byArea = new Map<string, number>();
        for (const r of await metrics.poolFigures().catch(() => [])) byArea.set(String(r.area), (byArea.get(String(r.area)) ?? 0) + Number(r.bindings));
        for (const [area, n] of byArea) this.set({ area }, n);
      },
    });
    new Gauge({
      name: 'numguard_metrics_source_up',
      help: '1 when this scrape could read the source (redis: queue figures, mysql: pool and binding figures)',
      labelNames: ['source'],
      registers,
      async collect() {
        const up = (read: () => Promise<unknown>) => read().then(() => 1, () => 0);
        const [redis, mysql] = await Promise.all([up(metrics.queueFigures), up(metrics.poolFigures)]);
        this.set({ source: 'redis' }, redis);
        this.set({ source: 'mysql' }, mysql);
      },
    });
    this.off = sources.events.onLocal((e) => this.onEvent(e));
  }

  /**
   * A call this instance has taken on, counted active until its completion is reported or the
   * returned function is called (whichever comes first). Calls to X are registered this way when
   * the switch hands them over, so they count while B rings; a call first seen through its events
   * is a click-to-dial call (one resumed here after another instance died starts mid-way).
   */
  callStarted(callId: string, kind: ActiveCallKind): () => void {
    this.track(callId, kind);
    return () => {
      this.active.delete(callId);
    };
  }

  private onEvent(e: PlatformEvent): void {
    this.callEvents.inc({ type: e.type });
    if (!e.callId) return;
    if (e.type === 'call.completed') {
      this.active.delete(e.callId);
      if (e.cdr) this.callsTotal.inc({ kind: CALL_KIND_OF_CDR[e.cdr.kind] ?? e.cdr.kind, result: e.cdr.result });
      return;
    }
    // A refused call to X ends with call.refused instead of call.completed.
    if (e.type === 'call.refused') {
      this.active.delete(e.callId);
      if (e.refusal) this.callsTotal.inc({ kind: 'call_to_x', result: e.refusal.result });
      return;
    }
    if (e.type.startsWith('call.')) this.track(e.callId, 'click_to_dial');
  }

  private track(callId: string, kind: ActiveCallKind): void {
    if (this.active.has(callId)) return;
    const now = Date.now();
    if (this.active.size >= this.maxTrackedCalls) this.forgetStaleCalls(now);
    // Still full: the longest-tracked call goes (a Map iterates in insertion order).
    const longest = this.active.keys().next();
    if (this.active.size >= this.maxTrackedCalls && !longest.done) this.active.delete(longest.value);
    this.active.set(callId, { kind, since: now });
  }

  private forgetStaleCalls(now: number): void {
    for (const [id, c] of this.active) {
      if (now - c.since <= this.staleCallMs) break; // insertion order is start order: the rest are younger
      this.active.delete(id);
    }
  }

  private async readQueues(): Promise<QueueFigures[]> {
    // ioredis would hold commands until a reconnect: with Redis down, the queues are not asked.
    if (this.sources.redisReady && !this.sources.redisReady()) throw new Error('redis is not connected');
    const reads = this.sources.queues.map(async ({ name, queue }) => ({
      name,
      counts: await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized'),
      oldestWaitingSince: await oldestWaitingSince(queue),
    }));
    return within(Promise.all(reads), this.sourceTimeoutMs, 'redis');
  }

  private async readPool(): Promise<RowDataPacket[]> {
    const now = Date.now();
    if (this.poolCache && this.poolCache.until > now) return this.poolCache.rows;
    const [rows] = await within(this.sources.pool.query<RowDataPacket[]>(
      `SELECT p.area, p.state, COUNT(*) AS numbers, SUM(u.bindings IS NOT NULL) AS in_use, COALESCE(SUM(u.bindings), 0) AS bindings
         FROM pool_numbers p
         LEFT JOIN (SELECT x, COUNT(DISTINCT binding_id) AS bindings FROM binding_members WHERE expires_at > ? GROUP BY x) u ON u.x = p.x
        GROUP BY p.area, p.state`,
      [new Date(now)],
    ), this.sourceTimeoutMs, 'mysql');
    this.poolCache = { until: now + (this.sources.poolCacheMs ?? 5000), rows };
    return rows;
  }

  routingDecision(ms: number): void {
    this.routing.observe(ms / 1000);
  }

  webhookFailure(status: 'failed' | 'gave_up'): void {
    this.webhookFailures.inc({ status });
  }

  abuseRefusal(limit: string): void {
    this.abuseRefusals.inc({ limit });
  }

  abuseFlag(kind: string): void {
    this.abuseFlags.inc({ kind });
  }

  routeDrift(found: number, repaired: number): void {
    this.routeDriftFound.inc(found);
    this.routeDriftRepaired.inc(repaired);
  }

  abuseAction(action: string): void {
    this.abuseActions.inc({ action });
  }

  auditFailure(): void {
    this.auditFailures.inc();
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  stop(): void {
    this.off();
  }
}
