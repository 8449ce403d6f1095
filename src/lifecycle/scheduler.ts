import type { Logger } from '../logger';

/**
 * The controller's periodic work (the routing index check, the binding expiry sweep, the webhook log
 * pruning) in one place, so that stopping is one call: stop() clears every timer and waits for the
 * runs in progress, so none of them meets a closed MySQL pool or Redis connection half-way.
 *
 * A task never overlaps itself: a tick that comes while the previous run is still going is skipped.
 * A failed run is logged and the task keeps its schedule. Timers are unref'd: they never keep the
 * process alive on their own.
 */
export interface PeriodicTask {
  /** Names the task in logs ("<name> failed"). */
  readonly name: string;
  readonly everyMs: number;
  /** `stopping` is aborted by stop(): a long run may end early rather than hold the shutdown. */
  readonly run: (stopping: AbortSignal) => Promise<void>;
  /** Run once at once (not awaited), then every everyMs. */
  readonly runAtStart?: boolean;
}

export class Scheduler {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new Map<string, Promise<void>>();
  private stopped = false;
  private readonly stopping = new AbortController();

  constructor(private readonly logger: Logger) {}

  add(task: PeriodicTask): void {
    if (this.stopped) throw new Error(`scheduler stopped: cannot add ${task.name}`);
    const timer = setInterval(() => this.tick(task), task.everyMs);
    timer.unref();
    this.timers.add(timer);
    if (task.runAtStart) this.tick(task);
  }

  /** No further runs; resolves once the runs in progress are over. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort(new Error('scheduler stopped'));
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    await Promise.all(this.running.values());
  }

  private tick(task: PeriodicTask): void {
    if (this.stopped || this.running.has(task.name)) return;
    const run = (async () => {
      try {
        await task.run(this.stopping.signal);
      } catch (err) {
        if (!this.stopping.signal.aborted) this.logger.error({ err }, `${task.name} failed`);
      } finally {
        this.running.delete(task.name);
      }
    })();
    this.running.set(task.name, run);
  }
}
