import { Job, type Queue } from 'bullmq';
import type { Logger } from '../logger';
import type { NodeJobsStore, RecordedJob } from '../stores/node-jobs';
import type { JobJournal } from './jobs-in-flight';

/**
 * The jobs this controller runs, written down under its NODE_ID with their lock tokens. A record
 * that cannot be written only means a restart leaves that job to stall detection.
 */
export function ownJobsJournal(store: NodeJobsStore, logger: Logger): JobJournal {
  return {
    started: (jobId, token) =>
      store.running(jobId, token).catch((err: unknown) => logger.warn({ err, jobId }, 'running job not recorded: after a restart it waits for stall detection')),
    ended: (jobId) => void store.ended(jobId).catch((err: unknown) => logger.warn({ err, jobId }, 'ended job not struck from the record')),
  };
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
  /** What the previous run of this controller recorded as running (NodeJobsStore.takeAll, read before this run's worker started). */
  readonly left: readonly RecordedJob[];
  /** Resolves true when the last run under this NODE_ID has stopped (lastRunStopped). */
  readonly lastRunStopped: () => Promise<boolean>;
  /** Resolves true once the switches are connected: a resumed job asks the switch what became of its call. */
  readonly ready: () => Promise<boolean>;
  readonly logger: Logger;
}

/**
 * The previous run of this controller died (crash, SIGKILL) with jobs running. Those still locked under
 * its tokens are moved back to wait at once, so they are resumed now (flows/click-to-dial.ts resume:
 * nothing dialled twice) instead of after their locks expire and stall detection finds them. A job
 * that finished, or whose lock expired and was taken by another controller, is left alone; so is
 * everything while another controller still runs under the same NODE_ID.
 * Resolves with the ids of the jobs moved.
 */
export async function resumeOwnJobs(deps: ResumeOwnJobsDeps): Promise<string[]> {
  if (deps.left.length === 0) return [];
  if (!(await deps.lastRunStopped())) {
    deps.logger.error({ jobs: deps.left.length }, 'another controller is running under this NODE_ID: its jobs are left to it (NODE_ID must be unique)');
    return [];
  }
  if (!(await deps.ready())) {
    deps.logger.warn({ jobs: deps.left.length }, 'switches not connected: the jobs left by the previous run wait for stall detection');
    return [];
  }
  const resumed: string[] = [];
  for (const { jobId, token } of deps.left) {
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
