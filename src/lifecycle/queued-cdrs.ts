import type { Queue } from 'bullmq';

const KEEP_MS = 10 * 60_000;

/**
 * CDR jobs this controller queued and has not yet seen written, so that a graceful shutdown can wait
 * for them (flush) before it closes the CDR writer. Jobs left in the queue are durable anyway: any
 * controller's writer writes them; the flush only makes a clean stop leave nothing behind.
 */
export class QueuedCdrs {
  private readonly pending = new Map<string, number>();

  queued(jobId: string, now = Date.now()): void {
    // Jobs another controller wrote are never seen written here: forget them after a while.
    for (const [id, at] of this.pending) {
      if (now - at < KEEP_MS) break;
      this.pending.delete(id);
    }
    this.pending.delete(jobId);
    this.pending.set(jobId, now);
  }

  written(jobId: string): void {
    this.pending.delete(jobId);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Waits until every job queued here is written (or failed for good); resolves with how many are still queued at the timeout. */
  async flush(queue: Pick<Queue, 'getJobState'>, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const id of [...this.pending.keys()]) {
        const state = await queue.getJobState(id);
        if (state === 'completed' || state === 'failed' || state === 'unknown') this.pending.delete(id);
      }
      if (this.pending.size === 0 || Date.now() >= deadline) return this.pending.size;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
