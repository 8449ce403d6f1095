import type { Redis } from 'ioredis';
import type { Binding, CallRestriction } from '../domain/binding-rules';
import type { NumberHasher } from '../domain/number-hash';
import { LuaScript } from './redis';
import { redisKeys } from './keys';

/**
 * Where a call to X goes, keyed the way calls are routed: (X, caller). Lives in Redis so the
 * routing decision never waits on MySQL; MySQL stays the source of truth and the index is
 * rebuilt from it when Redis has lost it. Each entry expires with its binding (PEXPIREAT), and a
 * lookup also checks the expiry itself, so a binding stops routing at its expiry to the
 * millisecond, whatever Redis's expiry sweep or the MySQL cleanup is doing.
 */
export interface RouteTarget {
  readonly bindingId: string;
  readonly tenantId: string;
  readonly kind: 'axb' | 'xb' | 'callback';
  /** The real number to connect. */
  readonly target: string;
  /** The party the caller is, in the binding: 'a', 'b', or 'any' (an XB caller). */
  readonly callerRole: 'a' | 'b' | 'any';
  readonly restriction: CallRestriction;
  readonly record: boolean;
  readonly maxDurationSeconds: number | null;
  readonly announcement: string | null;
  readonly userData: string | null;
  readonly expiresAt: number;
  /** XB: callers allowed (empty: anyone), as keyed hashes of their numbers. */
  readonly allowList: readonly string[];
}

export type RouteDecision =
  | { readonly route: RouteTarget }
  | { readonly refused: 'unbound' | 'restricted'; readonly binding?: RouteTarget };

/** A decision, and whether the index was complete when it was read. */
export interface CheckedRouteDecision {
  readonly decision: RouteDecision;
  readonly complete: boolean;
}

/** What the index needs of a binding. */
export type IndexableBinding = Omit<Binding, 'requestId' | 'state'>;

const ANY_CALLER = '*';

/** Inside MULTI with the plain sets, so sent as source: one EVAL per callback binding. */
const PUT_CALLBACK_ROUTE = LuaScript.load('put-callback-route');

/** Deletes a route only while it still points at the given binding (a newer binding may have replaced it). */
const REMOVE_OWN_ROUTE = LuaScript.load('remove-own-route');

export class RouteIndex {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** Callers appear in key names (and XB allow-lists) only as this keyed hash. */
    private readonly hash: NumberHasher,
  ) {}

  private key(x: string, caller: string): string {
    return redisKeys(this.prefix).route(x, caller === ANY_CALLER ? ANY_CALLER : this.hash(caller));
  }

  private get readyKey(): string {
    return redisKeys(this.prefix).routeIndexReady;
  }

  private entries(b: IndexableBinding): Array<[string, RouteTarget]> {
    const base = {
      bindingId: b.id,
      tenantId: b.tenantId,
      kind: b.kind,
      restriction: b.restriction,
      record: b.record,
      maxDurationSeconds: b.maxDurationSeconds,
      announcement: b.announcement,
      userData: b.userData,
      expiresAt: b.expiresAt,
      allowList: b.allowList.map(this.hash),
    };
    if (b.kind === 'xb') return [[this.key(b.x, ANY_CALLER), { ...base, target: b.b, callerRole: 'any' }]];
    // An AXB or callback binding always has A; one without it routes nowhere.
    if (b.a === null) return [];
    const out: Array<[string, RouteTarget]> = [[this.key(b.x, b.b), { ...base, target: b.a, callerRole: 'b' }]];
    // A callback binding only lets B reach A back; A calling X reaches nobody through it.
    if (b.kind === 'axb') out.push([this.key(b.x, b.a), { ...base, target: b.b, callerRole: 'a' }]);
    return out;
  }

  /**
   * Adds a binding's routes. A callback binding replaces only an older callback route (B reaches
   * whoever called last), never an AXB or XB route: the same rule MySQL applies.
   */
  async put(b: IndexableBinding): Promise<void> {
    const multi = this.redis.multi();
    for (const [key, route] of this.entries(b)) {
      if (b.kind === 'callback') multi.eval(PUT_CALLBACK_ROUTE.source, 1, key, JSON.stringify(route), String(b.expiresAt));
      else multi.set(key, JSON.stringify(route), 'PXAT', b.expiresAt);
    }
    await multi.exec();
  }

  /** Removes a binding's routes (only those still pointing at this binding). */
  async remove(b: IndexableBinding): Promise<void> {
    for (const [key] of this.entries(b)) {
      await REMOVE_OWN_ROUTE.run(this.redis, [key], [b.id]);
    }
  }

  async lookup(x: string, caller: string, now: number = Date.now()): Promise<RouteDecision> {
    const [own, xb] = await this.redis.mget(this.key(x, caller), this.key(x, ANY_CALLER));
    return this.decide(parsed(own), parsed(xb), caller, now);
  }

  /**
   * lookup(), and in the same round trip (one MGET) whether the index was complete when read: a
   * miss in an incomplete index says nothing about MySQL.
   */
  async lookupChecked(x: string, caller: string, now: number = Date.now()): Promise<CheckedRouteDecision> {
    const [own, xb, ready] = await this.redis.mget(this.key(x, caller), this.key(x, ANY_CALLER), this.readyKey);
    return { decision: this.decide(parsed(own), parsed(xb), caller, now), complete: typeof ready === 'string' };
  }

  /**
   * The decision for a caller from the given bindings (read from MySQL while the index is being
   * rebuilt): the routes they would put in the index, decided exactly as a lookup decides them.
   */
  decideFromBindings(bindings: readonly IndexableBinding[], x: string, caller: string, now: number = Date.now()): RouteDecision {
    const own = this.key(x, caller);
    const exclusive = this.key(x, ANY_CALLER);
    let direct: RouteTarget | null = null;
    let xb: RouteTarget | null = null;
    for (const b of bindings) {
      for (const [key, route] of this.entries(b)) {
        if (key === own) direct = route;
        else if (key === exclusive) xb = route;
      }
    }
    return this.decide(direct, xb, caller, now);
  }

  /** The routing rules: the caller's own route first (unless past expiry), then X's XB route; restriction and allow-list. */
  private decide(direct: RouteTarget | null, exclusive: RouteTarget | null, caller: string, now: number): RouteDecision {
    if (direct && direct.expiresAt > now) {
      const allowed =
        direct.restriction === 'both' ||
        (direct.restriction === 'a_to_b' && direct.callerRole === 'a') ||
        (direct.restriction === 'b_to_a' && direct.callerRole === 'b');
      return allowed ? { route: direct } : { refused: 'restricted', binding: direct };
    }
    if (exclusive && exclusive.expiresAt > now && exclusive.target !== caller) {
      if (exclusive.allowList.length > 0 && !exclusive.allowList.includes(this.hash(caller))) return { refused: 'restricted', binding: exclusive };
      return { route: exclusive };
    }
    return { refused: 'unbound' };
  }

  /** true when the index is known complete (it was built, and Redis has not lost it since). */
  async isReady(): Promise<boolean> {
    return (await this.redis.exists(this.readyKey)) === 1;
  }

  /** Rebuilds every route from the bindings that route now (from MySQL), then marks the index complete. */
  async rebuild(active: readonly IndexableBinding[], now: number = Date.now()): Promise<number> {
    for (const b of active) await this.put(b);
    await this.redis.set(this.readyKey, String(now));
    return active.length;
  }
}

function parsed(stored: string | null | undefined): RouteTarget | null {
  return stored ? (JSON.parse(stored) as RouteTarget) : null;
}
