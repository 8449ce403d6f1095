import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import type { NumberHasher } from '../domain/number-hash';
import type { Logger } from '../logger';
import { queueNames } from '../stores/keys';
import type { InboundMessage } from './carrier';
import type { MessageRelay, RelayJob } from './message-relay';
import { dedupKey } from './relay-rules';

/**
 * A job is tried "for ever" while a store is down (nothing is lost); the carrier's own failures
 * end it after MESSAGE_SEND_ATTEMPTS tries (the relay reports it failed).
 */
const JOB_ATTEMPTS = 100_000;
const BACKOFF_TYPE = 'sms-capped-exponential';
const BACKOFF_CAP_MS = 300_000;

/** Thrown to have BullMQ try a job again after its backoff. */
class TryAgainLater extends Error {
  constructor() {
    super('the carrier did not take the message; trying again');
    this.name = 'TryAgainLater';
  }
}

export interface MessageQueueOptions {
  readonly connection: ConnectionOptions;
  readonly prefix: string;
  readonly hash: NumberHasher;
  readonly dedupWindowSeconds: number;
}

/**
 * Texts to relay, queued once a carrier path has them whole (it acknowledges the carrier only
 * then). The job id is the dedup key, so a redelivery queued while the first is still there is
 * not even queued twice; the record's unique key covers the rest. The body stays in Redis only
 * while the job does (removed on completion and on failure).
 */
export class MessageQueue {
  readonly queue: Queue<RelayJob>;

  constructor(private readonly opts: MessageQueueOptions) {
    this.queue = new Queue<RelayJob>(queueNames.messages(opts.prefix), { connection: opts.connection, prefix: opts.prefix });
  }

  async enqueue(message: InboundMessage): Promise<string> {
    const key = dedupKey(this.opts.hash, message, this.opts.dedupWindowSeconds);
    await this.queue.add(
      'relay',
      { ...message, dedupKey: key },
      {
        jobId: `sms-${key}`,
        attempts: JOB_ATTEMPTS,
        backoff: { type: BACKOFF_TYPE },
        removeOnComplete: true,
        removeOnFail: true,
      },
    );
    return key;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

export function startMessageWorker(opts: {
  readonly connection: ConnectionOptions;
  readonly prefix: string;
  readonly relay: MessageRelay;
  readonly concurrency: number;
  /** MESSAGE_SEND_ATTEMPTS and MESSAGE_RETRY_DELAY_MS. */
  readonly sendAttempts: number;
  readonly retryDelayMs: number;
  readonly logger: Logger;
}): Worker<RelayJob> {
  const worker = new Worker<RelayJob>(
    queueNames.messages(opts.prefix),
    async (job) => {
      const lastTry = job.attemptsMade + 1 >= opts.sendAttempts;
      const outcome = await opts.relay.relay(job.data, lastTry);
      if (outcome === 'retry') throw new TryAgainLater();
      return outcome;
    },
    {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency: opts.concurrency,
      maxStalledCount: JOB_ATTEMPTS,
      settings: { backoffStrategy: (attemptsMade: number) => Math.min(opts.retryDelayMs * 2 ** Math.max(0, attemptsMade - 1), BACKOFF_CAP_MS) },
    },
  );
  worker.on('failed', (job, err) => {
    if (!(err instanceof TryAgainLater)) opts.logger.error({ err, jobId: job?.id }, 'message relay job failed');
  });
  worker.on('error', (err) => opts.logger.error({ err }, 'message relay worker error'));
  return worker;
}
