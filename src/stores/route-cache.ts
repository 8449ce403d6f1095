import type { RedisClient } from './redis';

/**
 * A local read-through cache of the route index, for the routing path: what one lookup read from
 * Redis for (X, caller), kept so the next call from that caller to X is decided without a round
 * trip. Every decision is still made from what is read (a route past its expiry routes nothing,
 * whether cached or not); what is cached is the stored routes, never a decision.
 *
 * It is only trusted while it hears every change. Each write to the index (the outbox's durable
 * path: apply-route-change and mark-extension-number) publishes the key it changed on the
 * route-changes channel; a message drops every read of that key's X. A write made here drops them
 * as soon as Redis has it, before the request that made it answers. While the subscription is not
 * confirmed (starting, the connection lost, resubscribing) nothing is served or kept, and losing it
 * clears everything. A read that an invalidation of its X overtook is not kept (it may be older
 * than the change). Entries also age out after `ttlMs`, a bound on any other surprise.
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

  constructor(private readonly options: RouteCacheOptions) {}

  get enabled(): boolean {
    return this.options.ttlMs > 0;
  }

  /** The read kept for (x, caller), if the cache is live and it is fresh. */
  get(x: string, caller: string, nowMs: number = performance.now()): T | undefined {
    if (!this.live) return undefined;
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
    if (!live) this.invalidateAll();
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

/**
 * Feeds a cache from the route-changes channel on a connection of its own (a subscribed
 * connection can do nothing else). The cache is live only while the subscription is confirmed;
 * a lost connection clears it, and it becomes live again once resubscribed.
 */
export async function listenForRouteChanges(cache: Pick<RouteReadCache<unknown>, 'invalidateKey' | 'setLive'>, subscriber: RedisClient, channel: string): Promise<() => Promise<void>> {
  let stopped = false;
  const subscribe = async (): Promise<void> => {
    try {
      await subscriber.subscribe(channel);
      if (!stopped) cache.setLive(true);
    } catch {
      cache.setLive(false);
    }
  };
  const lost = (): void => cache.setLive(false);
  subscriber.on('message', (from: string, key: string) => {
    if (from === channel) cache.invalidateKey(key);
  });
  subscriber.on('close', lost);
  subscriber.on('reconnecting', lost);
  subscriber.on('error', lost);
  // ioredis subscribes again by itself after a reconnect; live again only once that is confirmed.
  subscriber.on('ready', () => void subscribe());
  await subscribe();
  return async () => {
    stopped = true;
    cache.setLive(false);
    await subscriber.quit().catch(() => undefined);
  };
}
