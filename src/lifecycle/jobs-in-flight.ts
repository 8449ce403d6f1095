import { WaitingError, type Job } from 'bullmq';

/**
 * The jobs a BullMQ worker of this controller is running, so that a graceful shutdown can wait for
 * them, and at its deadline give the ones still running back to the queue (moved to wait at once:
 * another controller's worker takes them now, instead of after their lock expires).
 *
 * Once refuseNew() is called, a job the worker still fetches (one fetch can be under way when the
 * worker is paused) is put back at once and never started here.
 */
export class JobsInFlight {
  private readonly jobs = new Map<Job, string | undefined>();
  private refusing = false;
  private emptied: Array<() => void> = [];

  /** Runs a job's processor, tracked; a job that arrives while new ones are refused goes back to wait. */
  async run<T>(job: Job, token: string | undefined, processor: () => Promise<T>): Promise<T> {
    if (this.refusing) {
      await job.moveToWait(token);
      throw new WaitingError();
    }
    this.jobs.set(job, token);
    try {
      return await processor();
    } finally {
      this.jobs.delete(job);
      if (this.jobs.size === 0) for (const resolve of this.emptied.splice(0)) resolve();
    }
  }

  get size(): number {
    return this.jobs.size;
  }

  refuseNew(): void {
    this.refusing = true;
  }

  /** Resolves when no job is running here (at once if none is). */
  whenIdle(): Promise<void> {
    if (this.jobs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptied.push(resolve));
  }

  /**
   * Gives every job still running back to its queue (moved to wait, its lock released). `before` runs
   * first for each, e.g. so that what the job's processor still does here is no longer trusted.
   * Resolves with the jobs given back; a job that ended or lost its lock meanwhile is skipped.
   */
  async handBack(before: (job: Job) => void = () => undefined): Promise<Job[]> {
    const given: Job[] = [];
    for (const [job, token] of [...this.jobs]) {
      before(job);
      this.jobs.delete(job);
      try {
        await job.moveToWait(token);
        given.push(job);
      } catch {
        // It completed, or its lock is gone already: nothing to give back.
      }
    }
    if (this.jobs.size === 0) for (const resolve of this.emptied.splice(0)) resolve();
    return given;
  }
}
