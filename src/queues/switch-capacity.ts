/**
 * Back-pressure for click-to-dial: what the switch can take now, and the admission that refuses a
 * call instead of queueing it to ring seconds late.
 *
 * The switch says how loaded it is in its HEARTBEAT events (Session-Count, Max-Sessions, Idle-CPU,
 * every `event-heartbeat-interval` seconds) and what its limits are in `status` (sessions-per-second,
 * min-idle-cpu), read once per heartbeat and on every (re)connect. From them:
 *  - the callback queue's limiter runs at min(CALLBACK_CALLS_PER_SECOND, what the switch's
 *    sessions-per-second leaves for two-leg calls); BullMQ's global rate limit, so every controller
 *    sharing the queue follows it;
 *  - while the switch refuses new channels (Idle-CPU under its min-idle-cpu, or no session left),
 *    new calls are refused with 503 `switch_at_capacity` and the worker holds queued calls rather
 *    than dial them into a refusal;
 *  - a call that would wait longer than CALLBACK_MAX_WAIT_SECONDS for its turn (the backlog divided
 *    by the limiter's rate) is refused: 429 `gateway_rate_limited` when the gateway's own limit is
 *    the narrower one, 503 `switch_at_capacity` when the switch's is. Each refusal has Retry-After.
 *  - while the calls dialled lately had waited (dispatch-pace.ts), the backlog is divided by the
 *    rate at which they actually left instead, when that is lower: the controllers or the host are
 *    short of CPU, and the limiter's rate is no longer what the queue does (503 `switch_at_capacity`);
 *  - while the latest of them were dialled more than CALLBACK_MAX_WAIT_SECONDS after they were
 *    accepted, a new call would be too: 503 `controller_overloaded`.
 *
 * The snapshot is also kept in Redis (`<prefix>:capacity:<gateway>`), where `enqueueClickToDial`
 * reads it: a backend queueing straight into BullMQ is refused the same way.
 */
import type { RedisClient } from '../stores/redis';
import { RetryLaterError } from '../domain/errors';
import type { EslEvent } from '../esl/event';
import type { Logger } from '../logger';
import { redisKeys } from '../stores/keys';
import { QUEUED_LAG_SECONDS, type DispatchPace } from './dispatch-pace';

/** What this reads from the switch's event stream, besides the call flows' events. */
export const CAPACITY_EVENTS = ['HEARTBEAT'] as const;
/** ...and the ESL filter that lets them through once the connection filters (they belong to no channel). */
export const CAPACITY_EVENT_FILTERS: ReadonlyArray<readonly [string, string]> = CAPACITY_EVENTS.map((name) => ['Event-Name', name] as const);
/** A click-to-dial call opens two channels on the switch: A, then B. */
export const LEGS_PER_CALL = 2;
const DEFAULT_HEARTBEAT_SECONDS = 20;

export interface SwitchReading {
  /** Epoch ms of the newest figure. */
  readonly at: number;
  readonly sessions: number;
  readonly maxSessions: number;
  /** Idle CPU of the switch's host, %, as the switch averages it (over cpu-idle-smoothing-depth seconds). */
  readonly idleCpu: number;
  /** sessions-per-second: new channels the switch accepts per second (null until `status` answered). */
  readonly sessionsPerSecond: number | null;
  /** min-idle-cpu, % (0: off; null until `status` answered). */
  readonly minIdleCpu: number | null;
}

export type CapacityLimit = 'gateway' | 'switch';

export interface CapacitySnapshot {
  readonly at: number;
  /** A copy read from Redis says nothing after this (its controller stopped): calls are let in. */
  readonly validUntil: number;
  /** The callback queue's rate: calls started per second. */
  readonly callsPerSecond: number;
  /** Which limit sets that rate. */
  readonly limitedBy: CapacityLimit;
  /** 0: no bound on the wait. */
  readonly maxWaitSeconds: number;
  /** Set while the switch refuses new channels (with a fleet: while no switch can take a call). */
  readonly refusing: { readonly reason: RefusalReason; readonly retryAfterSeconds: number } | null;
  /** The switch's figures (with a fleet of one; null with several: see `switches`). */
  readonly switch: SwitchReading | null;
  /** With a fleet: each switch's figures and whether it takes new calls. */
  readonly switches?: ReadonlyArray<{ readonly name: string; readonly takesCalls: boolean; readonly reading: SwitchReading | null }>;
}

/** Why new calls are refused: the switch's idle CPU, its sessions, or no switch of the fleet up and active. */
export type RefusalReason = 'idle_cpu' | 'max_sessions' | 'no_switch';

/** 429 `gateway_rate_limited`, 503 `switch_at_capacity` or `controller_overloaded`, with the seconds after which to try again. */
export class CapacityRefusedError extends RetryLaterError {
  constructor(code: 'gateway_rate_limited' | 'switch_at_capacity' | 'controller_overloaded', message: string, retryAfterSeconds: number) {
    super(code, message, retryAfterSeconds);
    this.name = 'CapacityRefusedError';
  }
}

/** The callback queue's rate for a gateway limit and the switch's sessions-per-second. */
export function callbackRate(
  gatewayCallsPerSecond: number,
  sessionsPerSecond: number | null,
  switchSharePercent: number,
): { callsPerSecond: number; limitedBy: CapacityLimit } {
  if (sessionsPerSecond === null || switchSharePercent <= 0) return { callsPerSecond: gatewayCallsPerSecond, limitedBy: 'gateway' };
  // FreeSWITCH creates at most sessions-per-second − 1 channels a second (it refuses when the count reaches 0).
  const fromSwitch = Math.max(1, Math.floor((Math.max(0, sessionsPerSecond - 1) * switchSharePercent) / 100 / LEGS_PER_CALL));
  return fromSwitch < gatewayCallsPerSecond
    ? { callsPerSecond: fromSwitch, limitedBy: 'switch' }
    : { callsPerSecond: gatewayCallsPerSecond, limitedBy: 'gateway' };
}

/**
 * The rate calls leave the queue at: the limiter's, or the rate the calls dialled lately were
 * dialled at when they had waited and it is lower.
 */
export function drainRate(snapshot: Pick<CapacitySnapshot, 'callsPerSecond'>, pace: DispatchPace | null | undefined): { callsPerSecond: number; paced: boolean } {
  if (pace && pace.calls > 0 && pace.meanLagSeconds > QUEUED_LAG_SECONDS && pace.callsPerSecond < snapshot.callsPerSecond) {
    return { callsPerSecond: pace.callsPerSecond, paced: true };
  }
  return { callsPerSecond: snapshot.callsPerSecond, paced: false };
}

/**
 * Refuses (throws CapacityRefusedError) a new call that the switch would refuse, that would wait
 * longer than the snapshot's bound as the latest calls did (`pace`), or behind `backlog` calls
 * already waiting at the rate calls leave the queue (drainRate). No snapshot, or a stale one: let it in.
 */
export function admitNewCall(snapshot: CapacitySnapshot | null, backlog: number, now: number = Date.now(), pace?: DispatchPace | null): void {
  if (!snapshot || now > snapshot.validUntil) return;
  if (snapshot.refusing) {
    const why =
      snapshot.refusing.reason === 'idle_cpu'
        ? 'the switch is short of idle CPU and refuses new channels'
        : snapshot.refusing.reason === 'max_sessions'
          ? 'the switch has no session left'
          : 'no switch is up to take the call';
    throw new CapacityRefusedError('switch_at_capacity', `${why}; try again later`, snapshot.refusing.retryAfterSeconds);
  }
  if (snapshot.maxWaitSeconds <= 0) return;
  if (pace && pace.maxLagSeconds > snapshot.maxWaitSeconds) {
    throw new CapacityRefusedError(
      'controller_overloaded',
      `calls dialled in the last seconds waited up to ${pace.maxLagSeconds.toFixed(1)} s since they were accepted (at most ${snapshot.maxWaitSeconds} s): this one would wait as long`,
      Math.max(1, Math.ceil(pace.maxLagSeconds - snapshot.maxWaitSeconds)),
    );
  }
  const { callsPerSecond, paced } = drainRate(snapshot, pace);
  const waitSeconds = (backlog + 1) / callsPerSecond;
  if (waitSeconds <= snapshot.maxWaitSeconds) return;
  const retryAfter = Math.max(1, Math.ceil(waitSeconds - snapshot.maxWaitSeconds));
  const rate = paced
    ? `the ${pace?.calls ?? 0} calls dialled in the last seconds left at ${callsPerSecond.toFixed(1)} calls/s (limit ${snapshot.callsPerSecond}) after waiting ${(pace?.meanLagSeconds ?? 0).toFixed(1)} s`
    : `${snapshot.callsPerSecond} calls/s`;
  const message = `${backlog} calls are waiting and ${rate}: this one would be dialled in ${Math.ceil(waitSeconds)} s (at most ${snapshot.maxWaitSeconds} s)`;
  throw new CapacityRefusedError(!paced && snapshot.limitedBy === 'gateway' ? 'gateway_rate_limited' : 'switch_at_capacity', message, retryAfter);
}

/** What admission asks of the queue, only when it matters: the calls waiting and the pace they leave at. */
export interface QueueState {
  backlog(): Promise<number>;
  pace?(): Promise<DispatchPace | null>;
}

/** admitNewCall with the backlog and the pace read (together) only when the snapshot bounds the wait. */
export async function admitToCallbackQueue(snapshot: CapacitySnapshot | null, queue: QueueState, now: number = Date.now()): Promise<void> {
  if (!snapshot || now > snapshot.validUntil) return;
  if (snapshot.refusing || snapshot.maxWaitSeconds <= 0) {
    admitNewCall(snapshot, 0, now);
    return;
  }
  // The pace only narrows the bound: a pace that cannot be read leaves the limiter's rate standing.
  const [backlog, pace] = await Promise.all([queue.backlog(), queue.pace?.().catch(() => null) ?? null]);
  admitNewCall(snapshot, backlog, now, pace);
}

/** Figures of `api status` (FreeSWITCH 1.10). */
export function parseSwitchStatus(text: string): Omit<SwitchReading, 'at'> | null {
  const sessions = /^(\d+) session\(s\) - peak/m.exec(text)?.[1];
  const sps = /session\(s\) per Sec out of max (\d+)/.exec(text)?.[1];
  const max = /^(\d+) session\(s\) max/m.exec(text)?.[1];
  const cpu = /^min idle cpu ([\d.]+)\/([\d.]+)/m.exec(text);
  if (sessions === undefined || sps === undefined || max === undefined || !cpu) return null;
  return {
    sessions: Number(sessions),
    sessionsPerSecond: Number(sps),
    maxSessions: Number(max),
    minIdleCpu: Number(cpu[1]),
    idleCpu: Number(cpu[2]),
  };
}

/** Jobs of a callback queue that wait for their turn (not delayed retries, not running): what a new call waits behind. */
export async function callbackBacklog(queue: { getJobCounts(...types: Array<'wait' | 'prioritized'>): Promise<Record<string, number>> }): Promise<number> {
  const counts = await queue.getJobCounts('wait', 'prioritized');
  return (counts.wait ?? 0) + (counts.prioritized ?? 0);
}

export function capacityKey(prefix: string, gateway: string): string {
  return redisKeys(prefix).switchCapacity(gateway);
}

/** The snapshot a controller left in Redis, or null (none, or unreadable). */
export async function readCapacitySnapshot(redis: Pick<RedisClient, 'get'>, prefix: string, gateway: string): Promise<CapacitySnapshot | null> {
  const raw = await redis.get(capacityKey(prefix, gateway));
  if (!raw) return null;
  try {
    const s = JSON.parse(raw) as CapacitySnapshot;
    return typeof s.callsPerSecond === 'number' && s.callsPerSecond > 0 && typeof s.validUntil === 'number' ? s : null;
  } catch {
    return null;
  }
}

/** The inbound ESL connection as this needs it (EslClient). */
export interface SwitchFeed {
  readonly state: string;
  api(command: string, opts?: { timeoutMs?: number }): Promise<string>;
  on(event: 'event', listener: (e: EslEvent) => void): unknown;
  on(event: 'ready', listener: () => void): unknown;
  off(event: 'event', listener: (e: EslEvent) => void): unknown;
  off(event: 'ready', listener: () => void): unknown;
}

export interface SwitchCapacityDeps {
  readonly feed: SwitchFeed;
  /** CALLBACK_CALLS_PER_SECOND: the gateway's (carrier's) own limit. */
  readonly gatewayCallsPerSecond: number;
  /** CALLBACK_SWITCH_SHARE: % of the switch's sessions-per-second click-to-dial may use; 0: do not follow it. */
  readonly switchSharePercent: number;
  /** CALLBACK_MAX_WAIT_SECONDS; 0: no bound. */
  readonly maxWaitSeconds: number;
  /** Sets the callback queue's rate (BullMQ's global rate limit). */
  readonly applyRate?: (callsPerSecond: number) => Promise<void>;
  /** Keeps the snapshot where direct producers read it (Redis). */
  readonly publish?: (snapshot: CapacitySnapshot, ttlMs: number) => Promise<void>;
  /** Told after every new reading (the fleet re-rates the queue from all its switches). */
  readonly changed?: () => void;
  readonly logger: Logger;
  readonly now?: () => number;
}

export class SwitchCapacity {
  private reading: SwitchReading | null = null;
  private heartbeatSeconds = DEFAULT_HEARTBEAT_SECONDS;
  private lastHeartbeatAt: number | null = null;
  private appliedRate: number | null = null;
  private asking: Promise<void> | undefined;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly onEvent = (e: EslEvent): void => {
    if (e.name === 'HEARTBEAT') this.heartbeat(e);
  };
  private readonly onReady = (): void => void this.refresh();

  constructor(private readonly deps: SwitchCapacityDeps) {
    this.now = deps.now ?? Date.now;
    this.log = deps.logger.child({ component: 'switch-capacity' });
  }

  /** Listens to the switch; sets the queue's rate to the gateway's until the switch has answered. */
  async start(): Promise<void> {
    this.deps.feed.on('event', this.onEvent);
    this.deps.feed.on('ready', this.onReady);
    await this.applyRate();
    if (this.deps.feed.state === 'ready') await this.refresh();
  }

  stop(): void {
    this.deps.feed.off('event', this.onEvent);
    this.deps.feed.off('ready', this.onReady);
  }

  /** What admission and the worker go by now. Figures older than three heartbeats are not used. */
  snapshot(): CapacitySnapshot {
    const now = this.now();
    const ttlMs = 3 * this.heartbeatSeconds * 1000;
    const r = this.reading && now - this.reading.at <= ttlMs ? this.reading : null;
    const { callsPerSecond, limitedBy } = callbackRate(this.deps.gatewayCallsPerSecond, r?.sessionsPerSecond ?? null, this.deps.switchSharePercent);
    let refusing: CapacitySnapshot['refusing'] = null;
    const retryAfterSeconds = Math.max(1, Math.round(this.heartbeatSeconds));
    // Exactly when the switch refuses (it compares the same smoothed figure): refusing earlier would turn away
    // calls the switch still takes.
    if (r && r.minIdleCpu !== null && r.minIdleCpu > 0 && r.idleCpu < r.minIdleCpu) {
      refusing = { reason: 'idle_cpu', retryAfterSeconds };
    } else if (r && r.maxSessions > 0 && r.sessions + LEGS_PER_CALL > r.maxSessions) {
      refusing = { reason: 'max_sessions', retryAfterSeconds };
    }
    return { at: now, validUntil: now + ttlMs, callsPerSecond, limitedBy, maxWaitSeconds: this.deps.maxWaitSeconds, refusing, switch: r };
  }

  /** Throws CapacityRefusedError for a new call that should not be queued (the queue's state is asked only when it matters). */
  admit(queue: QueueState): Promise<void> {
    const s = this.snapshot();
    return admitToCallbackQueue(s, queue, s.at);
  }

  /** ms a worker should hold queued calls before dialling (0: dial now): the switch refuses new channels. */
  holdMs(): number {
    const s = this.snapshot();
    return s.refusing ? s.refusing.retryAfterSeconds * 1000 : 0;
  }

  /** Reads the switch's limits (`status`), then re-rates the queue and republishes. */
  refresh(): Promise<void> {
    this.asking ??= this.deps.feed
      .api('status')
      .then(
        (text) => {
          const parsed = parseSwitchStatus(text);
          if (!parsed) {
            this.log.warn('could not read the switch status');
            return;
          }
          // The heartbeat's own figures are as new as these; `status` adds the limits.
          this.reading = { ...parsed, at: this.now() };
        },
        (err: unknown) => this.log.warn({ err }, 'switch status failed'),
      )
      .then(() => this.changed())
      .finally(() => {
        this.asking = undefined;
      });
    return this.asking;
  }

  private heartbeat(e: EslEvent): void {
    const now = this.now();
    if (this.lastHeartbeatAt !== null) {
      const gap = (now - this.lastHeartbeatAt) / 1000;
      if (gap >= 0.5 && gap <= 120) this.heartbeatSeconds = gap;
    }
    this.lastHeartbeatAt = now;
    const num = (name: string): number | undefined => {
      const v = e.header(name);
      return v === undefined || v === '' || !Number.isFinite(Number(v)) ? undefined : Number(v);
    };
    const prev = this.reading;
    this.reading = {
      at: now,
      sessions: num('Session-Count') ?? prev?.sessions ?? 0,
      maxSessions: num('Max-Sessions') ?? prev?.maxSessions ?? 0,
      idleCpu: num('Idle-CPU') ?? prev?.idleCpu ?? 100,
      sessionsPerSecond: prev?.sessionsPerSecond ?? null,
      minIdleCpu: prev?.minIdleCpu ?? null,
    };
    void this.refresh();
  }

  /** The interval between the switch's heartbeats as measured (20 s until two were seen). */
  get heartbeatIntervalSeconds(): number {
    return this.heartbeatSeconds;
  }

  private async changed(): Promise<void> {
    this.deps.changed?.();
    const before = this.appliedRate;
    await this.applyRate();
    const s = this.snapshot();
    if (before !== this.appliedRate) this.log.info({ callsPerSecond: s.callsPerSecond, limitedBy: s.limitedBy, switch: s.switch }, 'callback rate set');
    if (s.refusing) this.log.warn({ reason: s.refusing.reason, switch: s.switch }, 'switch at capacity: refusing new calls');
    try {
      await this.deps.publish?.(s, Math.max(1000, s.validUntil - s.at));
    } catch (err) {
      this.log.warn({ err }, 'could not publish the capacity snapshot');
    }
  }

  private async applyRate(): Promise<void> {
    const { callsPerSecond } = callbackRate(this.deps.gatewayCallsPerSecond, this.reading?.sessionsPerSecond ?? null, this.deps.switchSharePercent);
    if (callsPerSecond === this.appliedRate) return;
    try {
      await this.deps.applyRate?.(callsPerSecond);
      this.appliedRate = callsPerSecond;
    } catch (err) {
      this.log.warn({ err }, 'could not set the callback rate');
    }
  }
}

/** One switch of a fleet as the fleet's capacity sees it. */
export interface FleetMember {
  readonly name: string;
  /** Connected, not draining, not lost: placement may choose it. */
  readonly eligible: boolean;
  readonly capacity: Pick<SwitchCapacity, 'snapshot'>;
  /** Configured calls-per-second limit of this switch (null: from its sessions-per-second). */
  readonly maxCallsPerSecond: number | null;
}

/**
 * The callback queue's back-pressure over a fleet of switches: the queue runs at the gateway's
 * rate or the sum of what the eligible switches take, whichever is lower; new calls are refused
 * only while no eligible switch takes channels (then `switch_at_capacity`, or `no_switch` when none
 * is up and active).
 */
export function fleetSnapshot(
  members: readonly FleetMember[],
  limits: { gatewayCallsPerSecond: number; switchSharePercent: number; maxWaitSeconds: number },
  now: number,
): CapacitySnapshot {
  let switchRate = 0;
  let validFor = DEFAULT_HEARTBEAT_SECONDS * 3 * 1000;
  let refusal: CapacitySnapshot['refusing'] = null;
  let open = 0;
  const switches: Array<{ name: string; takesCalls: boolean; reading: SwitchReading | null }> = [];
  for (const m of members) {
    const s = m.capacity.snapshot();
    const takesCalls = m.eligible && s.refusing === null;
    switches.push({ name: m.name, takesCalls, reading: s.switch });
    if (!m.eligible) continue;
    validFor = Math.min(validFor, s.validUntil - s.at);
    if (s.refusing) {
      refusal ??= s.refusing;
      continue;
    }
    open++;
    const own = switchCallsPerSecond(s.switch?.sessionsPerSecond ?? null, limits.switchSharePercent, m.maxCallsPerSecond);
    switchRate += own ?? limits.gatewayCallsPerSecond;
  }
  const limitedBy: CapacityLimit = open > 0 && switchRate < limits.gatewayCallsPerSecond ? 'switch' : 'gateway';
  const callsPerSecond = open > 0 ? Math.max(1, Math.min(limits.gatewayCallsPerSecond, switchRate)) : limits.gatewayCallsPerSecond;
  const refusing = open > 0 ? null : (refusal ?? { reason: 'no_switch' as const, retryAfterSeconds: 1 });
  const single = members.length === 1 ? (switches[0]?.reading ?? null) : null;
  return { at: now, validUntil: now + validFor, callsPerSecond, limitedBy, maxWaitSeconds: limits.maxWaitSeconds, refusing, switch: single, switches };
}

/** What one switch takes per second for click-to-dial: its configured limit, or its sessions-per-second share (null: unknown). */
export function switchCallsPerSecond(sessionsPerSecond: number | null, switchSharePercent: number, configured: number | null): number | null {
  const fromSwitch =
    sessionsPerSecond === null || switchSharePercent <= 0
      ? null
      : Math.max(1, Math.floor((Math.max(0, sessionsPerSecond - 1) * switchSharePercent) / 100 / LEGS_PER_CALL));
  if (configured === null) return fromSwitch;
  return fromSwitch === null ? configured : Math.min(configured, fromSwitch);
}
