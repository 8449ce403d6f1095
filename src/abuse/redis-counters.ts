import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../stores/redis';
import { LuaScript, type ScriptReply } from '../stores/redis';

/**
 * Sliding-window limit over several keys at once (one sorted set of admission times per counted
 * number): either every key is under its limit and all are counted, or none is counted and the
 * first key over its limit is named. Atomic, so concurrent requests on several controllers
 * cannot slip past a limit together.
 * KEYS: the counters. ARGV: now (ms), window (ms), a unique member, then one limit per key.
 * Returns {0, 0} when admitted, else {index of the key over its limit (1-based), ms until it frees}.
 */
const TAKE_SLIDING = LuaScript.load('take-sliding-window');

/** Fixed window: INCR, and the window's expiry set by the request that opened it. Returns the count. */
const TAKE_FIXED = LuaScript.load('count-in-window');

/**
 * Distinct parties one number reached within a sliding window (sorted set: party -> last
 * contact), trimmed to threshold + 1 entries so a hot number costs bounded memory. The first
 * time the count exceeds the threshold, the marker (SET NX, one window long) is taken: one flag
 * per number per window, however many controllers see the contacts.
 * Several numbers in one call (see the script).
 */
const NOTE_PARTIES = LuaScript.load('note-parties');

/** A caller's connected and short calls in a window (robocall pattern); see the script. */
const NOTE_SHORT_CALLS = LuaScript.load('note-short-calls');

/** A tenant's bindings this minute against the EWMA of its past minutes; see the script. */
const NOTE_BINDING_RATE = LuaScript.load('note-binding-rate');

export interface CountedKey {
  readonly key: string;
  readonly limit: number;
}

export type TakeResult = { readonly admitted: true } | { readonly admitted: false; readonly index: number; readonly retryAfterMs: number };

/** One sliding-window take of a batch. */
export interface SlidingTake {
  readonly keys: readonly CountedKey[];
  readonly windowMs: number;
  readonly now: number;
}

/** One contact note of a batch (see noteParties). */
export interface PartiesNote {
  readonly partiesKey: string;
  readonly markerKey: string;
  readonly parties: readonly string[];
  readonly threshold: number;
  readonly windowMs: number;
  readonly now: number;
}

/** One binding of a tenant noted (see noteBinding). */
export interface BindingNote {
  readonly keys: { readonly state: string; readonly marker: string };
  /** Bindings noted at once (a batch's for one tenant); 1 when absent. */
  readonly count?: number;
  readonly rule: { readonly factor: number; readonly minPerMinute: number; readonly baselineMinutes: number };
  readonly now: number;
}

/** A batch's outcome, one per item: its answer, or the Redis error that item met. */
export type Outcome<T> = T | Error;

/** The answer of a batch of one, thrown when it is an error. */
function only<T>(outcomes: ReadonlyArray<Outcome<T>>): T {
  const [first] = outcomes;
  if (first === undefined) throw new Error('no outcome');
  if (first instanceof Error) throw first;
  return first;
}

function outcomes<T>(replies: readonly ScriptReply[], read: (value: unknown) => T): Array<Outcome<T>> {
  return replies.map((r) => (r.error !== undefined ? r.error : read(r.value)));
}

export class RedisAbuseCounters {
  constructor(private readonly redis: RedisClient) {}

  /** Counts one event on every key if all are under their limits within `windowMs`; otherwise counts nothing. */
  async takeSliding(keys: readonly CountedKey[], windowMs: number, now: number): Promise<TakeResult> {
    return only(await this.takeSlidingMany([{ keys, windowMs, now }]));
  }

  /** takeSliding for each item, in order (as if one after the other), in one round trip. */
  async takeSlidingMany(takes: readonly SlidingTake[]): Promise<Array<Outcome<TakeResult>>> {
    const sent = takes.filter((t) => t.keys.length > 0);
    const replies = outcomes(
      await TAKE_SLIDING.runMany(
        this.redis,
        sent.map(({ keys, windowMs, now }) => ({
          keys: keys.map((k) => k.key),
          args: [String(now), String(windowMs), `${now}:${randomUUID()}`, ...keys.map((k) => String(k.limit))],
        })),
      ),
      (value): TakeResult => {
        const [index, retryAfterMs] = value as [number, number];
        return index === 0 ? { admitted: true } : { admitted: false, index: index - 1, retryAfterMs };
      },
    );
    let next = 0;
    return takes.map((t) => (t.keys.length === 0 ? { admitted: true } : (replies[next++] ?? new Error('no reply'))));
  }

  /** One event in a fixed window (the key names the window; it expires `ttlMs` after its first event); `count` includes it. */
  async takeFixed(key: string, ttlMs: number): Promise<{ count: number }> {
    const count = (await TAKE_FIXED.run(this.redis, [key], [String(ttlMs)])) as number;
    return { count };
  }

  /** Notes contacts with `parties`; `flagged` is true for exactly one call per window once the threshold is passed. */
  async noteParties(
    partiesKey: string,
    markerKey: string,
    parties: readonly string[],
    threshold: number,
    windowMs: number,
    now: number,
  ): Promise<{ distinct: number; flagged: boolean }> {
    return only(await this.notePartiesMany([{ partiesKey, markerKey, parties, threshold, windowMs, now }]));
  }

  /** noteParties for each item, in order, in one round trip. */
  async notePartiesMany(notes: readonly PartiesNote[]): Promise<Array<Outcome<{ distinct: number; flagged: boolean }>>> {
    return outcomes(
      await NOTE_PARTIES.runGrouped(this.redis, notes, (n) => n.partiesKey, (group) => ({
        keys: group.flatMap((n) => [n.partiesKey, n.markerKey]),
        args: group.flatMap((n) => [String(n.now), String(n.windowMs), String(n.threshold), String(n.parties.length), ...n.parties]),
      })),
      (value) => {
        const [distinct, flagged] = value as [number, number];
        return { distinct, flagged: flagged === 1 };
      },
    );
  }

  /** Notes one connected call (short or not); `flagged` once per window when short calls reach the share. */
  async noteShortCall(
    keys: { connected: string; short: string; marker: string },
    callId: string,
    isShort: boolean,
    rule: { minCalls: number; sharePercent: number; windowMs: number },
    now: number,
  ): Promise<{ connected: number; short: number; flagged: boolean }> {
    const [connected, short, flagged] = (await NOTE_SHORT_CALLS.run(
      this.redis,
      [keys.connected, keys.short, keys.marker],
      [String(now), String(rule.windowMs), callId, isShort ? '1' : '0', String(rule.minCalls), String(rule.sharePercent)],
    )) as [number, number, number];
    return { connected, short, flagged: flagged === 1 };
  }

  /** Notes one binding of a tenant; `flagged` at most once a minute when this minute is far above the usual rate (null until a first minute is complete). */
  async noteBinding(
    keys: BindingNote['keys'],
    rule: BindingNote['rule'],
    now: number,
  ): Promise<{ count: number; usualPerMinute: number | null; flagged: boolean }> {
    return only(await this.noteBindingMany([{ keys, rule, now }]));
  }

  /** noteBinding for each item, in order, in one round trip. */
  async noteBindingMany(notes: readonly BindingNote[]): Promise<Array<Outcome<{ count: number; usualPerMinute: number | null; flagged: boolean }>>> {
    return outcomes(
      await NOTE_BINDING_RATE.runMany(
        this.redis,
        notes.map(({ keys, rule, now, count }) => ({
          keys: [keys.state, keys.marker],
          args: [
            String(Math.floor(now / 60_000)),
            String(2 / (rule.baselineMinutes + 1)),
            String(rule.factor),
            String(rule.minPerMinute),
            String(rule.baselineMinutes * 4 * 60_000),
            String(count ?? 1),
          ],
        })),
      ),
      (value) => {
        const [count, usual, flagged] = value as [number, string, number];
        return { count, usualPerMinute: usual === '' ? null : Number(usual), flagged: flagged === 1 };
      },
    );
  }
}
