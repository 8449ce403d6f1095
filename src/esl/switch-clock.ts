/**
 * The switch's clock, read on this controller's. FreeSWITCH stamps every event with its own clock
 * (Event-Date-Timestamp), which can run seconds away from the system's: its timer drifts under load until
 * `fsctl sync_clock`. A stamp moved by `offset` lands on this controller's clock, so times of the switch
 * and of the controller can be compared and subtracted.
 *
 * The offset is the least (arrival − stamp) of the recent events: the skew plus the shortest transit seen.
 * "Recent" is the current window and the one before it (2 s each by default): a switch whose clock drifts or
 * steps is followed within two windows, at once when it steps forward. A switch in service sends events
 * every second (each call's, the answers to `status`), so the least lag of a window is a short transit.
 */
export class SwitchClock {
  private offsetMs = 0;
  private current = Infinity;
  private previous = Infinity;
  private windowStartedAt = -Infinity;

  constructor(private readonly windowMs = 2_000) {}

  /** An event stamped `stampMs` by the switch arrived at `arrivedMs` (this controller's clock). */
  observe(stampMs: number, arrivedMs: number): void {
    if (arrivedMs - this.windowStartedAt >= this.windowMs) {
      this.previous = this.current;
      this.current = Infinity;
      this.windowStartedAt = arrivedMs;
    }
    const lag = arrivedMs - stampMs;
    if (lag < this.current) this.current = lag;
    this.offsetMs = Math.min(this.current, this.previous);
  }

  /** A time of the switch's clock (epoch ms) on this controller's clock; unchanged until an event was seen. */
  toLocal(stampMs: number): number {
    return Math.round(stampMs + this.offsetMs);
  }

  /** A reconnect may reach a restarted switch with another clock: what was learnt of the old one goes. */
  forget(): void {
    this.offsetMs = 0;
    this.current = this.previous = Infinity;
    this.windowStartedAt = -Infinity;
  }
}
