/**
 * How fast click-to-dial calls actually leave their queue, and how late they are when they do.
 *
 * Admission (switch-capacity.ts) bounds a new call's wait by the backlog divided by the queue's
 * rate. The configured rate is only a ceiling: when the controllers or the switch's host are short
 * of CPU, calls leave slower than it, and a bound computed from it lets calls in that are then
 * dialled many seconds late. So every worker counts the first attempts it starts and how long each
 * waited since it was queued; the counts of all controllers meet in Redis, one small hash per
 * second, and admission reads the last few seconds. While those calls waited (mean lag over
 * QUEUED_LAG_SECONDS), the rate at which they left is what the queue can do, and the wait is
 * bounded by it.
 */
import type { RedisClient } from '../stores/redis';
import { redisKeys } from '../stores/keys';

/** Seconds of counts admission goes by (the last complete ones). */
export const PACE_WINDOW_SECONDS = 3;
/** A call started within this long of being queued had no queue to wait in: its pace says nothing of capacity. */
export const QUEUED_LAG_SECONDS = 1;
/** How long a second's counts are kept: the window and some slack. */
const KEEP_MS = (PACE_WINDOW_SECONDS + 7) * 1000;

export interface DispatchPace {
  /** First attempts started per second over the window, by every controller. */
  readonly callsPerSecond: number;
  /** Their mean wait between being queued and being started, s. */
  readonly meanLagSeconds: number;
  /** How many were started in the window. */
  readonly calls: number;
}

/** What of a BullMQ job tells when it was started and how long it waited. */
export interface StartedJob {
  readonly timestamp: number;
  readonly processedOn?: number;
  readonly attemptsStarted: number;
  readonly opts: { readonly delay?: number };
  readonly data: { readonly attempt?: number };
}

/** The seconds a job waited for its turn when it started; null when it is not a call's first start (a retry, a redelivery, a job taken again after a hold). */
export function queuedLagMs(job: StartedJob, now: number): number | null {
  if ((job.data.attempt ?? 1) > 1 || job.attemptsStarted > 1) return null;
  const dueAt = job.timestamp + (job.opts.delay ?? 0);
  return Math.max(0, (job.processedOn ?? now) - dueAt);
}

export function paceKey(prefix: string, gateway: string, second: number): string {
  return redisKeys(prefix).dispatchPace(gateway, second);
}

/**
 * A worker's counts, written to Redis by `flush()` (every few hundred ms): one round trip for all
 * the calls started meanwhile, however many.
 */
export class DispatchPaceRecorder {
  private calls = 0;
  private lagMs = 0;
  private readonly now: () => number;

  constructor(
    private readonly redis: Pick<RedisClient, 'multi'>,
    private readonly prefix: string,
    private readonly gateway: string,
    now?: () => number,
  ) {
    this.now = now ?? Date.now;
  }

  started(job: StartedJob): void {
    const lag = queuedLagMs(job, this.now());
    if (lag === null) return;
    this.calls++;
    this.lagMs += lag;
  }

  /** Adds what was counted since the last flush to the current second. A failed write loses those counts (they only steer admission). */
  async flush(): Promise<void> {
    if (this.calls === 0) return;
    const calls = this.calls;
    const lagMs = Math.round(this.lagMs);
    this.calls = 0;
    this.lagMs = 0;
    const key = paceKey(this.prefix, this.gateway, Math.floor(this.now() / 1000));
    await this.redis.multi().hincrby(key, 'calls', calls).hincrby(key, 'lagMs', lagMs).pexpire(key, KEEP_MS).exec();
  }
}

/** Any Redis client (ours, or the one of a backend's BullMQ queue). */
export interface PaceSource {
  hmget(key: string, ...fields: string[]): Promise<Array<string | null>>;
}

/** The pace of the last PACE_WINDOW_SECONDS complete seconds, or null when no call was started in them. */
export async function readDispatchPace(redis: PaceSource, prefix: string, gateway: string, now: number = Date.now()): Promise<DispatchPace | null> {
  const current = Math.floor(now / 1000);
  const seconds = Array.from({ length: PACE_WINDOW_SECONDS }, (_, i) => current - PACE_WINDOW_SECONDS + i);
  // Sent back to back: one round trip.
  const replies = await Promise.all(seconds.map((s) => redis.hmget(paceKey(prefix, gateway, s), 'calls', 'lagMs')));
  let calls = 0;
  let lagMs = 0;
  for (const [c, l] of replies) {
    calls += Number(c ?? 0);
    lagMs += Number(l ?? 0);
  }
  if (calls === 0) return null;
  return { callsPerSecond: calls / PACE_WINDOW_SECONDS, meanLagSeconds: lagMs / calls / 1000, calls };
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
