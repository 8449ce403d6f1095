/**
 * The controller's own overload: how late its event loop runs.
 *
 * On a host short of CPU (the switch runs with realtime priority and takes the cores first) the
 * controller is runnable but not running: it answered POST /v1/calls 1 s late (p50) and sent
 * originates seconds after accepting them, while its own CPU use stayed low. The dispatch pace
 * (dispatch-pace.ts) sees that once calls are dialled late; the lateness of the event loop says it
 * before: the delay of a timer that should fire every few milliseconds, averaged over the last
 * second. Always measured (a gauge); with CONTROLLER_MAX_LOOP_DELAY_MS set, new calls are refused
 * with 503 `controller_overloaded` while it is over that.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { RetryLaterError } from '../domain/errors';

/**
 * How often the loop's timer is checked. Each check wakes the process: at 10 ms (Node's default)
 * that cost an idle controller 6.6 ms of CPU a second here, at 50 ms 1.9 ms; a delay worth refusing
 * calls for is far longer than either.
 */
const RESOLUTION_MS = 50;

export interface LoopDelayReading {
  /** Mean and 99th percentile delay over the last interval, ms. */
  readonly meanMs: number;
  readonly p99Ms: number;
  /** Epoch ms of the reading. */
  readonly at: number;
}

export class ControllerOverloadedError extends RetryLaterError {
  constructor(message: string, retryAfterSeconds: number) {
    super('controller_overloaded', message, retryAfterSeconds);
    this.name = 'ControllerOverloadedError';
  }
}

/** Refuses a new call while the last reading's mean delay is over the bound (0: no bound); a reading older than `staleMs` refuses nothing. */
export function admitUnderLoopDelay(reading: LoopDelayReading | null, maxDelayMs: number, now: number, staleMs: number): void {
  if (maxDelayMs <= 0 || !reading || now - reading.at > staleMs) return;
  if (reading.meanMs <= maxDelayMs) return;
  throw new ControllerOverloadedError(
    `the controller runs ${Math.round(reading.meanMs)} ms late (at most ${maxDelayMs} ms): it cannot take the call in time; try again later`,
    1,
  );
}

export interface EventLoopPressureOptions {
  /** CONTROLLER_MAX_LOOP_DELAY_MS; 0: measure, never refuse. */
  readonly maxDelayMs: number;
  /** How often the delay is read (and the histogram restarted), ms. */
  readonly intervalMs?: number;
  readonly now?: () => number;
}

export class EventLoopPressure {
  private readonly histogram: IntervalHistogram;
  private timer: NodeJS.Timeout | undefined;
  private last: LoopDelayReading | null = null;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: EventLoopPressureOptions) {
    this.intervalMs = opts.intervalMs ?? 1000;
    this.now = opts.now ?? Date.now;
    this.histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  }

  start(): void {
    this.histogram.enable();
    this.timer = setInterval(() => this.read(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }

  /** The last second's delay (null until the first reading). */
  reading(): LoopDelayReading | null {
    return this.last;
  }

  /** Throws ControllerOverloadedError for a new call while the loop runs later than the bound. */
  admit(): void {
    admitUnderLoopDelay(this.last, this.opts.maxDelayMs, this.now(), 3 * this.intervalMs);
  }

  /** Takes the interval's figures and starts the next interval. */
  read(): LoopDelayReading | null {
    // The histogram holds the resolution itself in every sample: what is over it is the delay.
    const resolutionNs = RESOLUTION_MS * 1e6;
    if (this.histogram.count > 0) {
      this.last = {
        meanMs: Math.max(0, this.histogram.mean - resolutionNs) / 1e6,
        p99Ms: Math.max(0, this.histogram.percentile(99) - resolutionNs) / 1e6,
        at: this.now(),
      };
    }
    this.histogram.reset();
    return this.last;
  }
}
