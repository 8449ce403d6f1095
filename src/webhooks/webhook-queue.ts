import { performance } from 'node:perf_hooks';
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job, type JobsOptions } from 'bullmq';
import { maskPhonesInText } from '../domain/phone-number';
import { checkPublicHost } from './public-address';
import type { Logger } from '../logger';
import type { WebhookPayload } from './payload';
import { webhookHeaders } from './signing';
import type { DeliveryStatus, EndpointLookup, WebhookEndpoint, WebhookStore } from './webhook-store';

/**
 * Webhook deliveries go through this BullMQ queue (SPEC §6): producing a job only touches Redis,
 * so a slow or dead endpoint can never delay a call; the worker POSTs and retries over hours.
 */
export const WEBHOOK_QUEUE_NAME = 'webhooks';

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
    return WEBHOOK_RETRY_SCHEDULE_MINUTES[step]! * unitMs;
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

  async close(): Promise<void> {
    await this.queue.close();
  }
}

export interface AttemptResult {
  readonly ok: boolean;
  readonly httpStatus: number | null;
  readonly error: string | null;
  readonly durationMs: number;
}

function describeFailure(err: unknown, timeoutMs: number): string {
  // Duck-typed: the abort is a DOMException, not an Error of every realm.
  const e = (err ?? {}) as { name?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no response within ${timeoutMs} ms`;
  if (e.cause && typeof e.cause.code === 'string') return `${e.cause.code}${typeof e.cause.message === 'string' ? `: ${e.cause.message}` : ''}`;
  return typeof e.message === 'string' ? e.message : String(err);
}

/** One signed POST. 2xx is delivered; any other status (redirects too), an error or the timeout is a failed attempt. */
export async function postWebhook(endpoint: Pick<WebhookEndpoint, 'url' | 'secret'>, payload: WebhookPayload, timeoutMs: number): Promise<AttemptResult> {
  const body = JSON.stringify(payload);
  const started = performance.now();
  try {
    const res = await fetch(endpoint.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'numguard-webhooks/1', ...webhookHeaders(endpoint.secret, payload.id, body) },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    // The reply body is of no interest; drop it so the connection can be reused.
    await res.body?.cancel().catch(() => undefined);
    const durationMs = performance.now() - started;
    const ok = res.status >= 200 && res.status < 300;
    return { ok, httpStatus: res.status, error: ok ? null : `HTTP ${res.status}`, durationMs };
  } catch (err) {
    return { ok: false, httpStatus: null, error: describeFailure(err, timeoutMs), durationMs: performance.now() - started };
  }
}

export interface WebhookWorkerOptions {
  readonly connection: ConnectionOptions;
  readonly prefix: string;
  readonly store: Pick<WebhookStore, 'recordDelivery'>;
  readonly endpoints: EndpointLookup;
  readonly logger: Logger;
  /** WEBHOOK_TIMEOUT_MS */
  readonly timeoutMs: number;
  /** WEBHOOK_RETRY_UNIT_MS: the length of one "minute" of the retry schedule. */
  readonly retryUnitMs: number;
  /** Deliveries in flight at once. Default 20. */
  readonly concurrency?: number;
  /** WEBHOOK_ALLOW_PRIVATE_URLS: otherwise each delivery re-checks that the host resolves to public addresses only. */
  readonly allowPrivateUrls?: boolean;
  /** Called for each failed attempt (the failures metric). */
  readonly onFailedAttempt?: (status: 'failed' | 'gave_up') => void;
}

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

/** Runs the worker that POSTs queued events, logs every attempt, and retries on the schedule. */
export function startWebhookWorker(opts: WebhookWorkerOptions): { worker: Worker<WebhookJobData>; close(): Promise<void> } {
  const log = opts.logger.child({ component: 'webhooks' });
  const worker = new Worker<WebhookJobData>(
    WEBHOOK_QUEUE_NAME,
    async (job: Job<WebhookJobData>) => {
      const payload = validateJob(job.data);
      const endpoint = await opts.endpoints.get(payload.tenantId);
      if (!endpoint || !subscribed(endpoint, payload.type)) {
        log.debug({ tenantId: payload.tenantId, eventId: payload.id, type: payload.type }, 'webhook dropped: endpoint gone, disabled or unsubscribed');
        return;
      }
      const attempt = job.attemptsMade + 1;
      const lastAttempt = attempt >= (job.opts.attempts ?? 1);
      // Checked again at delivery: a name may resolve differently than when it was configured.
      const host = opts.allowPrivateUrls ? ({ ok: true } as const) : await checkPublicHost(new URL(endpoint.url).hostname);
      const result = host.ok
        ? await postWebhook(endpoint, payload, opts.timeoutMs)
        : { ok: false, httpStatus: null, error: host.reason === 'not_public' ? 'host resolves to a non-public address' : 'host does not resolve', durationMs: 0 };
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
      const error = maskPhonesInText(result.error ?? 'failed');
      opts.onFailedAttempt?.(lastAttempt ? 'gave_up' : 'failed');
      if (lastAttempt) log.warn({ ...fields, error }, 'webhook gave up after the last attempt');
      else log.info({ ...fields, error }, 'webhook attempt failed, will retry');
      throw new Error(error);
    },
    {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency: opts.concurrency ?? 20,
      settings: { backoffStrategy: webhookBackoffStrategy(opts.retryUnitMs) },
    },
  );
  worker.on('error', (err) => log.error({ err }, 'webhook worker error'));
  return { worker, close: () => worker.close() };
}
