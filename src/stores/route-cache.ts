import { randomUUID } from 'node:crypto';
import type { RedisClient } from './redis';
import { LuaScript } from './redis';
import { routeCacheAckChannel, routeCacheMembersKey, routeChangesChannel } from './keys';

/**
 * A local read-through cache of the route index, for the routing path: what one lookup read from
 * Redis for (X, caller), kept so the next call from that caller to X is decided without a round
 * trip. Every decision is still made from what is read (a route past its expiry routes nothing,
 * whether cached or not); what is cached is the stored routes, never a decision.
 *
 * Coherence, so that an unbind answered by any controller is never routed by another's cache:
 *  - Each write to the index (apply-route-change, mark-extension-number) publishes the key it
 *    changed on the route-changes channel; a cache drops every read of that key's X on hearing it.
 *  - A cache serves only while it holds a lease in Redis (route-cache-lease.lua), renewed every
 *    third of its length; its local end is counted from before the renewal was sent, so it ends
 *    no later than the lease Redis holds.
 *  - After its writes, a writer publishes a sync message behind them and waits until every lease
 *    holder has acknowledged it (a holder acknowledges after handling the messages before it, which
 *    arrive in order on its subscription). A holder that does not acknowledge in time is evicted
 *    (it cannot renew; on finding that out it drops everything and joins again) and the writer
 *    waits until its lease has ended. Only then does the write, and the unbind behind it, answer.
 *  - While its subscription is not confirmed (starting, lost, resubscribing) a cache serves and
 *    keeps nothing; a read begun before it went live is never kept; a read an invalidation of its
 *    X overtook is not kept. Entries also age out after `ttlMs`.
 * Leases are compared on Redis's clock against local durations: a step of Redis's wall clock can
 * shorten a wait by its size. Needs a single Redis (pub/sub order across cluster nodes is not kept).
 */
export interface CachedRoutes<T> {
  readonly read: T;
  readonly until: number;
}

export interface RouteCacheOptions {
  /** How long a read is served at most (0: no cache). */
  readonly ttlMs: number;
  /** Reads kept at most; beyond it the cache starts again empty. */
  readonly maxEntries: number;
}

export class RouteReadCache<T> {
  private readonly byX = new Map<string, Map<string, CachedRoutes<T>>>();
  private size = 0;
  /** Counts invalidations; a read is kept only if its X was not invalidated since it began. */
  private generation = 0;
  private readonly invalidatedAt = new Map<string, number>();
  /** Reads begun before this generation (their token is lower) are never kept: set when invalidatedAt is cleared. */
  private floor = 0;
  private live = false;
  /** When this cache's lease ends (performance.now() clock): nothing is served after it. */
  private leaseUntil = Number.POSITIVE_INFINITY;

  constructor(private readonly options: RouteCacheOptions) {}

  /** Serving needs a lease held until then (see joinRouteCache); without a call, no lease is asked for. */
  setLeaseUntil(until: number): void {
    this.leaseUntil = until;
  }

  get enabled(): boolean {
    return this.options.ttlMs > 0;
  }

  /** The read kept for (x, caller), if the cache is live and it is fresh. */
  get(x: string, caller: string, nowMs: number = performance.now()): T | undefined {
    if (!this.live || nowMs >= this.leaseUntil) return undefined;
    const hit = this.byX.get(x)?.get(caller);
    if (!hit) return undefined;
    if (hit.until > nowMs) return hit.read;
    this.dropOne(x, caller);
    return undefined;
  }

  /** Taken before reading Redis, handed to keep(). */
  begin(): number {
    return this.generation;
  }

  /** Keeps a read begun at `token`, unless X was invalidated since (or the cache is not live). */
  keep(token: number, x: string, caller: string, read: T, nowMs: number = performance.now()): void {
    if (!this.live || !this.enabled || token < this.floor || (this.invalidatedAt.get(x) ?? -1) > token) return;
    if (this.size >= this.options.maxEntries) this.clear();
    let reads = this.byX.get(x);
    if (!reads) this.byX.set(x, (reads = new Map<string, CachedRoutes<T>>()));
    if (!reads.has(caller)) this.size++;
    reads.set(caller, { read, until: nowMs + this.options.ttlMs });
  }

  /** Everything read of X is dropped, and reads of it in flight are not kept. */
  invalidate(x: string): void {
    this.generation++;
    this.invalidatedAt.set(x, this.generation);
    if (this.invalidatedAt.size > 100_000) {
      this.invalidatedAt.clear();
      this.floor = this.generation;
    }
    const reads = this.byX.get(x);
    if (reads) {
      this.size -= reads.size;
      this.byX.delete(x);
    }
  }

  /** A route-changes message: the key changed; its X is the hash tag. An unexpected key clears everything. */
  invalidateKey(key: string): void {
    const x = /\{([^}]+)\}/.exec(key)?.[1];
    if (x === undefined) this.invalidateAll();
    else this.invalidate(x);
  }

  invalidateAll(): void {
    this.generation++;
    this.floor = this.generation;
    this.invalidatedAt.clear();
    this.clear();
  }

  /** Whether every change is heard: false drops everything and serves nothing until true again. */
  setLive(live: boolean): void {
    // Either way nothing read before is kept: going down it may miss changes; coming up, reads
    // begun while down were not covered by the messages it heard.
    if (live !== this.live) this.invalidateAll();
    this.live = live && this.enabled;
  }

  get isLive(): boolean {
    return this.live;
  }

  private clear(): void {
    this.byX.clear();
    this.size = 0;
  }

  private dropOne(x: string, caller: string): void {
    const reads = this.byX.get(x);
    if (reads?.delete(caller)) this.size--;
    if (reads && reads.size === 0) this.byX.delete(x);
  }
}

const LEASE = LuaScript.load('route-cache-lease');
const BARRIER = LuaScript.load('route-cache-barrier');
const EVICT = LuaScript.load('route-cache-evict');
const SYNC = 'sync|';

export interface RouteCacheMembership {
  /** The subscribed connection (it can do nothing else). */
  readonly subscriber: RedisClient;
  /** A normal connection: leases and acknowledgements. */
  readonly redis: RedisClient;
  readonly prefix: string;
  /** How long a lease lasts; renewed every third of it. */
  readonly leaseMs: number;
  /** This cache's member id in the lease set (default: a new one). */
  readonly id?: string;
  /**
   * The id of this process's RouteWriteBarrier, whose writes this cache has already forgotten (its
   * RouteIndex invalidates its own cache once Redis has them): that writer's syncs need no acknowledgement.
   */
  readonly localWriterId?: string;
}

/**
 * Feeds a cache from the route-changes channel and holds its lease (see the top of this file). The
 * cache is live only while the subscription is confirmed and its lease held; a lost connection
 * clears it, and it joins again once resubscribed. Returns stop.
 */
export async function joinRouteCache(cache: Pick<RouteReadCache<unknown>, 'invalidateKey' | 'setLive' | 'setLeaseUntil'>, m: RouteCacheMembership): Promise<() => Promise<void>> {
  const channel = routeChangesChannel(m.prefix);
  const members = routeCacheMembersKey(m.prefix);
  const id = m.id ?? randomUUID();
  let stopped = false;
  let subscribed = false;
  cache.setLeaseUntil(0);
  const lease = async (mode: 'join' | 'renew'): Promise<boolean> => {
    const sent = performance.now();
    const held = (await LEASE.run(m.redis, [members], [id, String(m.leaseMs), mode])) === 1;
    if (held && !stopped) cache.setLeaseUntil(sent + m.leaseMs);
    // A stop that came while the lease was being taken wins: a stopped cache never turns live again.
    return held && !stopped;
  };
  const join = async (): Promise<void> => {
    try {
      cache.setLive(false);
      if (!subscribed || stopped) return;
      if (await lease('join')) cache.setLive(true);
    } catch {
      cache.setLive(false);
    }
  };
  const subscribe = async (): Promise<void> => {
    try {
      await m.subscriber.subscribe(channel);
      subscribed = true;
      await join();
    } catch {
      cache.setLive(false);
    }
  };
  const lost = (): void => {
    subscribed = false;
    cache.setLive(false);
    // Writers need not wait for a cache that serves nothing any more (the lease ends anyway).
    void m.redis.zrem(members, id).catch(() => undefined);
  };
  m.subscriber.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    if (!message.startsWith(SYNC)) {
      cache.invalidateKey(message);
      return;
    }
    // Every message before this one has been handled: acknowledge it to its writer.
    const [writer, seq] = message.slice(SYNC.length).split('|');
    if (writer && seq && writer !== m.localWriterId) void m.redis.publish(routeCacheAckChannel(m.prefix, writer), `${id}|${seq}`).catch(() => undefined);
  });
  m.subscriber.on('close', lost);
  m.subscriber.on('reconnecting', lost);
  m.subscriber.on('error', lost);
  // ioredis subscribes again by itself after a reconnect; live again only once that is confirmed.
  m.subscriber.on('ready', () => void subscribe());
  const renewal = setInterval(() => {
    if (!subscribed || stopped) return;
    lease('renew').then(
      (held) => {
        // Evicted (an acknowledgement came too late): it may have missed a change; start again.
        if (!held) void join();
      },
      () => undefined, // the lease runs out by itself
    );
  }, Math.max(1, Math.floor(m.leaseMs / 3)));
  renewal.unref();
  await subscribe();
  return async () => {
    stopped = true;
    clearInterval(renewal);
    cache.setLive(false);
    await m.redis.zrem(members, id).catch(() => undefined);
    await m.subscriber.quit().catch(() => undefined);
  };
}

export interface RouteWriteBarrierOptions {
  /** Subscribed to this writer's acknowledgements (a connection of its own). */
  readonly subscriber: RedisClient;
  readonly redis: RedisClient;
  readonly prefix: string;
  /** How long acknowledgements are waited for before a silent cache is evicted. */
  readonly ackTimeoutMs: number;
  /**
   * The member id of the cache in this process that every write behind this barrier has already
   * invalidated (the RouteIndex writing through both): it is not waited for, and it does not acknowledge.
   */
  readonly localCacheId?: string;
}

/**
 * The writer's half: after route writes, waits until every route cache holding a lease has heard
 * them, or has been evicted and its lease has ended. Every controller has one, whether or not its
 * own cache is on: another's may be.
 */
export class RouteWriteBarrier {
  readonly id = randomUUID();
  private seq = 0;
  private readonly waiting = new Map<number, { acked: Set<string>; heard: () => void }>();

  private constructor(private readonly o: RouteWriteBarrierOptions) {}

  static async start(o: RouteWriteBarrierOptions): Promise<RouteWriteBarrier> {
    const barrier = new RouteWriteBarrier(o);
    const channel = routeCacheAckChannel(o.prefix, barrier.id);
    o.subscriber.on('message', (from: string, message: string) => {
      if (from !== channel) return;
      const [member, seq] = message.split('|');
      const waiter = barrier.waiting.get(Number(seq));
      if (!waiter || !member) return;
      waiter.acked.add(member);
      waiter.heard();
    });
    // Without the subscription no acknowledgement arrives: every write waits out the leases (slow, never unsafe).
    await o.subscriber.subscribe(channel).catch(() => undefined);
    return barrier;
  }

  /** Resolves once no route cache can serve what was read before this call's writes. */
  async afterWrites(): Promise<void> {
    const seq = ++this.seq;
    let heard = (): void => undefined;
    const acked = new Set<string>();
    this.waiting.set(seq, { acked, heard: () => heard() });
    try {
      const reply = (await BARRIER.run(this.o.redis, [routeCacheMembersKey(this.o.prefix)], [routeChangesChannel(this.o.prefix), `${SYNC}${this.id}|${seq}`])) as string[];
      const holders: string[] = [];
      for (let i = 0; i < reply.length; i += 2) if (String(reply[i]) !== this.o.localCacheId) holders.push(String(reply[i]));
      if (holders.length === 0) return;
      const allHeard = (): boolean => holders.every((h) => acked.has(h));
      if (!allHeard()) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.o.ackTimeoutMs);
          heard = () => {
            if (!allHeard()) return;
            clearTimeout(timer);
            resolve();
          };
        });
      }
      const silent = holders.filter((h) => !acked.has(h));
      const waits = await Promise.all(
        silent.map(async (member) => {
          const [now, until] = (await EVICT.run(this.o.redis, [routeCacheMembersKey(this.o.prefix)], [member])) as [string, string];
          return Math.max(0, Number(until) - Number(now));
        }),
      );
      const longest = Math.max(0, ...waits);
      // The evicted caches' leases end by then (their own count ends earlier): they serve nothing after it.
      if (longest > 0) await new Promise((resolve) => setTimeout(resolve, longest + 1));
    } finally {
      this.waiting.delete(seq);
    }
  }

  async stop(): Promise<void> {
    await this.o.subscriber.quit().catch(() => undefined);
  }
}
