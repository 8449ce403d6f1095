import { Queue, type ConnectionOptions } from 'bullmq';
import { callIdFor } from './click-to-dial-request';
import { callbackQueueName, gatewayOfCallbackQueue } from './callback-queue';
import { admitToCallbackQueue, callbackBacklog, readCapacitySnapshot } from '../queues/switch-capacity';
import { readDispatchPace } from '../queues/dispatch-pace';
import {
  CLICK_TO_DIAL_JOB_NAME,
  CLICK_TO_DIAL_JOB_VERSION,
  signClickToDialJob,
  validateClickToDialJob,
  type ClickToDialJobData,
} from './click-to-dial-job';

/** What a backend writes: the v1 job without the version, the signature and the worker's own fields. */
export type ClickToDialPayload = Omit<ClickToDialJobData, 'v' | 'attempt' | 'auth'>;

/** One of the tenant's API keys: its id and the key (which signs the job and is never sent). */
export interface JobSigningKey {
  readonly keyId: string;
  readonly apiKey: string;
}

export interface CallbackQueueAddress {
  /** The backend's own Redis connection (an ioredis instance or its options). */
  readonly connection: ConnectionOptions;
  /** The platform's REDIS_PREFIX (default `ng`). */
  readonly prefix?: string;
  /** The platform's CARRIER_GATEWAY (default `carrier`). */
  readonly gateway?: string;
}

/**
 * Queues a click-to-dial call straight onto the platform's callback queue, for backends that
 * prefer that to the HTTP API. Validates the payload first (throws InvalidJobError naming the
 * field) and signs it with the tenant's API key (the worker refuses an unsigned job); the job id is the call id derived from (tenantId, requestId), so queueing the same
 * request again is a no-op. Returns the call id, to follow the call with `GET /v1/calls/{id}`.
 *
 * Back-pressure: while the switch refuses new channels, or when the call would wait longer than the
 * platform's CALLBACK_MAX_WAIT_SECONDS behind the calls already queued (at the rate calls leave the
 * queue), it is not queued and this
 * throws CapacityRefusedError (`code` switch_at_capacity, controller_overloaded or gateway_rate_limited, `retryAfterSeconds`),
 * as POST /v1/calls answers 503/429 with Retry-After. (The controllers keep what they know of the
 * switch in Redis; with no controller running nothing is refused.)
 */
export async function enqueueClickToDial(
  target: Queue | CallbackQueueAddress,
  payload: ClickToDialPayload,
  key: JobSigningKey,
): Promise<string> {
  const data = signClickToDialJob(validateClickToDialJob({ ...payload, v: CLICK_TO_DIAL_JOB_VERSION }), key);
  const callId = callIdFor(data.tenantId, data.requestId);
  if (target instanceof Queue) {
    await admitToQueue(target);
    await target.add(CLICK_TO_DIAL_JOB_NAME, data, { jobId: callId });
    return callId;
  }
  const queue = new Queue(callbackQueueName(target.gateway ?? 'carrier'), { connection: target.connection, prefix: target.prefix ?? 'ng' });
  try {
    await admitToQueue(queue);
    await queue.add(CLICK_TO_DIAL_JOB_NAME, data, { jobId: callId });
  } finally {
    await queue.close();
  }
  return callId;
}

/** The capacity check of a callback queue, from the snapshot and the pace its controllers keep in Redis. */
async function admitToQueue(queue: Queue): Promise<void> {
  const gateway = gatewayOfCallbackQueue(queue.name);
  const prefix = queue.opts.prefix ?? 'bull';
  const redis = await queue.getBackend().client;
  const snapshot = await readCapacitySnapshot(redis, prefix, gateway);
  await admitToCallbackQueue(snapshot, { backlog: () => callbackBacklog(queue), pace: () => readDispatchPace(redis, prefix, gateway) });
}
