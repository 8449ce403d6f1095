import { randomUUID } from 'node:crypto';
import { DelayedError, Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job, type JobsOptions } from 'bullmq';
import type { RedisClient } from '../stores/redis';
import { maskPhonesInText } from '../domain/phone-number';
import type { Logger } from '../logger';
import type { WebhookPayload } from './payload';
import { postWebhook, type AttemptResult } from './pinned-post';
import type { Resolver } from './public-address';
import { RedisTenantSlots, type TenantSlots } from './tenant-slots';
import type { DeliveryStatus, EndpointLookup, WebhookEndpoint, WebhookStore } from './webhook-store';
import { queueNames } from '../stores/keys';

/**
 * Webhook deliveries go through this BullMQ queue (SPEC §6): producing a job only touches Redis,
 * so a slow or dead endpoint can never delay a call; the worker POSTs and retries over hours.
 */
export const WEBHOOK_QUEUE_NAME = queueNames.webhooks;

/** Delays between attempts, in units (a minute in production): attempt 2 comes 1 unit after attempt 1, … */
export const WEBHOOK_RETRY_SCHEDULE_MINUTES: readonly number[] = [1, 4, 9, 106, 203, 300];
/** The first attempt plus one per scheduled retry. */
export const WEBHOOK_ATTEMPTS = WEBHOOK_RETRY_SCHEDULE_MINUTES.length + 1;
export const DEFAULT_WEBHOOK_RETRY_UNIT_MS = 60_000;
const BACKOFF_TYPE = 'webhook-schedule';

/** BullMQ `settings.backoffStrategy`: `attemptsMade` counts the attempt that just failed (1 after the first). */
export function webhookBackoffStrategy(unitMs: number = DEFAULT_WEBHOOK_RETRY_UNIT_MS): (attemptsMade: number) => number {
  return (attemptsMade) => {
    const step = Math.min(Math.max(attemptsMade, 1), WEBHOOK_RETRY_SCHEDULE_MINUTES.length) - 1;
    return (WEBHOOK_RETRY_SCHEDULE_MINUTES[step] ?? WEBHOOK_RETRY_SCHEDULE_MINUTES[WEBHOOK_RETRY_SCHEDULE_MINUTES.length - 1] ?? 1) * unitMs;
  };
}

export interface WebhookJobData {
  readonly payload: WebhookPayload;
}

const JOB_OPTIONS: JobsOptions = {
  attempts: WEBHOOK_ATTEMPTS,
  backoff: { type: BACKOFF_TYPE },
  // Kept for a day: the same event reported again within it is not delivered twice.
  removeOnComplete: { age: 24 * 3600, count: 100_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 100_000 },
};

/** The job id is the event id; BullMQ (v6) refuses custom ids containing ':'. */
export function webhookJobId(eventId: string): string {
  if (eventId.includes(':') || eventId === '') throw new Error('a webhook event id must be non-empty and contain no ":"');
  return eventId;
}

export class WebhookQueue {
  readonly queue: Queue<WebhookJobData>;

  constructor(opts: { connection: ConnectionOptions; prefix: string }) {
    this.queue = new Queue<WebhookJobData>(WEBHOOK_QUEUE_NAME, {
      connection: opts.connection,
      prefix: opts.prefix,
      defaultJobOptions: JOB_OPTIONS,
    });
  }

  /** Queues one event for the tenant's endpoint; the same event id is queued once. */
  async enqueue(payload: WebhookPayload): Promise<void> {
    await this.queue.add(payload.type, { payload }, { ...JOB_OPTIONS, jobId: webhookJobId(payload.id) });
  }

  /** Several in one round trip (addBulk); each keeps its own job id, so an event queued again is still a no-op. */
  async enqueueMany(payloads: readonly WebhookPayload[]): Promise<void> {
    if (payloads.length === 0) return;
    await this.queue.addBulk(payloads.map((payload) => ({ name: payload.type, data: { payload }, opts: { ...JOB_OPTIONS, jobId: webhookJobId(payload.id) } })));
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

export { postWebhook, type AttemptResult, type PostOptions } from './pinned-post';

export interface WebhookWorkerOptions {
  /** Also holds the per-tenant in-flight slots. */
  readonly connection: RedisClient;
  readonly prefix: string;
  readonly store: Pick<WebhookStore, 'recordDelivery'>;
  readonly endpoints: EndpointLookup;
  readonly logger: Logger;
  /** WEBHOOK_TIMEOUT_MS: one attempt, name resolution included. */
  readonly timeoutMs: number;
  /** WEBHOOK_RETRY_UNIT_MS: the length of one "minute" of the retry schedule. */
  readonly retryUnitMs: number;
  /** Deliveries in flight at once. Default 20. */
  readonly concurrency?: number;
  /**
   * WEBHOOK_TENANT_CONCURRENCY: deliveries of one tenant in flight at once, across every
   * controller. Default max(1, floor(concurrency / 4)).
   */
  readonly tenantConcurrency?: number;
  /** WEBHOOK_ALLOW_PRIVATE_URLS: otherwise every address the host resolves to must be public. */
  readonly allowPrivateUrls?: boolean;
  /** Name resolution for deliveries (default: the system resolver); tests play DNS with it. */
  readonly resolve?: Resolver;
  /** The in-flight slots (default: leases in Redis under `prefix`). */
  readonly tenantSlots?: TenantSlots;
  /** Called for each failed attempt (the failures metric). */
  readonly onFailedAttempt?: (status: 'failed' | 'gave_up') => void;
  /**
   * How long a delivery stays this worker's without renewal, and how often stalled ones are looked for:
   * a controller killed mid-delivery gives its deliveries back within about that time (BullMQ's 30 s by default).
   */
  readonly lockDurationMs?: number;
  readonly stalledIntervalMs?: number;
}

/** A slot is given back after each attempt; the lease only matters when a controller dies holding one. */
const SLOT_LEASE_MARGIN_MS = 30_000;
/** Remembered deferral counts (per job, this instance); beyond this the memory is simply cleared. */
const MAX_DEFERRALS_TRACKED = 100_000;

function validateJob(data: unknown): WebhookPayload {
  const p = (data as Partial<WebhookJobData> | null)?.payload;
  if (!p || typeof p.id !== 'string' || typeof p.type !== 'string' || typeof p.tenantId !== 'string') {
    throw new UnrecoverableError('malformed webhook job: missing payload.id/type/tenantId');
  }
  return p;
}

function subscribed(endpoint: WebhookEndpoint, type: WebhookPayload['type']): boolean {
  if (!endpoint.enabled) return false;
  if (type === 'webhook.test' || endpoint.events === null) return true;
  return endpoint.events.includes(type);
}

/**
 * Runs the worker that POSTs queued events, logs every attempt, and retries on the schedule.
 * A job whose tenant already has its share of deliveries in flight goes back to the delayed set
 * for a moment (not counted as an attempt), so one tenant's slow endpoint cannot take the whole pool.
 */
export function startWebhookWorker(opts: WebhookWorkerOptions): { worker: Worker<WebhookJobData>; close(): Promise<void> } {
  const log = opts.logger.child({ component: 'webhooks' });
  const concurrency = opts.concurrency ?? 20;
  const slots =
    opts.tenantSlots ??
    new RedisTenantSlots(opts.connection, opts.prefix, opts.tenantConcurrency ?? Math.max(1, Math.floor(concurrency / 4)), opts.timeoutMs + SLOT_LEASE_MARGIN_MS);
  const deferrals = new Map<string, number>();
  /** Grows from ~0.1 s while the tenant stays busy, up to about one timeout (at most 10 s), jittered. */
  const deferralDelay = (jobId: string): number => {
    const n = deferrals.get(jobId) ?? 0;
    if (deferrals.size >= MAX_DEFERRALS_TRACKED) deferrals.clear();
    deferrals.set(jobId, n + 1);
    const ceiling = Math.min(Math.max(opts.timeoutMs, 1000), 10_000);
    const delay = Math.min(ceiling, 100 * 2 ** Math.min(n, 20));
    return Math.round(delay / 2 + (Math.random() * delay) / 2);
  };
  const worker = new Worker<WebhookJobData>(
    WEBHOOK_QUEUE_NAME,
    async (job: Job<WebhookJobData>, token?: string) => {
      const payload = validateJob(job.data);
      const endpoint = await opts.endpoints.get(payload.tenantId);
      if (!endpoint || !subscribed(endpoint, payload.type)) {
        log.debug({ tenantId: payload.tenantId, eventId: payload.id, type: payload.type }, 'webhook dropped: endpoint gone, disabled or unsubscribed');
        return;
      }
      const jobId = job.id ?? payload.id;
      const holder = `${jobId}:${randomUUID()}`;
      if (!(await slots.acquire(payload.tenantId, holder))) {
        await job.moveToDelayed(Date.now() + deferralDelay(jobId), token);
        throw new DelayedError();
      }
      deferrals.delete(jobId);
      const attempt = job.attemptsMade + 1;
      const lastAttempt = attempt >= (job.opts.attempts ?? 1);
      let result: AttemptResult;
      try {
        // Resolved and checked afresh on every attempt, and connected to exactly what was checked.
        result = await postWebhook(endpoint, payload, { timeoutMs: opts.timeoutMs, resolve: opts.resolve, allowPrivate: opts.allowPrivateUrls });
      } finally {
        await slots.release(payload.tenantId, holder).catch((err: unknown) => log.warn({ err, tenantId: payload.tenantId }, 'webhook slot not released (its lease will expire)'));
      }
      const status: DeliveryStatus = result.ok ? 'delivered' : lastAttempt ? 'gave_up' : 'failed';
      try {
        await opts.store.recordDelivery({
          tenantId: payload.tenantId,
          eventId: payload.id,
          eventType: payload.type,
          url: endpoint.url,
          attempt,
          status,
          httpStatus: result.httpStatus,
          // Only the category: the details would let a tenant probe networks through its URL.
          error: result.error,
          durationMs: result.durationMs,
          at: Date.now(),
        });
      } catch (err) {
        // A delivered event is not sent again because its log row could not be written.
        log.error({ err, tenantId: payload.tenantId, eventId: payload.id }, 'webhook delivery log write failed');
      }
      const fields = { tenantId: payload.tenantId, eventId: payload.id, type: payload.type, attempt, httpStatus: result.httpStatus, ms: Math.round(result.durationMs) };
      if (result.ok) {
        log.debug(fields, 'webhook delivered');
        return;
      }
      const error = result.error ?? 'connection_failed';
      // The operator's log may say what happened exactly (numbers masked).
      const detail = result.detail === null ? undefined : maskPhonesInText(result.detail);
      opts.onFailedAttempt?.(lastAttempt ? 'gave_up' : 'failed');
      if (lastAttempt) log.warn({ ...fields, error, detail }, 'webhook gave up after the last attempt');
      else log.info({ ...fields, error, detail }, 'webhook attempt failed, will retry');
      throw new Error(error);
    },
    {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency,
      ...(opts.lockDurationMs === undefined ? {} : { lockDuration: opts.lockDurationMs }),
      ...(opts.stalledIntervalMs === undefined ? {} : { stalledInterval: opts.stalledIntervalMs }),
      settings: { backoffStrategy: webhookBackoffStrategy(opts.retryUnitMs) },
    },
  );
  worker.on('error', (err) => log.error({ err }, 'webhook worker error'));
  return { worker, close: () => worker.close() };
}
