import { redisKeys } from './keys';
import type { RedisClient } from './redis';

/** Record writes gathered in one turn of the event loop. */
interface OwnerWrites {
  readonly tracked: Map<string, string>;
  readonly untracked: Set<string>;
}

/** A call to X whose controller instance died before it queued the call's CDR. */
export interface OrphanedCallToX {
  readonly owner: string;
  readonly callId: string;
  /** What the owner recorded of the call (JSON, as it wrote it). */
  readonly record: string;
}

/**
 * Which controller instance carries which call to X, in Redis. A call to X lives on one controller's
 * outbound socket; should that controller die (SIGKILL, crash, host lost), nothing of it is left but
 * this: each instance keeps an "alive" key with a TTL, refreshed by heartbeat, and a hash of the calls
 * it carries, written when the call is decided and removed once its CDR is queued. An instance whose
 * key has expired is dead; its calls are orphans for any other instance to settle.
 *
 * Instance ids are unique per process start, so a restarted controller never mistakes the calls of
 * its previous life for its own.
 */
export class CallsToXOwners {
  private readonly keys: ReturnType<typeof redisKeys>;
  private batch: OwnerWrites = { tracked: new Map(), untracked: new Set() };
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    readonly instanceId: string,
    private readonly aliveForMs: number,
  ) {
    this.keys = redisKeys(prefix);
  }

  /** This instance is alive for the next aliveForMs (and listed, should it have been dropped while it looked dead). */
  async heartbeat(): Promise<void> {
    await Promise.all([
      this.redis.set(this.keys.callsToXOwnerAlive(this.instanceId), '1', 'PX', this.aliveForMs),
      this.redis.sadd(this.keys.callsToXOwners, this.instanceId),
    ]);
  }

  /**
   * Records a call (once per call). Writes are gathered until the end of the event loop's turn and
   * leave together: one HSET of every call decided in that turn (and one HDEL of every call ended),
   * in one write. Resolves once that write is done; rejects, for every call in it, if it failed.
   */
  track(callId: string, record: string): Promise<void> {
    this.batch.untracked.delete(callId);
    this.batch.tracked.set(callId, record);
    return this.flushSoon();
  }

  /** Drops a call's record; a call tracked in the same turn is never written at all. */
  untrack(callId: string): Promise<void> {
    if (!this.batch.tracked.delete(callId)) this.batch.untracked.add(callId);
    return this.flushSoon();
  }

  private flushSoon(): Promise<void> {
    this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      const { tracked, untracked } = this.batch;
      this.batch = { tracked: new Map(), untracked: new Set() };
      this.flushing = undefined;
      return this.write(tracked, untracked);
    });
    return this.flushing;
  }

  private async write(tracked: ReadonlyMap<string, string>, untracked: ReadonlySet<string>): Promise<void> {
    const key = this.keys.callsToXOwnerCalls(this.instanceId);
    if (tracked.size > 0 && untracked.size > 0) {
      const results = await this.redis.pipeline().hset(key, tracked).hdel(key, ...untracked).exec();
      const failed = results?.find(([err]) => err !== null)?.[0];
      if (failed) throw failed;
    } else if (tracked.size > 0) {
      await this.redis.hset(key, tracked);
    } else if (untracked.size > 0) {
      await this.redis.hdel(key, ...untracked);
    }
  }

  /** The calls of every instance that is not alive (this one excepted); a dead instance with none left is unlisted. */
  async orphans(): Promise<OrphanedCallToX[]> {
    const out: OrphanedCallToX[] = [];
    for (const owner of await this.redis.smembers(this.keys.callsToXOwners)) {
      if (owner === this.instanceId || (await this.redis.exists(this.keys.callsToXOwnerAlive(owner))) === 1) continue;
      const calls = await this.redis.hgetall(this.keys.callsToXOwnerCalls(owner));
      const entries = Object.entries(calls);
      if (entries.length === 0) {
        await this.redis.srem(this.keys.callsToXOwners, owner);
        continue;
      }
      for (const [callId, record] of entries) out.push({ owner, callId, record });
    }
    return out;
  }

  /** An orphan is in other hands now (its settlement is queued). */
  async release(orphan: Pick<OrphanedCallToX, 'owner' | 'callId'>): Promise<void> {
    await this.redis.hdel(this.keys.callsToXOwnerCalls(orphan.owner), orphan.callId);
  }
}
