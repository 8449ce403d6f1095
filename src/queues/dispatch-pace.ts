/**
 * How fast click-to-dial calls are actually dialled, and how late: the time from a call being
 * accepted to its originate leaving for the switch.
 *
 * Admission (switch-capacity.ts) bounds a new call's wait by the backlog divided by the queue's
 * rate. The configured rate is only a ceiling, and the backlog only counts calls no worker has
 * taken: on a host short of CPU (the switch runs with realtime priority and takes the cores
 * first) the controllers take calls at once and then dial them seconds late. So every worker
 * counts the calls it dials and how long each waited since it was accepted; the counts of all
 * controllers meet in Redis, one small hash per second, and admission reads the last few seconds:
 *  - while those calls waited (mean over QUEUED_LAG_SECONDS) and left slower than the limiter's
 *    rate, the backlog is divided by the rate they left at;
 *  - while the latest of them waited longer than CALLBACK_MAX_WAIT_SECONDS, a new call would too:
 *    it is refused.
 */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../stores/redis';
import { redisKeys } from '../stores/keys';

/** Seconds of counts admission goes by (the last complete ones). */
export const PACE_WINDOW_SECONDS = 3;
/** Calls dialled within this long of being accepted had no queue to wait in: their pace says nothing of capacity. */
export const QUEUED_LAG_SECONDS = 1;
/** How long a second's counts are kept: the window and some slack. */
const KEEP_MS = (PACE_WINDOW_SECONDS + 7) * 1000;
/** Each controller's longest wait of a second is its own field (`max:<recorder>`): no two overwrite each other's. */
const MAX_FIELD = 'max:';

export interface DispatchPace {
  /** Calls dialled per second over the window, by every controller. */
  readonly callsPerSecond: number;
  /** Their mean wait between being accepted and being dialled, s. */
  readonly meanLagSeconds: number;
  /** The longest of those waits, s. */
  readonly maxLagSeconds: number;
  /** How many were dialled in the window. */
  readonly calls: number;
}

export function paceKey(prefix: string, gateway: string, second: number): string {
  return redisKeys(prefix).dispatchPace(gateway, second);
}

/**
 * A worker's counts, written to Redis by `flush()` (every few hundred ms): one round trip for all
 * the calls dialled meanwhile, however many.
 */
export class DispatchPaceRecorder {
  private calls = 0;
  private lagMs = 0;
  /** The longest wait of each second not yet over (its field is rewritten at every flush of that second). */
  private maxBySecond = new Map<number, number>();
  private readonly field = `${MAX_FIELD}${randomUUID()}`;
  private readonly now: () => number;

  constructor(
    private readonly redis: Pick<RedisClient, 'multi'>,
    private readonly prefix: string,
    private readonly gateway: string,
    now?: () => number,
  ) {
    this.now = now ?? Date.now;
  }

  /** A call's first originate left for the switch, `waitedMs` after the call was accepted. */
  dialled(waitedMs: number): void {
    this.calls++;
    this.lagMs += waitedMs;
    const second = Math.floor(this.now() / 1000);
    this.maxBySecond.set(second, Math.max(this.maxBySecond.get(second) ?? 0, waitedMs));
  }

  /** Adds what was counted since the last flush to the current second. A failed write loses those counts (they only steer admission). */
  async flush(): Promise<void> {
    if (this.calls === 0) return;
    const calls = this.calls;
    const lagMs = Math.round(this.lagMs);
    const second = Math.floor(this.now() / 1000);
    let maxMs = 0;
    for (const [s, max] of this.maxBySecond) {
      maxMs = Math.max(maxMs, max);
      if (s < second) this.maxBySecond.delete(s);
    }
    this.calls = 0;
    this.lagMs = 0;
    const key = paceKey(this.prefix, this.gateway, second);
    await this.redis.multi().hincrby(key, 'calls', calls).hincrby(key, 'lagMs', lagMs).hset(key, this.field, Math.round(maxMs)).pexpire(key, KEEP_MS).exec();
  }
}

/** Any Redis client (ours, or the one of a backend's BullMQ queue). */
export interface PaceSource {
  hgetall(key: string): Promise<Record<string, string>>;
}

/** The pace of the last PACE_WINDOW_SECONDS complete seconds, or null when no call was dialled in them. */
export async function readDispatchPace(redis: PaceSource, prefix: string, gateway: string, now: number = Date.now()): Promise<DispatchPace | null> {
  const current = Math.floor(now / 1000);
  const seconds = Array.from({ length: PACE_WINDOW_SECONDS }, (_, i) => current - PACE_WINDOW_SECONDS + i);
  // Sent back to back: one round trip.
  const replies = await Promise.all(seconds.map((s) => redis.hgetall(paceKey(prefix, gateway, s))));
  let calls = 0;
  let lagMs = 0;
  let maxMs = 0;
  for (const fields of replies) {
    calls += Number(fields.calls ?? 0);
    lagMs += Number(fields.lagMs ?? 0);
    for (const [name, value] of Object.entries(fields)) if (name.startsWith(MAX_FIELD)) maxMs = Math.max(maxMs, Number(value));
  }
  if (calls === 0) return null;
  return { callsPerSecond: calls / PACE_WINDOW_SECONDS, meanLagSeconds: lagMs / calls / 1000, maxLagSeconds: maxMs / 1000, calls };
}

/** readDispatchPace, read at most once per `maxAgeMs` however many requests ask (the API's admission). */
export class DispatchPaceReader {
  private last: { at: number; pace: Promise<DispatchPace | null> } | null = null;

  constructor(
    private readonly read: () => Promise<DispatchPace | null>,
    private readonly maxAgeMs = 250,
    private readonly now: () => number = Date.now,
  ) {}

  pace(): Promise<DispatchPace | null> {
    const now = this.now();
    if (this.last && now - this.last.at < this.maxAgeMs) return this.last.pace;
    const pace = this.read();
    this.last = { at: now, pace };
    // A failed read is not kept: the next request asks again.
    pace.catch(() => {
      if (this.last?.pace === pace) this.last = null;
    });
    return pace;
  }
}
