import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  callIdFor,
  requestOfCall,
  requireOwnPrivacyNumber,
  resolveClickToDialRequest,
  type ClickToDialAdmission,
  type ClickToDialDefaults,
  type PrivacyNumberLookup,
} from './click-to-dial-request';
import type { CallResult, ClickToDialRequest } from '../domain/call';
import { AppError } from '../domain/errors';
import { isRetryable } from '../domain/call-result';
import { legUuid, runClickToDial, type ClickToDialDeps } from '../flows/click-to-dial';
import type { JobsInFlight } from '../lifecycle/jobs-in-flight';
import type { Logger } from '../logger';
import type { CallOutcome } from '../stores/call-outcome';
import type { CallStore } from '../stores/call-store';
import type { RouteIndex } from '../stores/route-index';
import type { TenantStore } from '../stores/tenant-store';
import {
  CLICK_TO_DIAL_JOB_NAME,
  hasValidSignature,
  InvalidJobError,
  validateClickToDialJob,
  type ClickToDialJobData,
} from './click-to-dial-job';

/**
 * The callback (click-to-dial) queue. One queue per carrier gateway, so BullMQ's limiter is the
 * gateway's calls-per-second limit and the worker's concurrency caps calls in progress.
 * The job id is the call id: queueing the same call twice is a no-op.
 */
export function callbackQueueName(gateway: string): string {
  return `click-to-dial.${gateway}`;
}

export class CallbackQueue {
  readonly queue: Queue<ClickToDialJobData>;

  constructor(connection: Redis, prefix: string, gateway: string) {
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

export interface CallbackWorkerDeps {
  readonly connection: Redis;
  readonly tenants: Pick<TenantStore, 'get'>;
  /** The API keys that sign jobs queued directly. */
  readonly keys: Pick<TenantStore, 'signingKey'>;
  readonly calls: Pick<CallStore, 'insert' | 'getById'>;
  readonly defaults: ClickToDialDefaults;
  /** The tenant's pool: a job queued directly presents only the tenant's own numbers too. */
  readonly numbers: PrivacyNumberLookup;
  /** Blacklist and rate limits for a job queued directly (calls made through the API passed them already). */
  readonly admission?: ClickToDialAdmission;
  readonly prefix: string;
  readonly gateway: string;
  readonly concurrency: number;
  readonly callsPerSecond: number;
  readonly flow: ClickToDialDeps;
  readonly finished: (call: CallOutcome) => Promise<void>;
  readonly callbackBindingTtlSeconds: number;
  /** Where the callback binding is made routable at once (B redials X and reaches A). */
  readonly routes?: Pick<RouteIndex, 'put'>;
  readonly logger: Logger;
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
}

export interface JobReturn {
  readonly result: CallResult;
  readonly attempt: number;
}

export function startCallbackWorker(deps: CallbackWorkerDeps): Worker<ClickToDialJobData, JobReturn> {
  const log = deps.logger.child({ component: 'callback-worker' });
  const refuse = (code: string, field: string, message: string, jobId: string | undefined): never => {
    log.warn({ jobId, code, field }, 'refusing job: nobody is rung');
    throw new UnrecoverableError(`${code}: ${field}: ${message}`);
  };

  const processor = async (job: Job<ClickToDialJobData, JobReturn>, token?: string): Promise<JobReturn> => {
    let payload: ClickToDialJobData;
    try {
      payload = validateClickToDialJob(job.data);
    } catch (err) {
      if (err instanceof InvalidJobError) return refuse(err.code, err.field, err.message, job.id);
      throw err;
    }
    // A job queued directly has no call yet: it must be signed by its tenant, and is then recorded, so it
    // shows in the call API like any other. A job for a recorded call runs the recorded request.
    const callId = callIdFor(payload.tenantId, payload.requestId);
    let call = await deps.calls.getById(callId);
    if (!call) {
      if (!payload.auth) return refuse('unsigned_job', 'auth', 'a job that starts a call must be signed with one of its tenant’s API keys', job.id);
      const signer = await deps.keys.signingKey(payload.auth.keyId);
      if (!signer || signer.tenantId !== payload.tenantId || !hasValidSignature(payload, signer.keyHash)) {
        return refuse('bad_signature', 'auth', 'the signature is not that of an active API key of this tenant', job.id);
      }
    }
    const tenant = await deps.tenants.get(payload.tenantId);
    if (!tenant) return refuse('unknown_tenant', 'tenantId', 'no such tenant', job.id);
    let request: ClickToDialRequest;
    try {
      request = resolveClickToDialRequest(tenant, payload, deps.defaults);
    } catch (err) {
      if (err instanceof AppError) return refuse(err.code, err.field ?? '(job)', err.message, job.id);
      throw err;
    }
    if (!call) {
      try {
        await requireOwnPrivacyNumber(deps.numbers, request);
        await deps.admission?.admitClickToDial(request);
      } catch (err) {
        if (err instanceof AppError) return refuse(err.code, err.field ?? '(job)', err.message, job.id);
        throw err;
      }
      call = (await deps.calls.insert({ id: callId, kind: 'click_to_dial', ...request })).call;
    }
    const attempt = payload.attempt ?? 1;
    if (call.state === 'completed') return { result: call.result ?? 'failed', attempt };
    // The switch refuses new channels now (idle CPU, sessions): an attempt not yet dialled waits in the
    // queue instead of failing; one already under way is followed as usual.
    const holdMs = deps.capacity?.holdMs() ?? 0;
    if (holdMs > 0 && deps.capacity) {
      const live = await deps.flow.live.get(call.id);
      if (!live || live.state === 'queued' || live.attempt < attempt) {
        log.info({ callId: call.id, holdMs }, 'switch at capacity: holding the call queue');
        await deps.capacity.hold(holdMs);
        throw Worker.RateLimitError();
      }
    }

    const outcome = await runClickToDial(deps.flow, { callId: call.id, attempt, request: requestOfCall(call), queuedAt: call.createdAt });

    if (!outcome.aReached && isRetryable(outcome.result) && attempt < tenant.maxAttempts && token) {
      log.info({ callId: call.id, attempt, result: outcome.result }, 'A not reached; retrying per tenant policy');
      await job.updateData({ ...payload, attempt: attempt + 1 });
      await job.moveToDelayed(Date.now() + tenant.retryDelaySeconds * 1000, token);
      throw new DelayedError();
    }

    const { cdr } = outcome;
    const callbackBinding = outcome.bDialled
      ? {
          id: legUuid(call.id, 'callback-binding', 0),
          tenantId: cdr.tenantId,
          x: cdr.x,
          a: cdr.a,
          b: cdr.b,
          expiresAt: cdr.endedAt + deps.callbackBindingTtlSeconds * 1000,
          callId: cdr.callId,
          userData: cdr.userData,
        }
      : undefined;
    await deps.finished({ cdr, callbackBinding });
    // B can call back at once; MySQL gets the binding through the CDR queue (the index is rebuilt from it).
    if (callbackBinding && deps.routes) {
      await deps.routes.put({
        ...callbackBinding,
        kind: 'callback',
        restriction: 'both',
        record: false,
        maxDurationSeconds: null,
        announcement: null,
        allowList: [],
      });
    }
    return { result: outcome.result, attempt };
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
  return worker;
}
