import type { RedisClient } from './redis';
import type { Binding, CallRestriction } from '../domain/binding-rules';
import type { NumberHasher } from '../domain/number-hash';
import { setTimeout as sleep } from 'node:timers/promises';
import { getMany, LuaScript, scanKeys } from './redis';
import { redisKeys, routeChangesChannel } from './keys';
import type { RouteReadCache, RouteWriteBarrier } from './route-cache';

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
  readonly kind: 'axb' | 'xb' | 'callback' | 'axe';
  /** The real number to connect. */
  readonly target: string;
  /** The party the caller is, in the binding: 'a', 'b', or 'any' (an XB caller, or one who keyed an AXE extension). */
  readonly callerRole: 'a' | 'b' | 'any';
  readonly restriction: CallRestriction;
  readonly record: boolean;
  readonly maxDurationSeconds: number | null;
  /** Absent in routes written before it existed: the platform's default. */
  readonly endWarningSeconds?: number | null;
  readonly announcement: string | null;
  readonly userData: string | null;
  readonly expiresAt: number;
  /** XB: callers allowed (empty: anyone), as keyed hashes of their numbers. */
  readonly allowList: readonly string[];
}

/** X takes AXE extensions (and the caller has no route of its own on X): ask for this many digits. */
export interface ExtensionPrompt {
  /** X's tenant: a wrong extension is its refused call. */
  readonly tenantId: string;
  readonly extensionLength: number;
  /** The latest expiry of the AXE bindings written on X. */
  readonly expiresAt: number;
}

export type RouteDecision =
  | { readonly route: RouteTarget }
  | { readonly refused: 'unbound' | 'restricted'; readonly binding?: RouteTarget }
  | { readonly extension: ExtensionPrompt };

/** Where the extension a caller keyed on X goes. */
export type ExtensionDecision =
  | { readonly route: RouteTarget }
  | { readonly refused: 'wrong_extension' | 'restricted'; readonly binding?: RouteTarget };

export interface CheckedExtensionDecision {
  readonly decision: ExtensionDecision;
  readonly complete: boolean;
}

/** A decision, and whether the index was complete when it was read. */
export interface CheckedRouteDecision {
  readonly decision: RouteDecision;
  readonly complete: boolean;
}

/** What the index needs of a binding. */
export type IndexableBinding = Omit<Binding, 'requestId' | 'state'>;

/** A binding as MySQL has it now, with the version of its last routing change (route_version). */
export type VersionedBinding = IndexableBinding & { readonly state?: Binding['state']; readonly routeVersion: number };

/**
 * One committed routing change (an outbox row): the binding as it is now, routed if active and
 * not expired, taken away otherwise; and the routes it had before an update changed its numbers.
 */
export interface RouteChange {
  readonly version: number;
  readonly binding: VersionedBinding;
  readonly previous?: IndexableBinding | null;
}

/** What a reconcile found: routes that disagreed with MySQL, and how many of them it put right. */
export interface RouteDrift {
  readonly found: number;
  readonly repaired: number;
}

/** A route as stored: the target plus the version of the change that wrote it; or a removal's tombstone. */
interface StoredRoute {
  readonly version?: number;
  readonly removed?: boolean;
  readonly bindingId?: string;
  readonly kind?: RouteTarget['kind'];
  readonly expiresAt?: number;
}

const ANY_CALLER = '*';

/** Routes a reconcile compares between two pauses. */
const RECONCILE_SLICE = 500;
/**
 * The share of the time a reconcile may work: after each slice it rests for the rest. A whole pass at
 * once (Redis scanned, MySQL read, every route compared) took 16 s of both cores at 150,000 bindings
 * and cut the bind rate to a third meanwhile; paced, it costs the same work spread thinner.
 */
const RECONCILE_SHARE = 0.2;

/** Every write to a route: versioned, so an older change never overwrites a newer (see the script). */
const APPLY_ROUTE_CHANGE = LuaScript.load('apply-route-change');
/** The marker of an X that takes AXE extensions: only ever extended, never a route (see the script). */
const MARK_EXTENSION_NUMBER = LuaScript.load('mark-extension-number');

type RouteWrite =
  | { readonly op: 'put' | 'provisional'; readonly key: string; readonly version: number; readonly bindingId: string; readonly route: RouteTarget }
  | { readonly op: 'remove'; readonly key: string; readonly version: number; readonly bindingId: string; readonly expiresAt: number }
  | { readonly op: 'mark'; readonly key: string; readonly prompt: ExtensionPrompt };

/** What one lookup reads for (X, caller): the caller's own route, X's XB route, X's extension marker. */
export interface RouteRead {
  readonly own: RouteTarget | null;
  readonly xb: RouteTarget | null;
  readonly marker: ExtensionPrompt | null;
}

export class RouteIndex {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    /** Callers appear in key names (and XB allow-lists) only as this keyed hash. */
    private readonly hash: NumberHasher,
    /** The routing path's local cache of reads (route-cache.ts); every write here invalidates it. */
    private readonly cache?: RouteReadCache<RouteRead>,
    /** Every controller's route cache has heard a write before it resolves (route-cache.ts). */
    private readonly barrier?: Pick<RouteWriteBarrier, 'afterWrites'>,
  ) {}

  /** put()s made in this turn of the event loop, written together at its end. */
  private puts: { writes: RouteWrite[]; written: Promise<void> } | null = null;

  private key(x: string, caller: string): string {
    return redisKeys(this.prefix).route(x, caller === ANY_CALLER ? ANY_CALLER : this.hash(caller));
  }

  private extensionKey(x: string, extension: string): string {
    return redisKeys(this.prefix).routeByExtension(x, extension);
  }

  private markerKey(x: string): string {
    return redisKeys(this.prefix).extensionNumber(x);
  }

  /** The marker an AXE binding puts on its X while it routes. */
  private static promptOf(b: IndexableBinding): ExtensionPrompt | null {
    if (b.kind !== 'axe' || !b.extension) return null;
    return { tenantId: b.tenantId, extensionLength: b.extension.length, expiresAt: b.expiresAt };
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
      endWarningSeconds: b.endWarningSeconds,
      announcement: b.announcement,
      userData: b.userData,
      expiresAt: b.expiresAt,
      allowList: b.allowList.map(this.hash),
    };
    if (b.kind === 'xb') return [[this.key(b.x, ANY_CALLER), { ...base, target: b.b, callerRole: 'any' }]];
    if (b.kind === 'axe') {
      // Whoever keys the extension reaches B; with A set, B dialling X reaches A by the caller pair.
      if (!b.extension) return [];
      const out: Array<[string, RouteTarget]> = [[this.extensionKey(b.x, b.extension), { ...base, target: b.b, callerRole: 'any' }]];
      if (b.a !== null) out.push([this.key(b.x, b.b), { ...base, target: b.a, callerRole: 'b' }]);
      return out;
    }
    // An AXB or callback binding always has A; one without it routes nowhere.
    if (b.a === null) return [];
    const out: Array<[string, RouteTarget]> = [[this.key(b.x, b.b), { ...base, target: b.a, callerRole: 'b' }]];
    // A callback binding only lets B reach A back; A calling X reaches nobody through it.
    if (b.kind === 'axb') out.push([this.key(b.x, b.a), { ...base, target: b.b, callerRole: 'a' }]);
    return out;
  }

  /** Whether a binding as MySQL has it should route now. */
  private static routable(b: VersionedBinding, now: number): boolean {
    return (b.state ?? 'active') === 'active' && b.expiresAt > now;
  }

  /** The writes that make Redis say what one change says: old routes away first, then the binding's own. */
  private writesOf(change: RouteChange, now: number): RouteWrite[] {
    const { binding, version } = change;
    const own = this.entries(binding);
    const writes: RouteWrite[] = [];
    if (change.previous) {
      const kept = new Set(own.map(([key]) => key));
      for (const [key] of this.entries(change.previous)) {
        if (!kept.has(key) || !RouteIndex.routable(binding, now)) {
          writes.push({ op: 'remove', key, version, bindingId: change.previous.id, expiresAt: change.previous.expiresAt });
        }
      }
    }
    for (const [key, route] of own) {
      writes.push(
        RouteIndex.routable(binding, now)
          ? { op: 'put', key, version: binding.routeVersion, bindingId: binding.id, route }
          : { op: 'remove', key, version: binding.routeVersion, bindingId: binding.id, expiresAt: binding.expiresAt },
      );
    }
    const prompt = RouteIndex.promptOf(binding);
    if (prompt && RouteIndex.routable(binding, now)) writes.push({ op: 'mark', key: this.markerKey(binding.x), prompt });
    return writes;
  }

  /**
   * Sends the writes together (one script call for every route on a single Redis, one per slot on
   * a cluster, in one pipeline); how many routes changed. Every call is sent even when one fails;
   * then the first failure is thrown.
   */
  private async write(writes: readonly RouteWrite[]): Promise<number> {
    if (writes.length === 0) return 0;
    const channel = routeChangesChannel(this.prefix);
    // The local cache forgets these Xs now (reads in flight are not kept) and again once Redis has
    // the writes (a read sent meanwhile may have seen the old routes); other controllers hear it published.
    const forget = (): void => {
      if (this.cache) for (const w of writes) this.cache.invalidateKey(w.key);
    };
    forget();
    const marks = writes.filter((w): w is Extract<RouteWrite, { op: 'mark' }> => w.op === 'mark');
    const changes = writes.filter((w): w is Exclude<RouteWrite, { op: 'mark' }> => w.op !== 'mark');
    const results = (
      await Promise.all([
        APPLY_ROUTE_CHANGE.runGrouped(this.redis, changes, (w) => w.key, (group) => ({
          keys: group.map((w) => w.key),
          args: [
            channel,
            ...group.flatMap((w) =>
              w.op === 'remove'
                ? [w.op, String(w.version), w.bindingId, '', String(w.expiresAt)]
                : [w.op, String(w.version), w.bindingId, routeJson(w.op === 'put' ? w.version : 0, w.route), String(w.route.expiresAt)],
            ),
          ],
        })),
        MARK_EXTENSION_NUMBER.runMany(
          this.redis,
          marks.map((w) => ({ keys: [w.key], args: [w.prompt.tenantId, String(w.prompt.extensionLength), String(w.prompt.expiresAt), channel] })),
        ),
      ]).finally(forget)
    ).flat();
    const failed = results.find((r) => r.error !== undefined);
    if (failed?.error) throw failed.error;
    await this.barrier?.afterWrites();
    return results.filter((r) => r.value === 1).length;
  }

  /**
   * Applies committed routing changes (outbox rows), idempotently: applying one again, or an older
   * one after a newer, changes nothing. Resolves once Redis has every one of them.
   */
  async apply(changes: readonly RouteChange[], now: number = Date.now()): Promise<void> {
    await this.write(changes.flatMap((c) => this.writesOf(c, now)));
  }

  /**
   * Makes a binding's routes present at once, before its change has a version: the route a
   * click-to-dial call leaves for B when it ends, before the CDR batch writes it to MySQL. A
   * callback route replaces only an older callback route (B reaches whoever called last), never an
   * AXB or XB route and never a removal: the same rule MySQL applies. Any other binding gets
   * version 0, which every committed change overrides (tests and benchmarks seed routes this way).
   */
  async put(b: IndexableBinding): Promise<void> {
    const prompt = RouteIndex.promptOf(b);
    const writes: RouteWrite[] = [
      ...this.entries(b).map(([key, route]): RouteWrite => ({ op: b.kind === 'callback' ? 'provisional' : 'put', key, version: 0, bindingId: b.id, route })),
      ...(prompt ? [{ op: 'mark', key: this.markerKey(b.x), prompt } as const] : []),
    ];
    // The calls of one CDR job settle together: their callback routes go in one script call (and one
    // barrier), in the order put. A failure fails every put of the turn; the CDR batch's outbox rows
    // write those routes again either way.
    if (!this.puts) {
      const turn: RouteWrite[] = [];
      const written = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        this.puts = null;
        await this.write(turn);
      });
      this.puts = { writes: turn, written };
    }
    this.puts.writes.push(...writes);
    await this.puts.written;
  }

  async lookup(x: string, caller: string, now: number = Date.now()): Promise<RouteDecision> {
    const [own, xb, marker] = await this.redis.mget(this.key(x, caller), this.key(x, ANY_CALLER), this.markerKey(x));
    return this.decide(parsed(own), parsed(xb), caller, now, parsedPrompt(marker));
  }

  /** Where the extension a caller keyed on X goes, and whether the index was complete when read (sent together). */
  async lookupExtensionChecked(x: string, extension: string, now: number = Date.now()): Promise<CheckedExtensionDecision> {
    const [route, ready] = await Promise.all([this.redis.get(this.extensionKey(x, extension)), this.redis.get(this.readyKey)]);
    return { decision: RouteIndex.decideExtension(parsed(route), now), complete: typeof ready === 'string' };
  }

  async lookupExtension(x: string, extension: string, now: number = Date.now()): Promise<ExtensionDecision> {
    return (await this.lookupExtensionChecked(x, extension, now)).decision;
  }

  /** The extension decision from the given bindings (read from MySQL while the index is being rebuilt), as lookupExtension decides it. */
  decideExtensionFromBindings(bindings: readonly IndexableBinding[], x: string, extension: string, now: number = Date.now()): ExtensionDecision {
    const wanted = this.extensionKey(x, extension);
    const route = bindings.flatMap((b) => this.entries(b)).find(([key]) => key === wanted)?.[1] ?? null;
    return RouteIndex.decideExtension(route, now);
  }

  /**
   * The extension rule: the binding holding it, unless past its expiry; a binding that only lets B
   * call A (restriction b_to_a) refuses whoever keys it.
   */
  private static decideExtension(route: RouteTarget | null, now: number): ExtensionDecision {
    // A removal's tombstone has no expiry: it routes nothing, like a route past its expiry.
    if (!route || !(route.expiresAt > now)) return { refused: 'wrong_extension' };
    return route.restriction === 'b_to_a' ? { refused: 'restricted', binding: route } : { route };
  }

  /**
   * lookup(), and alongside it (sent together, so no extra wait) whether the index was complete when
   * read: a miss in an incomplete index says nothing about MySQL. The ready marker is read on its own:
   * in a cluster it lives in another slot than X's routes.
   */
  async lookupChecked(x: string, caller: string, now: number = Date.now()): Promise<CheckedRouteDecision> {
    // A read is only ever kept from a complete index, so a kept one answers as complete.
    const kept = this.cache?.get(x, caller);
    if (kept) return { decision: this.decide(kept.own, kept.xb, caller, now, kept.marker), complete: true };
    const token = this.cache?.begin();
    const [[own, xb, marker], ready] = await Promise.all([
      this.redis.mget(this.key(x, caller), this.key(x, ANY_CALLER), this.markerKey(x)),
      this.redis.get(this.readyKey),
    ]);
    const read: RouteRead = { own: parsed(own), xb: parsed(xb), marker: parsedPrompt(marker) };
    const complete = typeof ready === 'string';
    if (complete && token !== undefined) this.cache?.keep(token, x, caller, read);
    return { decision: this.decide(read.own, read.xb, caller, now, read.marker), complete };
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
    let prompt: ExtensionPrompt | null = null;
    for (const b of bindings) {
      for (const [key, route] of this.entries(b)) {
        if (key === own) direct = route;
        else if (key === exclusive) xb = route;
      }
      prompt ??= b.x === x ? RouteIndex.promptOf(b) : null;
    }
    return this.decide(direct, xb, caller, now, prompt);
  }

  /**
   * The routing rules: the caller's own route first (unless past expiry), then X's XB route;
   * restriction and allow-list; then, on an X that takes AXE extensions, the caller is asked for one.
   */
  private decide(direct: RouteTarget | null, exclusive: RouteTarget | null, caller: string, now: number, prompt: ExtensionPrompt | null = null): RouteDecision {
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
    if (prompt && prompt.expiresAt > now) return { extension: prompt };
    return { refused: 'unbound' };
  }

  /** true when the index is known complete (it was built, and Redis has not lost it since). */
  async isReady(): Promise<boolean> {
    return (await this.redis.exists(this.readyKey)) === 1;
  }

  /**
   * Rebuilds every route from the bindings that route now (read from MySQL), then marks the index
   * complete. Each route is written at its binding's version, so a binding unbound while this ran
   * (a newer version, already in Redis) is never brought back.
   */
  async rebuild(active: readonly (IndexableBinding & { readonly routeVersion?: number })[], now: number = Date.now()): Promise<number> {
    const batch = 500;
    for (let i = 0; i < active.length; i += batch) {
      await this.apply(active.slice(i, i + batch).map((b) => ({ version: b.routeVersion ?? 0, binding: { ...b, routeVersion: b.routeVersion ?? 0 } })), now);
    }
    await this.redis.set(this.readyKey, String(now));
    return active.length;
  }

  /**
   * Compares the index with MySQL and puts right what differs: a route of a binding that no longer
   * routes is taken away, a binding's missing or outdated route is written again. Redis is read
   * first, MySQL after: a route seen in Redis was applied after its commit, so MySQL's answer read
   * later already includes it. Every repair is a versioned write, so a change made meanwhile wins.
   */
  async reconcile(
    readActive: () => Promise<readonly VersionedBinding[]> | AsyncIterable<readonly VersionedBinding[]>,
    now: number = Date.now(),
    /** Ends a paced pass early (the controller stopping): it rejects with the signal's reason, nothing repaired. */
    stopping?: AbortSignal,
  ): Promise<RouteDrift> {
    // Tens of thousands of routes: the work is done a slice at a time, so that requests and calls
    // are served in between instead of waiting out the whole comparison.
    let sinceYield = 0;
    let sliceStart = performance.now();
    const pause = async (n: number): Promise<void> => {
      stopping?.throwIfAborted();
      sinceYield += n;
      if (sinceYield < RECONCILE_SLICE) return;
      sinceYield = 0;
      const worked = performance.now() - sliceStart;
      await sleep(worked * (1 / RECONCILE_SHARE - 1), undefined, { signal: stopping });
      sliceStart = performance.now();
    };
    const seen = new Map<string, StoredRoute>();
    for await (const keys of scanKeys(this.redis, redisKeys(this.prefix).routePattern)) {
      const routeKeys = keys.filter((k) => k !== this.readyKey);
      const values = await getMany(this.redis, routeKeys);
      routeKeys.forEach((k, i) => {
        const v = values[i];
        if (v) seen.set(k, JSON.parse(v) as StoredRoute);
      });
      await pause(routeKeys.length);
    }
    const expected = new Map<string, { binding: VersionedBinding; route: RouteTarget }>();
    const expectedPrompts = new Map<string, ExtensionPrompt>();
    const read = readActive();
    for await (const page of Symbol.asyncIterator in read ? read : [await read]) {
      for (const b of page) {
        if (!RouteIndex.routable(b, now)) continue;
        for (const [key, route] of this.entries(b)) expected.set(key, { binding: b, route });
        const prompt = RouteIndex.promptOf(b);
        const key = this.markerKey(b.x);
        if (prompt && (expectedPrompts.get(key)?.expiresAt ?? 0) < prompt.expiresAt) expectedPrompts.set(key, prompt);
        await pause(1);
      }
    }
    const repairs: RouteWrite[] = [];
    for (const [key, held] of seen) {
      await pause(1);
      if (held.removed || expected.has(key) || (held.expiresAt ?? 0) <= now) continue;
      // A callback route made routable as its call ended: its CDR batch confirms it (with a version) shortly.
      if ((held.version ?? 0) === 0 && held.kind === 'callback') continue;
      // Not a route MySQL has: away, at the version seen, so a newer write made meanwhile is left alone.
      repairs.push({ op: 'remove', key, version: held.version ?? 0, bindingId: held.bindingId ?? '', expiresAt: held.expiresAt ?? now });
    }
    const holds = (held: StoredRoute | undefined, want: { binding: VersionedBinding; route: RouteTarget }): boolean =>
      // Newer than what MySQL said when read: a change made since, not drift.
      held !== undefined &&
      ((held.version ?? 0) > want.binding.routeVersion || (!held.removed && JSON.stringify(held) === routeJson(want.binding.routeVersion, want.route)));
    const missing: string[] = [];
    for (const [key, want] of expected) {
      await pause(1);
      if (!holds(seen.get(key), want)) missing.push(key);
    }
    // Looked at again now: a binding made while Redis was being scanned has its routes written by its
    // own request, not missing. Under load that was every binding of the pass's seconds, each "repaired".
    for (let i = 0; i < missing.length; i += RECONCILE_SLICE) {
      const keys = missing.slice(i, i + RECONCILE_SLICE);
      const current = await getMany(this.redis, keys);
      keys.forEach((key, j) => {
        const want = expected.get(key);
        const stored = current[j];
        if (!want || holds(stored ? (JSON.parse(stored) as StoredRoute) : undefined, want)) return;
        repairs.push({ op: 'put', key, version: want.binding.routeVersion, bindingId: want.binding.id, route: want.route });
      });
      await pause(keys.length);
    }
    // The markers of Xs that take extensions: missing (Redis lost them) or short of their latest binding.
    const markerKeys = [...expectedPrompts.keys()];
    for (let i = 0; i < markerKeys.length; i += 1000) {
      const keys = markerKeys.slice(i, i + 1000);
      const held = await getMany(this.redis, keys);
      keys.forEach((key, j) => {
        const want = expectedPrompts.get(key);
        const have = parsedPrompt(held[j]);
        if (!want) return;
        if (have && have.tenantId === want.tenantId && have.extensionLength === want.extensionLength && have.expiresAt >= want.expiresAt) return;
        repairs.push({ op: 'mark', key, prompt: want });
      });
    }
    // In slices: one script call for tens of thousands of routes overflowed the stack building its arguments.
    let repaired = 0;
    for (let i = 0; i < repairs.length; i += RECONCILE_SLICE) repaired += await this.write(repairs.slice(i, i + RECONCILE_SLICE));
    return { found: repairs.length, repaired };
  }
}

/** A route as stored: its version first (the provisional write of a callback rewrites it in place), then the target. */
function routeJson(version: number, route: RouteTarget): string {
  return JSON.stringify({ version, ...route });
}

function parsed(stored: string | null | undefined): RouteTarget | null {
  return stored ? (JSON.parse(stored) as RouteTarget) : null;
}

function parsedPrompt(stored: string | null | undefined): ExtensionPrompt | null {
  if (!stored) return null;
  const p = JSON.parse(stored) as Partial<ExtensionPrompt>;
  // Redis is not where trust lives: a marker that does not say a length of 3-6 digits asks for nothing.
  const length = Number(p.extensionLength);
  if (typeof p.tenantId !== 'string' || !Number.isInteger(length) || length < 3 || length > 6) return null;
  return { tenantId: p.tenantId, extensionLength: length, expiresAt: Number(p.expiresAt) };
}
