import type { RedisClient } from './redis';
import { redisKeys } from './keys';

/**
 * Which BullMQ worker one controller (NODE_ID) runs on a queue, and the controller's heartbeat. A
 * worker's lock tokens are `<worker id>:<n>`, so the next run of the same controller finds the jobs the
 * last one left running among the queue's active jobs (lifecycle/own-jobs.ts): one write per run, none per job.
 */
export class NodeJobsStore {
  private readonly key: string;
  private readonly aliveKey: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    nodeId: string,
    queueName: string,
  ) {
    this.key = redisKeys(prefix).nodeJobs(nodeId, queueName);
    this.aliveKey = redisKeys(prefix).nodeAlive(nodeId);
  }

  /** This run (`runId`) is alive now; the beat lapses after ttlMs unless renewed. */
  async beat(runId: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.aliveKey, `${runId}@${String(Date.now())}`, 'PX', ttlMs);
  }

  /** The last heartbeat under this NODE_ID (null: none within its time to live). */
  lastBeat(): Promise<string | null> {
    return this.redis.get(this.aliveKey);
  }

  /** The worker this run takes jobs with; recorded before it takes any. */
  async recordWorker(workerId: string): Promise<void> {
    await this.redis.set(this.key, workerId);
  }

  /** The worker the last run recorded (null: none), removed from the record in the same step. */
  async takeLastWorker(): Promise<string | null> {
    const replies = await this.redis.multi().get(this.key).del(this.key).exec();
    const [err, workerId] = replies?.[0] ?? [null, null];
    if (err) throw err;
    return typeof workerId === 'string' && workerId !== '' ? workerId : null;
  }
}
