/**
 * What a controller records of its running jobs, and what its next run takes back (lifecycle/own-jobs.ts):
 * only jobs still locked under the tokens the last run recorded; never one another controller holds now.
 */
import { Queue, Worker } from 'bullmq';
import { loadConfig } from '../../src/config';
import { JobsInFlight } from '../../src/lifecycle/jobs-in-flight';
import { lastRunStopped, ownJobsJournal, resumeOwnJobs } from '../../src/lifecycle/own-jobs';
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

  it('records a job while it runs here and strikes it when it ends', async () => {
    const store = new NodeJobsStore(r.redis, r.prefix, 'c1', QUEUE);
    const inFlight = new JobsInFlight(ownJobsJournal(store, logger));
    const job = await activeUnder('token-1', 'call-1');
    let recordedWhileRunning: unknown;
    await inFlight.run(job, 'token-1', async () => {
      recordedWhileRunning = await r.redis.hgetall(`${r.prefix}:node-jobs:c1:${QUEUE}`);
    });
    expect(recordedWhileRunning).toEqual({ 'call-1': 'token-1' });
    await new Promise((res) => setTimeout(res, 50)); // the strike is not awaited by the job
    expect(await store.takeAll()).toEqual([]);
  });

  it('moves back to wait the jobs still locked under the last run’s tokens, and only those', async () => {
    const lastRun = new NodeJobsStore(r.redis, r.prefix, 'c1', QUEUE);
    await activeUnder('last-run-token', 'left-running');
    await lastRun.running('left-running', 'last-run-token');
    // Its lock expired and another controller took it: it is that controller's now.
    await activeUnder('other-controller-token', 'taken-over');
    await lastRun.running('taken-over', 'last-run-token');
    await lastRun.running('finished-and-removed', 'last-run-token');

    const left = await new NodeJobsStore(r.redis, r.prefix, 'c1', QUEUE).takeAll();
    expect(left).toHaveLength(3);
    const resumed = await resumeOwnJobs({ queue, left, lastRunStopped: yes, ready: yes, logger });

    expect(resumed).toEqual(['left-running']);
    expect(await queue.getJobState('left-running')).toBe('waiting');
    expect(await queue.getJobState('taken-over')).toBe('active');
    expect(await r.redis.get(`${r.prefix}:${QUEUE}:taken-over:lock`)).toBe('other-controller-token');
    // The record was taken: a second restart finds nothing.
    expect(await lastRun.takeAll()).toEqual([]);
  });

  it('moves nothing while the switches are not connected (the calls could not be asked about)', async () => {
    await activeUnder('last-run-token', 'left-running');
    const left = [{ jobId: 'left-running', token: 'last-run-token' }];
    expect(await resumeOwnJobs({ queue, left, lastRunStopped: yes, ready: () => Promise.resolve(false), logger })).toEqual([]);
    expect(await queue.getJobState('left-running')).toBe('active');
  });

  it('moves nothing while another controller runs under the same NODE_ID', async () => {
    const store = new NodeJobsStore(r.redis, r.prefix, 'c1', QUEUE);
    await activeUnder('other-run-token', 'its-job');
    await store.beat('other-run', 1000);
    const stillBeating = setInterval(() => void store.beat('other-run', 1000), 100);
    try {
      const left = [{ jobId: 'its-job', token: 'other-run-token' }];
      expect(await resumeOwnJobs({ queue, left, lastRunStopped: () => lastRunStopped(store, 300), ready: yes, logger })).toEqual([]);
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
    await new NodeJobsStore(r.redis, r.prefix, 'c1', QUEUE).running('a', 't1');
    await new NodeJobsStore(r.redis, r.prefix, 'c2', QUEUE).running('b', 't2');
    expect(await new NodeJobsStore(r.redis, r.prefix, 'c2', QUEUE).takeAll()).toEqual([{ jobId: 'b', token: 't2' }]);
    expect(await new NodeJobsStore(r.redis, r.prefix, 'c1', QUEUE).takeAll()).toEqual([{ jobId: 'a', token: 't1' }]);
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
