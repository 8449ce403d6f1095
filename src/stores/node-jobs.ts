import type { RedisClient } from './redis';
import { redisKeys } from './keys';

export interface RecordedJob {
  readonly jobId: string;
  /** The BullMQ lock token the job was running under. */
  readonly token: string;
}

/**
 * The jobs of one queue that one controller (NODE_ID) is running, each with its lock token: what the
 * next run of the same controller finds there after a crash are the jobs it left running. And the
 * controller's heartbeat, which tells that next run whether the last one has stopped.
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

  async running(jobId: string, token: string): Promise<void> {
    await this.redis.hset(this.key, jobId, token);
  }

  async ended(jobId: string): Promise<void> {
    await this.redis.hdel(this.key, jobId);
  }

  /** Every job recorded, removed from the record in the same step. */
  async takeAll(): Promise<RecordedJob[]> {
    const replies = await this.redis.multi().hgetall(this.key).del(this.key).exec();
    const [err, all] = replies?.[0] ?? [null, {}];
    if (err) throw err;
    return Object.entries((all ?? {}) as Record<string, string>).map(([jobId, token]) => ({ jobId, token }));
  }
}
