import type { EslEvent } from '../esl/event';
import type { SwitchClock } from '../esl/switch-clock';

/** The events the call flows consume. Nothing else is sent by the switch. */
export const SUBSCRIBED_EVENTS = [
  'CHANNEL_PROGRESS',
  'CHANNEL_ANSWER',
  'CHANNEL_BRIDGE',
  'CHANNEL_HANGUP',
  'CHANNEL_HANGUP_COMPLETE',
  'CHANNEL_EXECUTE_COMPLETE',
  'BACKGROUND_JOB',
] as const;

/** The channel variable every leg a flow dials carries (its `{}`); nothing else of the switch's traffic is the flows' business. */
export const CALL_ID_VARIABLE = 'ng_call_id';

/** ESL filters: channel events only of legs that carry the call id (any value), so other channels on the switch cost nothing. */
export const CALL_EVENT_FILTERS: ReadonlyArray<readonly [string, string]> = [[`variable_${CALL_ID_VARIABLE}`, '/./']];

/**
 * What a call flow needs from a FreeSWITCH connection. EslClient provides it; flows never see
 * sockets, reconnects or reply correlation.
 */
export interface SwitchControl {
  /** `quick`: the command returns at once (`hash`, `sched_*`), so the switch may run it without a thread of its own. */
  api(command: string, opts?: { timeoutMs?: number; quick?: boolean }): Promise<string>;
  bgapi(command: string, opts?: { jobUuid?: string; timeoutMs?: number }): Promise<string>;
  execute(
    uuid: string,
    app: string,
    arg?: string,
    opts?: { eventUuid?: string; awaitCompletion?: boolean; timeoutMs?: number },
  ): Promise<EslEvent | undefined>;
  onChannel(uuid: string, listener: (e: EslEvent) => void): () => void;
  on(event: 'ready', listener: () => void): unknown;
  off(event: 'ready', listener: () => void): unknown;
  /** A switch of a fleet says `lost` (with the cause) when its calls are gone: unreachable too long, or restarted. */
  on(event: 'lost', listener: (cause: string) => void): unknown;
  off(event: 'lost', listener: (cause: string) => void): unknown;
  /** Set while the switch's calls are given up (see `lost`). */
  readonly lost?: string | null;
  /** The switch's times (its events' stamps, the figures it keeps) on this controller's clock. */
  readonly clock: Pick<SwitchClock, 'toLocal'>;
}

/**
 * The API command that plays the warning tone to both parties of the bridge of channel `uuid`,
 * `warningSeconds` before the talk-time cap ends it (`sched_broadcast`, run by the switch itself even
 * if the controller dies). null when there is no warning to give: none asked, no tone configured, or
 * a warning as long as the call itself. The tone is the operator's (config), never a tenant's text.
 */
export function endWarningCommand(uuid: string, maxDurationSeconds: number, warningSeconds: number, tone: string | undefined): string | null {
  if (!tone || !Number.isInteger(warningSeconds) || warningSeconds <= 0 || warningSeconds >= maxDurationSeconds) return null;
  return `sched_broadcast +${maxDurationSeconds - warningSeconds} ${uuid} ${tone} both`;
}

/**
 * Epoch ms of an event on this controller's clock: FreeSWITCH's stamp (Event-Date-Timestamp, in µs) moved by
 * how far the switch's clock runs from ours, so it compares with the controller's own times.
 */
export function eventTime(e: EslEvent, clock: Pick<SwitchClock, 'toLocal'>): number {
  const us = e.header('Event-Date-Timestamp');
  return us ? clock.toLocal(Math.floor(Number(us) / 1000)) : Date.now();
}

/**
 * Everything one leg (one channel uuid) has done, and a way to wait for what it does next.
 * Subscribed before the leg is dialled, so no event can be missed.
 */
export class LegWatch {
  private readonly seen: EslEvent[] = [];
  private readonly waiters = new Set<{ match: (e: EslEvent) => boolean; resolve: (e: EslEvent | undefined) => void }>();
  private readonly unsubscribe: () => void;

  constructor(
    switchControl: SwitchControl,
    readonly uuid: string,
  ) {
    this.unsubscribe = switchControl.onChannel(uuid, (e) => this.push(e));
  }

  private push(e: EslEvent): void {
    this.seen.push(e);
    for (const w of [...this.waiters]) {
      if (w.match(e)) {
        this.waiters.delete(w);
        w.resolve(e);
      }
    }
  }

  first(name: string): EslEvent | undefined {
    return this.seen.find((e) => e.name === name);
  }

  firstWhere(match: (e: EslEvent) => boolean): EslEvent | undefined {
    return this.seen.find(match);
  }

  /** Whether the switch has sent anything at all about this leg (a channel that was never created sends nothing). */
  get seenAny(): boolean {
    return this.seen.length > 0;
  }

  /** Resolves with the first matching event (already seen or future), or undefined after timeoutMs. */
  waitFor(name: string, timeoutMs: number, match: (e: EslEvent) => boolean = () => true): Promise<EslEvent | undefined> {
    return this.waitForAny((e) => e.name === name && match(e), timeoutMs);
  }

  /**
   * Resolves with the first event `match` accepts (already seen or future), whatever its name: one wait for
   * "whichever of these happens first". undefined after timeoutMs, or when the waits are abandoned.
   */
  waitForAny(match: (e: EslEvent) => boolean, timeoutMs: number): Promise<EslEvent | undefined> {
    const already = this.seen.find(match);
    if (already) return Promise.resolve(already);
    return new Promise((resolve) => {
      const waiter = {
        match,
        resolve: (e: EslEvent | undefined) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Wakes every waiter with undefined (e.g. the channel is known to be gone). */
  abandonWaits(): void {
    for (const w of [...this.waiters]) {
      this.waiters.delete(w);
      w.resolve(undefined);
    }
  }

  dispose(): void {
    this.unsubscribe();
    this.abandonWaits();
  }
}
