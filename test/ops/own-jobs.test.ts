/**
 * What a controller records of its worker, and what its next run takes back (lifecycle/own-jobs.ts):
 * only jobs still locked by the last run's worker (tokens `<worker id>:<n>`); never one another controller holds now.
 */
import { Queue, Worker } from 'bullmq';
import { loadConfig } from '../../src/config';
import { JobsInFlight } from '../../src/lifecycle/jobs-in-flight';
import { jobsLockedBy, lastRunStopped, resumeOwnJobs } from '../../src/lifecycle/own-jobs';
import { createLogger } from '../../src/logger';
import { NodeJobsStore } from '../../src/stores/node-jobs';
import { createTestRedis, type TestRedis } from '../support/redis';

const QUEUE = '{own-jobs-test}';
const yes = () => Promise.resolve(true);

describe('a controller’s own jobs across a restart', () => {
  let r: TestRedis;
  let queue: Queue;
  let otherController: Worker;
  const logger = createLogger('silent');

  beforeEach(async () => {
    r = await createTestRedis();
    queue = new Queue(QUEUE, { connection: r.redis, prefix: r.prefix });
    // Fetches jobs by hand (no processor): each one it takes is active under the token it was given.
    otherController = new Worker(QUEUE, null, { connection: r.redis, prefix: r.prefix, autorun: false, lockDuration: 60_000 });
  });
  afterEach(async () => {
    await otherController.close();
    await queue.close();
    await r.cleanup();
  });

  async function activeUnder(token: string, id: string) {
    await queue.add('call', {}, { jobId: id });
    const job = await otherController.getNextJob(token);
    expect(job?.id).toBe(id);
    return job;
  }

  it('writes nothing per job: a run is found by its worker’s lock tokens', async () => {
    const job = await activeUnder('last-run-worker:7', 'call-1');
    const before = await r.redis.keys(`${r.prefix}:*`);
    let lockedWhileRunning: unknown;
    await new JobsInFlight().run(job, 'last-run-worker:7', async () => {
      lockedWhileRunning = await jobsLockedBy(r.redis, queue, 'last-run-worker');
    });
    expect(lockedWhileRunning).toEqual([{ jobId: 'call-1', token: 'last-run-worker:7' }]);
    expect(await r.redis.keys(`${r.prefix}:*`)).toEqual(expect.arrayContaining(before));
    expect((await r.redis.keys(`${r.prefix}:*`)).length).toBe(before.length);
  });

  it('moves back to wait the jobs still locked by the last run’s worker, and only those', async () => {
    const lastRun = new NodeJobsStore(r.redis, r.prefix, 'c1', QUEUE);
    await lastRun.recordWorker('last-run-worker');
    await activeUnder('last-run-worker:1', 'left-running');
    await activeUnder('last-run-worker:2', 'also-left-running');
    // Its lock expired and another controller took it: it is that controller's now.
    await activeUnder('other-controller:1', 'taken-over');
    // A worker whose id starts like the last run's is not it.
    await activeUnder('last-run-worker-2:1', 'look-alike');

    const lastRunWorker = await new NodeJobsStore(r.redis, r.prefix, 'c1', QUEUE).takeLastWorker();
    expect(lastRunWorker).toBe('last-run-worker');
    const resumed = await resumeOwnJobs({ queue, redis: r.redis, lastRunWorker, lastRunStopped: yes, ready: yes, logger });

    expect(resumed.sort()).toEqual(['also-left-running', 'left-running']);
    expect(await queue.getJobState('left-running')).toBe('waiting');
    expect(await queue.getJobState('taken-over')).toBe('active');
    expect(await queue.getJobState('look-alike')).toBe('active');
    expect(await r.redis.get(`${r.prefix}:${QUEUE}:taken-over:lock`)).toBe('other-controller:1');
    // The record was taken: a second restart finds nothing.
    expect(await lastRun.takeLastWorker()).toBeNull();
  });

  it('moves nothing while the switches are not connected (the calls could not be asked about)', async () => {
    await activeUnder('last-run-worker:1', 'left-running');
    expect(await resumeOwnJobs({ queue, redis: r.redis, lastRunWorker: 'last-run-worker', lastRunStopped: yes, ready: () => Promise.resolve(false), logger })).toEqual([]);
    expect(await queue.getJobState('left-running')).toBe('active');
  });

  it('moves nothing while another controller runs under the same NODE_ID', async () => {
    const store = new NodeJobsStore(r.redis, r.prefix, 'c1', QUEUE);
    await activeUnder('other-run-worker:1', 'its-job');
    await store.beat('other-run', 1000);
    const stillBeating = setInterval(() => void store.beat('other-run', 1000), 100);
    try {
      expect(
        await resumeOwnJobs({ queue, redis: r.redis, lastRunWorker: 'other-run-worker', lastRunStopped: () => lastRunStopped(store, 300), ready: yes, logger }),
      ).toEqual([]);
    } finally {
      clearInterval(stillBeating);
    }
    expect(await queue.getJobState('its-job')).toBe('active');
  });

  it('tells a last run that stopped beating (killed) from one still running', async () => {
    const store = new NodeJobsStore(r.redis, r.prefix, 'c1', QUEUE);
    expect(await lastRunStopped(store, 300)).toBe(true); // never beat
    await store.beat('killed-run', 5000); // its last beat, still within its time to live
    expect(await lastRunStopped(store, 300)).toBe(true);
  });

  it('keeps each controller’s record apart (NODE_ID)', async () => {
    await new NodeJobsStore(r.redis, r.prefix, 'c1', QUEUE).recordWorker('w1');
    await new NodeJobsStore(r.redis, r.prefix, 'c2', QUEUE).recordWorker('w2');
    expect(await new NodeJobsStore(r.redis, r.prefix, 'c2', QUEUE).takeLastWorker()).toBe('w2');
    expect(await new NodeJobsStore(r.redis, r.prefix, 'c1', QUEUE).takeLastWorker()).toBe('w1');
  });
});

describe('which controllers resume their own jobs on restart', () => {
  it('those given a NODE_ID (the default, from the process id, is no identity across restarts)', () => {
    const env = { ESL_PASSWORD: 'x' };
    expect(loadConfig({ ...env, NODE_ID: 'controller-1' }).resumeOwnJobs).toBe(true);
    expect(loadConfig(env).resumeOwnJobs).toBe(false);
    expect(loadConfig({ ...env, NODE_ID: ' ' }).resumeOwnJobs).toBe(false);
  });
});
