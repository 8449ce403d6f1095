import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job, type JobsOptions } from 'bullmq';
import type { Logger } from '../logger';
import { persistCallOutcomes, type CallOutcome } from '../stores/call-outcome';
import type { Pool } from '../stores/mysql';
import { queueNames } from '../stores/keys';

export type { CallOutcome, CallbackBindingInput } from '../stores/call-outcome';

/**
 * CDRs go through this queue into MySQL (SPEC §6): enqueueing is cheap and only needs Redis,
 * so a call's end never waits on MySQL, and while MySQL is down the jobs wait and retry.
 *
 * Keys: the queue is named `${prefix}-cdr` and BullMQ's own key prefix is `prefix` too, so
 * every key lives under `${prefix}:` (several deployments or test runs can share a Redis).
 */
export const cdrQueueName = queueNames.cdr;
/** BullMQ (v6) refuses custom job ids containing ':', hence `cdr-<callId>` rather than `cdr:<callId>`. */
export const cdrJobId = (callId: string): string => `cdr-${callId}`;

/**
 * A job holds one call's outcome (named 'cdr', id `cdr-<callId>`), or the outcomes of calls that ended within a few
 * milliseconds of each other (named 'cdrs', id `cdrs-<first callId>`): the queue's own work (fetch, lock, complete)
 * is then paid once for all of them. The writer batches both alike; writing is idempotent per call either way.
 */
export interface CdrGroup {
  readonly outcomes: readonly CallOutcome[];
}
export type CdrJobData = CallOutcome | CdrGroup;
export const cdrGroupJobId = (firstCallId: string): string => `cdrs-${firstCallId}`;

const isGroup = (data: CdrJobData): data is CdrGroup => Array.isArray((data as Partial<CdrGroup>).outcomes);

/** The call ids a job is about (for logs: ids, never numbers). */
export function cdrJobCallIds(data: CdrJobData | undefined): string[] {
  if (!data) return [];
  const callId = (o: Partial<CallOutcome> | null): string => (typeof o?.cdr?.callId === 'string' ? o.cdr.callId : '?');
  return isGroup(data) ? data.outcomes.map(callId) : [callId(data)];
}

/** A job is attempted "for ever": at the 30 s cap, a million attempts is about a year. */
export const CDR_JOB_ATTEMPTS = 1_000_000;
const BACKOFF_TYPE = 'cdr-capped-exponential';

const JOB_OPTIONS: JobsOptions = {
  attempts: CDR_JOB_ATTEMPTS,
  backoff: { type: BACKOFF_TYPE },
  removeOnComplete: { age: 3600, count: 100_000 },
  removeOnFail: false,
};

export class CdrQueue {
  readonly queue: Queue<CdrJobData>;
  private readonly groupWindowMs: number;
  private readonly maxPerJob: number;
  private gathering: Array<{ outcome: CallOutcome; resolve: (jobId: string) => void; reject: (err: unknown) => void }> = [];
  private gatherTimer: NodeJS.Timeout | null = null;

  constructor(opts: {
    connection: ConnectionOptions;
    prefix: string;
    /**
     * How long enqueue() waits for other calls' outcomes to go into the same job. Default 0: one job per call.
     * A few ms under load turns the queue's per-job work into per-group work; each caller still returns only
     * once its outcome is in Redis.
     */
    groupWindowMs?: number;
    /** Most outcomes in one job. Default 50. */
    maxPerJob?: number;
  }) {
    this.queue = new Queue<CdrJobData>(cdrQueueName(opts.prefix), {
      connection: opts.connection,
      prefix: opts.prefix,
      defaultJobOptions: JOB_OPTIONS,
    });
    this.groupWindowMs = opts.groupWindowMs ?? 0;
    this.maxPerJob = Math.max(1, opts.maxPerJob ?? 50);
  }

  /**
   * Queues a call's outcome; resolves with the id of the job that holds it once it is in Redis. Alone in its job,
   * the id is `cdr-<callId>`: enqueueing the same call again is a no-op while the job is kept.
   */
  enqueue(outcome: CallOutcome): Promise<string> {
    if (this.groupWindowMs <= 0) return this.addJobs([[outcome]]).then(([id]) => id ?? cdrJobId(outcome.cdr.callId));
    return new Promise<string>((resolve, reject) => {
      this.gathering.push({ outcome, resolve, reject });
      if (this.gathering.length >= this.maxPerJob) this.sendGathered();
      else this.gatherTimer ??= setTimeout(() => this.sendGathered(), this.groupWindowMs);
    });
  }

  /** Queues outcomes, perJob of them to a job (default 1: one job per call). */
  async enqueueMany(outcomes: readonly CallOutcome[], opts: { perJob?: number } = {}): Promise<void> {
    if (outcomes.length === 0) return;
    const perJob = Math.max(1, opts.perJob ?? 1);
    const groups: CallOutcome[][] = [];
    for (let i = 0; i < outcomes.length; i += perJob) groups.push(outcomes.slice(i, i + perJob));
    await this.addJobs(groups);
  }

  private sendGathered(): void {
    if (this.gatherTimer) clearTimeout(this.gatherTimer);
    this.gatherTimer = null;
    const waiting = this.gathering;
    this.gathering = [];
    if (waiting.length === 0) return;
    this.addJobs([waiting.map((w) => w.outcome)]).then(
      ([id]) => { for (const w of waiting) w.resolve(id ?? ''); },
      (err: unknown) => { for (const w of waiting) w.reject(err); },
    );
  }

  /** One job per group (a group of one is an ordinary 'cdr' job), in one round trip; their ids in order. */
  private async addJobs(groups: ReadonlyArray<readonly CallOutcome[]>): Promise<string[]> {
    const jobs = groups.map((g) =>
      g.length === 1 && g[0]
        ? { name: 'cdr', data: g[0], opts: { ...JOB_OPTIONS, jobId: cdrJobId(g[0].cdr.callId) } }
        : { name: 'cdrs', data: { outcomes: g }, opts: { ...JOB_OPTIONS, jobId: cdrGroupJobId(g[0]?.cdr.callId ?? '') } },
    );
    if (jobs.length === 1 && jobs[0]) {
      await this.queue.add(jobs[0].name, jobs[0].data, jobs[0].opts);
    } else {
      await this.queue.addBulk(jobs);
    }
    return jobs.map((j) => j.opts.jobId);
  }

  async close(): Promise<void> {
    this.sendGathered();
    await this.queue.close();
  }
}

export interface CdrWriterOptions {
  readonly connection: ConnectionOptions;
  readonly prefix: string;
  readonly pool: Pool;
  readonly logger: Logger;
  /**
   * Jobs in flight at once; they are written together in batches. Default 1000: a job waits for its batch to fill
   * and commit (on the order of 100 ms under load), so the rate is at most this many per that wait; 500 capped a
   * quiet host at about 4,000/s with the writer's CPU not saturated.
   */
  readonly concurrency?: number;
  /** Most outcomes per MySQL transaction. Default 250 (a quarter of the concurrency: batches fill while others commit). */
  readonly maxBatch?: number;
  /**
   * Batches being written at once, each one transaction. Default 4. While they are all open the next batch
   * keeps filling up to maxBatch instead of being sent at the end of its window: when MySQL is what the
   * writer waits on, batches grow, and the same work costs fewer transactions and round trips.
   */
  readonly maxTransactions?: number;
  /**
   * How long a batch waits to fill before it is written (when a transaction is free). Default 100 ms: a batch is
   * about ten statements (the CDRs, the calls rows, the callback bindings and their route changes) whatever its
   * size, so at tens of calls per second a longer wait writes several calls per transaction instead of one;
   * nothing waits on it.
   */
  readonly batchWindowMs?: number;
  /** Retry delay after the first failure, doubled each time. Default 1000 ms. */
  readonly backoffBaseMs?: number;
  /** Retry delay cap. Default 30000 ms. */
  readonly backoffMaxMs?: number;
  /**
   * Runs once a batch of outcomes is committed, with all of them (e.g. queueing their call.completed
   * webhooks in one round trip, so that they survive the controller dying right after the call). A
   * failure retries every job of the batch: the write is idempotent, so this must be too.
   */
  readonly afterWrite?: (outcomes: readonly CallOutcome[]) => Promise<void>;
  /**
   * Completes a batch of outcomes from MySQL before they are written (e.g. a refused call to X gets
   * X's tenant), in as few queries as the batch allows; returns them in the same order. afterWrite
   * sees what was written. A failure retries every job of the batch.
   */
  readonly attribute?: (outcomes: readonly CallOutcome[]) => Promise<readonly CallOutcome[]>;
  /** Told of each batch once it is settled: its size and how long each stage took (for metrics and the benchmark). */
  readonly onBatch?: (batch: CdrBatchTiming) => void;
}

/** One batch of the CDR writer: its size and the milliseconds spent attributing, persisting (one transaction) and in afterWrite. */
export interface CdrBatchTiming {
  readonly size: number;
  readonly startedAt: number;
  readonly attributeMs: number;
  readonly persistMs: number;
  readonly afterWriteMs: number;
}

export const DEFAULT_CONCURRENCY = 1000;
export const DEFAULT_MAX_BATCH = 250;

export function cappedExponentialBackoff(baseMs: number, maxMs: number): (attemptsMade: number) => number {
  return (attemptsMade) => {
    const exp = Math.min(Math.max(attemptsMade - 1, 0), 30);
    const delay = Math.min(maxMs, baseMs * 2 ** exp);
    return Math.round(delay * (0.8 + Math.random() * 0.2)); // jitter so many jobs do not retry in lockstep
  };
}

/** MySQL errors caused by the data itself: retrying the same row can never succeed. */
const DATA_ERRNOS = new Set([1048, 1264, 1265, 1292, 1366, 1406, 1452]);
const isDataError = (err: unknown): boolean => DATA_ERRNOS.has((err as { errno?: number } | null)?.errno ?? -1);

function validateOutcome(data: unknown): CallOutcome {
  const o = data as Partial<CallOutcome> | null;
  const c = o?.cdr;
  if (
    !c ||
    typeof c.callId !== 'string' ||
    typeof c.tenantId !== 'string' ||
    typeof c.startedAt !== 'number' ||
    typeof c.endedAt !== 'number' ||
    typeof c.result !== 'string'
  ) {
    throw new UnrecoverableError('malformed CDR job: missing cdr.callId/tenantId/startedAt/endedAt/result');
  }
  return o as CallOutcome;
}

interface Pending {
  readonly outcome: CallOutcome;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

type BatchHooks = Pick<CdrWriterOptions, 'attribute' | 'afterWrite' | 'onBatch'>;

/**
 * Groups the outcomes of concurrently processed jobs into one transaction: attributed together,
 * written together, their afterWrite run together. A job completes only once its row is committed
 * (and afterWrite has run); when a batch fails on bad data, its rows are written one by one so that
 * only the bad job fails.
 */
class Batcher {
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** The oldest pending outcome has waited its window: write as soon as a transaction is free. */
  private due = false;
  private open = 0;

  constructor(
    private readonly pool: Pool,
    private readonly limits: { readonly maxBatch: number; readonly maxTransactions: number; readonly windowMs: number },
    private readonly hooks: BatchHooks,
  ) {}

  write(outcome: CallOutcome): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ outcome, resolve, reject });
      if (!this.timer && !this.due) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.due = true;
          this.drain();
        }, this.limits.windowMs);
      }
      this.drain();
    });
  }

  /** Starts batches while a transaction is free and a batch is full or due. */
  private drain(): void {
    const { maxBatch, maxTransactions } = this.limits;
    while (this.open < maxTransactions && this.pending.length > 0 && (this.due || this.pending.length >= maxBatch)) {
      const batch = this.pending.splice(0, maxBatch);
      if (this.pending.length === 0) {
        this.due = false;
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
      }
      this.open += 1;
      void this.writeBatch(batch)
        .catch(() => undefined) // writeBatch settles every job itself; only a throwing onBatch could land here
        .finally(() => {
          this.open -= 1;
          this.drain();
        });
    }
  }

  private async writeBatch(batch: readonly Pending[]): Promise<void> {
    let written: Array<{ pending: Pending; outcome: CallOutcome }>;
    let timing: CdrBatchTiming;
    try {
      const startedAt = performance.now();
      const queued = batch.map((p) => p.outcome);
      const attributed = this.hooks.attribute ? await this.hooks.attribute(queued) : queued;
      const attributedAt = performance.now();
      written = await this.persist(batch.map((pending, i) => ({ pending, outcome: attributed[i] ?? pending.outcome })));
      const persistedAt = performance.now();
      await this.hooks.afterWrite?.(written.map((w) => w.outcome));
      timing = {
        size: batch.length,
        startedAt,
        attributeMs: attributedAt - startedAt,
        persistMs: persistedAt - attributedAt,
        afterWriteMs: performance.now() - persistedAt,
      };
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    for (const w of written) w.pending.resolve();
    this.hooks.onBatch?.(timing);
  }

  /** Writes the batch; on bad data, each row alone: the bad ones are rejected here, the rest returned as written. */
  private async persist(
    entries: Array<{ pending: Pending; outcome: CallOutcome }>,
  ): Promise<Array<{ pending: Pending; outcome: CallOutcome }>> {
    try {
      await persistCallOutcomes(this.pool, entries.map((e) => e.outcome));
      return entries;
    } catch (err) {
      if (entries.length <= 1 || !isDataError(err)) throw err;
    }
    const alone = await Promise.all(
      entries.map((e) =>
        persistCallOutcomes(this.pool, [e.outcome]).then(
          () => true,
          (err: unknown) => {
            if (!isDataError(err)) throw err;
            e.pending.reject(err);
            return false;
          },
        ),
      ),
    );
    return entries.filter((_, i) => alone[i]);
  }
}

/** Runs the worker that writes queued CDRs into MySQL. */
export function startCdrWriter(opts: CdrWriterOptions): { worker: Worker<CdrJobData>; close(): Promise<void> } {
  const batcher = new Batcher(
    opts.pool,
    { maxBatch: opts.maxBatch ?? DEFAULT_MAX_BATCH, maxTransactions: opts.maxTransactions ?? 4, windowMs: opts.batchWindowMs ?? 100 },
    opts,
  );
  const log = opts.logger.child({ component: 'cdr-writer' });
  const worker = new Worker<CdrJobData>(
    cdrQueueName(opts.prefix),
    async (job: Job<CdrJobData>) => {
      const outcomes: unknown[] = isGroup(job.data) ? [...job.data.outcomes] : [job.data];
      const settled = await Promise.allSettled(outcomes.map(async (o) => batcher.write(validateOutcome(o))));
      const errors = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      // Anything but bad data is retried, the whole job: the outcomes already written are written again as no-ops.
      const retryable = errors.find((err) => !isDataError(err) && !(err instanceof UnrecoverableError));
      if (retryable !== undefined) throw retryable instanceof Error ? retryable : new Error('CDR write failed');
      if (errors.length > 0) {
        // Only the refused rows are missing; the others are committed. The job stays in the failed set, naming them.
        const first = errors[0];
        if (outcomes.length === 1 && first instanceof UnrecoverableError) throw first;
        const refused = outcomes.filter((_, i) => settled[i]?.status === 'rejected').map((o) => cdrJobCallIds(o as CallOutcome)[0] ?? '?');
        throw new UnrecoverableError(
          `CDR rejected${first instanceof UnrecoverableError ? '' : ' by MySQL'}${outcomes.length > 1 ? ` (calls ${refused.join(', ')}; the job's others are written)` : ''}: ${first instanceof Error ? first.message : String(first)}`,
        );
      }
    },
    {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency: opts.concurrency ?? DEFAULT_CONCURRENCY,
      // a worker crash mid-write must not send the job to "failed": the write is idempotent, redo it
      maxStalledCount: 1_000_000,
      settings: { backoffStrategy: cappedExponentialBackoff(opts.backoffBaseMs ?? 1000, opts.backoffMaxMs ?? 30_000) },
    },
  );
  worker.on('failed', (job, err) => {
    const callIds = cdrJobCallIds(job?.data);
    const callId = callIds.length === 1 ? callIds[0] : callIds;
    if (err instanceof UnrecoverableError || err.name === 'UnrecoverableError') {
      log.error({ callId, err }, 'CDR job failed permanently, kept in the failed set');
    } else {
      log.warn({ callId, attempt: job?.attemptsMade, err: { message: err.message } }, 'CDR write failed, will retry');
    }
  });
  worker.on('error', (err) => log.error({ err }, 'CDR worker error'));
  return {
    worker,
    close: () => worker.close(),
  };
}
