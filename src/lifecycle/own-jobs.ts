import { Job, type Queue } from 'bullmq';
import type { Logger } from '../logger';
import type { NodeJobsStore } from '../stores/node-jobs';
import type { RedisClient } from '../stores/redis';

/** A job a worker holds: its id and the lock token it runs under. */
export interface RecordedJob {
  readonly jobId: string;
  readonly token: string;
}

/**
 * The jobs active in the queue under a lock of the given worker (its tokens are `<worker id>:<n>`):
 * the queue's active list and each job's lock, read in one pipeline.
 */
export async function jobsLockedBy(redis: RedisClient, queue: Pick<Queue, 'toKey'>, workerId: string): Promise<RecordedJob[]> {
  const ids = await redis.lrange(queue.toKey('active'), 0, -1);
  if (ids.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.get(`${queue.toKey(id)}:lock`);
  const locks = (await pipeline.exec()) ?? [];
  const ownTokens = `${workerId}:`;
  const held: RecordedJob[] = [];
  ids.forEach((jobId, i) => {
    const token = locks[i]?.[1];
    if (typeof token === 'string' && token.startsWith(ownTokens)) held.push({ jobId, token });
  });
  return held;
}

/** How often a controller renews its heartbeat under its NODE_ID (it lapses after three missed beats). */
export const NODE_BEAT_MS = 2000;

/**
 * Whether the last run under this NODE_ID has stopped: its heartbeat is gone, or stays unrenewed for
 * longer than a beat. A heartbeat renewed meanwhile is another controller running under the same
 * NODE_ID: its jobs are not this run's to take.
 */
export async function lastRunStopped(store: NodeJobsStore, beatMs = NODE_BEAT_MS): Promise<boolean> {
  const first = await store.lastBeat();
  if (first === null) return true;
  const deadline = Date.now() + beatMs + 500;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const now = await store.lastBeat();
    if (now === null) return true;
    if (now !== first) return false;
  }
  return true;
}

export interface ResumeOwnJobsDeps {
  readonly queue: Queue;
  /** A connection to the queue's Redis, to read its active jobs' locks. */
  readonly redis: RedisClient;
  /** The worker the previous run of this controller recorded (NodeJobsStore.takeLastWorker, read before this run's worker started). */
  readonly lastRunWorker: string | null;
  /** Resolves true when the last run under this NODE_ID has stopped (lastRunStopped). */
  readonly lastRunStopped: () => Promise<boolean>;
  /** Resolves true once the switches are connected: a resumed job asks the switch what became of its call. */
  readonly ready: () => Promise<boolean>;
  readonly logger: Logger;
}

/**
 * The previous run of this controller died (crash, SIGKILL) with jobs running. Those still locked by
 * its worker are moved back to wait at once, so they are resumed now (flows/click-to-dial.ts resume:
 * nothing dialled twice) instead of after their locks expire and stall detection finds them. A job
 * that finished, or whose lock expired and was taken by another controller, is left alone; so is
 * everything while another controller still runs under the same NODE_ID.
 * Resolves with the ids of the jobs moved.
 */
export async function resumeOwnJobs(deps: ResumeOwnJobsDeps): Promise<string[]> {
  if (deps.lastRunWorker === null) return [];
  const left = await jobsLockedBy(deps.redis, deps.queue, deps.lastRunWorker);
  if (left.length === 0) return [];
  if (!(await deps.lastRunStopped())) {
    deps.logger.error({ jobs: left.length }, 'another controller is running under this NODE_ID: its jobs are left to it (NODE_ID must be unique)');
    return [];
  }
  if (!(await deps.ready())) {
    deps.logger.warn({ jobs: left.length }, 'switches not connected: the jobs left by the previous run wait for stall detection');
    return [];
  }
  const resumed: string[] = [];
  for (const { jobId, token } of left) {
    const job = await Job.fromId(deps.queue, jobId);
    if (!job) continue;
    try {
      await job.moveToWait(token);
      resumed.push(jobId);
    } catch {
      // It finished, or its lock is no longer the previous run's.
    }
  }
  if (resumed.length > 0) deps.logger.warn({ jobs: resumed }, 'resuming the jobs this controller left running before its restart');
  return resumed;
}
