import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { RedisClient } from '../stores/redis';
import { callIdFor, groupedNumberLookup } from './click-to-dial-request';
import { queueNames } from '../stores/keys';
import { runClickToDialAttempt, type ClickToDialUseCaseDeps } from './click-to-dial-use-case';
import type { CallResult } from '../domain/call';
import type { JobsInFlight } from '../lifecycle/jobs-in-flight';
import { CLICK_TO_DIAL_JOB_NAME, type ClickToDialJobData } from './click-to-dial-job';
import type { DispatchPaceRecorder } from '../queues/dispatch-pace';

/**
 * The callback (click-to-dial) queue. One queue per carrier gateway, so BullMQ's limiter is the
 * gateway's calls-per-second limit and the worker's concurrency caps calls in progress.
 * The job id is the call id: queueing the same call twice is a no-op.
 */
export function callbackQueueName(gateway: string): string {
  return queueNames.clickToDial(gateway);
}

/** The gateway a callback queue is for, from its name. */
export function gatewayOfCallbackQueue(queueName: string): string {
  return queueNames.gatewayOfClickToDial(queueName) ?? queueName;
}

export class CallbackQueue {
  readonly queue: Queue<ClickToDialJobData>;

  constructor(connection: RedisClient, prefix: string, gateway: string) {
    this.queue = new Queue<ClickToDialJobData>(callbackQueueName(gateway), {
      connection,
      prefix,
      defaultJobOptions: { removeOnComplete: { age: 24 * 3600, count: 100_000 }, removeOnFail: { age: 7 * 24 * 3600 } },
    });
  }

  /** Queues a job; its id is the call id, so the same (tenant, requestId) is queued once. Returns the call id. */
  async enqueue(data: ClickToDialJobData): Promise<string> {
    const callId = callIdFor(data.tenantId, data.requestId);
    await this.queue.add(CLICK_TO_DIAL_JOB_NAME, data, { jobId: callId });
    return callId;
  }

  /** Removes a job that has not started yet. true when it was removed (nobody will be rung). */
  async removeIfWaiting(callId: string): Promise<boolean> {
    const job = await this.queue.getJob(callId);
    if (!job) return false;
    const state = await job.getState();
    if (state !== 'waiting' && state !== 'delayed' && state !== 'prioritized') return false;
    try {
      await job.remove();
      return true;
    } catch {
      return false; // a worker took it meanwhile
    }
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

export interface CallbackWorkerDeps extends Omit<ClickToDialUseCaseDeps, 'holdMs'> {
  readonly connection: RedisClient;
  readonly prefix: string;
  readonly gateway: string;
  readonly concurrency: number;
  readonly callsPerSecond: number;
  /** BullMQ lock and stall detection; a crashed worker's job is redelivered after about this long. */
  readonly lockDurationMs?: number;
  readonly stalledIntervalMs?: number;
  /** false: construct without taking jobs (an API-only instance). */
  readonly autorun?: boolean;
  /** The jobs running here, for a graceful shutdown (waited for, or given back at its deadline). */
  readonly inFlight?: JobsInFlight;
  /**
   * Back-pressure (switch-capacity.ts): holdMs() > 0 while the switch refuses new channels; hold(ms)
   * keeps the queue from handing out calls that long (the queue's rateLimit).
   */
  readonly capacity?: { holdMs(): number; hold(ms: number): Promise<void> };
  /** Counts the calls dialled and how long each waited since it was accepted (dispatch-pace.ts): admission bounds waits by it. */
  readonly pace?: Pick<DispatchPaceRecorder, 'dialled'>;
}

export interface JobReturn {
  readonly result: CallResult;
  readonly attempt: number;
}

/** The queue's side of a click-to-dial attempt: the use case decides, this says it in BullMQ's terms. */
export function startCallbackWorker(deps: CallbackWorkerDeps): Worker<ClickToDialJobData, JobReturn> {
  const log = deps.logger.child({ component: 'callback-worker' });
  const useCase: ClickToDialUseCaseDeps = {
    ...deps,
    // The jobs of a burst mostly present the same X: one read of its state for them all.
    numbers: groupedNumberLookup(deps.numbers),
    holdMs: deps.capacity ? () => deps.capacity?.holdMs() ?? 0 : undefined,
    dialled: deps.pace ? (waitedMs) => deps.pace?.dialled(waitedMs) : undefined,
  };

  const processor = async (job: Job<ClickToDialJobData, JobReturn>, token?: string): Promise<JobReturn> => {
    const decision = await runClickToDialAttempt(useCase, job.data, job.timestamp + (job.opts.delay ?? 0));
    switch (decision.kind) {
      case 'done':
        return { result: decision.result, attempt: decision.attempt };
      case 'refused':
        log.warn({ jobId: job.id, code: decision.code, field: decision.field }, 'refusing job: nobody is rung');
        throw new UnrecoverableError(`${decision.code}: ${decision.field}: ${decision.message}`);
      case 'hold':
        await deps.capacity?.hold(decision.ms);
        throw Worker.RateLimitError();
      case 'retry':
        if (!token) throw new Error('a click-to-dial job without a lock token cannot be delayed');
        await job.updateData(decision.data);
        await job.moveToDelayed(decision.at, token);
        throw new DelayedError();
    }
  };

  const tracked = deps.inFlight;
  const run = tracked ? (job: Job<ClickToDialJobData, JobReturn>, token?: string) => tracked.run(job, token, () => processor(job, token)) : processor;
  const worker = new Worker<ClickToDialJobData, JobReturn>(callbackQueueName(deps.gateway), run, {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: deps.concurrency,
    limiter: { max: deps.callsPerSecond, duration: 1000 },
    lockDuration: deps.lockDurationMs ?? 30_000,
    stalledInterval: deps.stalledIntervalMs ?? 30_000,
    maxStalledCount: 1000,
    autorun: deps.autorun ?? true,
  });
  worker.on('failed', (job, err) => {
    if (err instanceof DelayedError) return;
    log.error({ jobId: job?.id, err }, 'click-to-dial job failed');
  });
  // E.g. "could not renew lock": the job is redelivered after stall detection and the new delivery follows the call.
  worker.on('error', (err) => log.error({ err }, 'click-to-dial worker error'));
  return worker;
}
