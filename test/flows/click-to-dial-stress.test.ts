/**
 * Stress: thousands of click-to-dial calls against the switch simulator with randomised carrier timing —
 * when A answers and hangs up, B answering, busy, declining, not answering or refused by the switch, A's
 * BYE racing each step of the controller (the originate reply, the bridge command, B's answer, a failed
 * bridge), maximum durations, and cancels through the API at random moments. Afterwards every call must
 * have exactly one CDR and nothing may be left: no channel on the switch, no live call that is not
 * completed, no BullMQ job that is not completed (or removed by a cancel before it started), nobody rung twice.
 *
 * STRESS_CALLS (default 2000) and STRESS_SEED (default: random, printed) reproduce a run.
 */
import { Queue } from 'bullmq';
import type { CallView } from '../../src/calls/types';
import { loadConfig } from '../../src/config';
import { legUuid } from '../../src/flows/click-to-dial';
import { callIdFor } from '../../src/calls/click-to-dial-request';
import { callbackQueueName } from '../../src/calls/callback-queue';
import { CLICK_TO_DIAL_JOB_NAME, CLICK_TO_DIAL_JOB_VERSION, signClickToDialJob, type ClickToDialJobData } from '../../src/calls/click-to-dial-job';
import { LiveCallStore } from '../../src/stores/live-calls';
import { createRedis, type Redis } from '../../src/stores/redis';
import type { ByeRace, PhoneBehaviour } from '../simulator/FreeSwitchSimulator';
import { TEST_REDIS_URL } from '../support/redis';
import { startTestSystem, type TestSystem } from '../support/system';

const CALLS = Number(process.env.STRESS_CALLS ?? 2000);
const SEED = Number(process.env.STRESS_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** One simulated second is 5 ms: a call of a few simulated minutes lasts about a second. */
const TIME_SCALE = 0.005;

/** mulberry32: a small seeded generator, so a failing run can be replayed with STRESS_SEED. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const RACES: ByeRace[] = ['originate-reply-before', 'originate-reply-after', 'bridge-before', 'bridge-accepted', 'bridge-started', 'b-answer-before', 'b-answer-after', 'bridge-failed'];

interface Plan {
  readonly a: string;
  readonly b: string;
  readonly phoneA: PhoneBehaviour;
  readonly phoneB: PhoneBehaviour;
  readonly body: Record<string, unknown>;
  /** Cancel through the API this long (real ms) after the call was accepted; undefined: no cancel. */
  readonly cancelAfterMs?: number;
}

function planCalls(n: number, random: () => number): Plan[] {
  const pick = <T,>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const chance = (p: number): boolean => random() < p;
  const ms = (maxSeconds: number): number => Math.round(random() * maxSeconds * 1000);
  return Array.from({ length: n }, (_, i) => {
    const a = `138${String(20_000_000 + i).padStart(8, '0')}`;
    const b = `139${String(20_000_000 + i).padStart(8, '0')}`;
    const aMode = pick(['answer', 'answer', 'answer', 'answer', 'answer', 'answer', 'busy', 'no-answer', 'decline', 'refused'] as const);
    const bMode = pick(['answer', 'answer', 'answer', 'busy', 'no-answer', 'decline', 'refused', 'unreachable'] as const);
    const phoneA: PhoneBehaviour = {
      answer: aMode,
      ringMs: ms(4),
      ...(chance(0.4) ? { hangupAfterMs: ms(60) } : {}),
      ...(chance(0.25) ? { byeRacing: pick(RACES) } : {}),
      ...(aMode === 'refused' ? { refuseCause: pick(['DESTINATION_OUT_OF_ORDER', 'GATEWAY_DOWN']) } : {}),
    };
    const phoneB: PhoneBehaviour = {
      answer: bMode,
      ringMs: ms(6),
      ...(chance(0.7) ? { hangupAfterMs: ms(60) } : {}),
      ...(bMode === 'refused' ? { refuseCause: pick(['DESTINATION_OUT_OF_ORDER', 'GATEWAY_DOWN', 'INVALID_GATEWAY']) } : {}),
    };
    return {
      a,
      b,
      phoneA,
      phoneB,
      body: { requestId: `stress-${SEED}-${i}`, a, b, ringTimeoutASeconds: 5 + Math.floor(random() * 10), ringTimeoutBSeconds: 5 + Math.floor(random() * 10), maxDurationSeconds: 10 + Math.floor(random() * 50) },
      ...(chance(0.12) ? { cancelAfterMs: Math.round(random() * 300) } : {}),
    };
  });
}

describe(`click-to-dial stress: ${CALLS} calls with randomised carrier timing (seed ${SEED})`, () => {
  let sys: TestSystem;
  let redis: Redis;
  let queue: Queue;
  let live: LiveCallStore;
  let key: { keyId: string; apiKey: string };

  beforeAll(async () => {
    sys = await startTestSystem({ timeScale: TIME_SCALE });
    redis = createRedis(TEST_REDIS_URL);
    const config = loadConfig(sys.env);
    queue = new Queue(callbackQueueName(config.dial.gateway), { connection: redis, prefix: config.redisPrefix });
    live = new LiveCallStore(redis, config.redisPrefix);
    key = { keyId: sys.apiKeyId, apiKey: sys.apiKey };
  });
  afterAll(async () => {
    await queue?.close();
    await sys?.stop();
    redis?.disconnect();
  });

  it('every call ends with one CDR, and no channel, live call or job is left', async () => {
    const plans = planCalls(CALLS, rng(SEED));
    for (const p of plans) {
      sys.sim.setPhone(p.a, p.phoneA);
      sys.sim.setPhone(p.b, p.phoneB);
    }
    const started = Date.now();
    // Queued the way a backend queues them (signed jobs, in bulk): the calls reach the flow as fast as the
    // worker takes them. A call to be cancelled goes through the API, so it exists (and can be cancelled) at once.
    const ids = plans.map((p) => callIdFor(sys.tenantId, p.body.requestId as string));
    const toCancel = plans.flatMap((p, i) => (p.cancelAfterMs === undefined ? [] : [i]));
    const direct = plans.flatMap((p, i) =>
      p.cancelAfterMs !== undefined
        ? []
        : [{ name: CLICK_TO_DIAL_JOB_NAME, data: signClickToDialJob({ v: CLICK_TO_DIAL_JOB_VERSION, tenantId: sys.tenantId, ...(p.body as Omit<ClickToDialJobData, 'v' | 'tenantId'>) }, key), opts: { jobId: ids[i]! } }],
    );
    const cancels = toCancel.map(async (i) => {
      const call: CallView = await sys.placeCall(plans[i]!.body);
      await new Promise((r) => setTimeout(r, plans[i]!.cancelAfterMs));
      const res = await sys.api('POST', `/v1/calls/${call.id}/cancel`);
      // 409: the call had already ended
      if (res.status !== 200 && res.status !== 409) throw new Error(`cancel ${call.id}: ${res.status} ${JSON.stringify(res.body)}`);
    });
    await queue.addBulk(direct);
    const placedMs = Date.now() - started;
    await Promise.all(cancels);

    // every call gets its CDR (a condition, bounded generously for a busy machine)
    const deadline = Date.now() + 90_000;
    for (;;) {
      const [rows] = await sys.app.pool.query('SELECT COUNT(*) AS n FROM cdrs WHERE tenant_id = ?', [sys.tenantId]);
      if ((rows as Array<{ n: number }>)[0]!.n >= CALLS || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const settledMs = Date.now() - started;
    const [perCall] = await sys.app.pool.query('SELECT call_id AS id, COUNT(*) AS n, MIN(result) AS result FROM cdrs WHERE tenant_id = ? GROUP BY call_id', [sys.tenantId]);
    const byId = new Map((perCall as Array<{ id: string; n: number; result: string }>).map((r) => [r.id, r]));
    const missing = ids.filter((id) => !byId.has(id));
    expect({ missing: missing.length, sample: missing.slice(0, 5) }).toEqual({ missing: 0, sample: [] });
    expect([...byId.values()].filter((r) => r.n !== 1)).toEqual([]);

    // nothing left on the switch
    expect(sys.sim.channels()).toEqual([]);

    // every live call completed, every job completed (or removed: cancelled before a worker took it)
    const notCompleted: string[] = [];
    const jobsLeft: Array<{ id: string; state: string }> = [];
    for (const id of ids) {
      const state = (await live.get(id))?.state;
      const job = await queue.getJob(id);
      const jobState = job ? await job.getState() : 'removed';
      if (jobState !== 'completed' && !(jobState === 'removed' && byId.get(id)?.result === 'cancelled')) jobsLeft.push({ id, state: jobState });
      if (state !== 'completed') notCompleted.push(`${id}:${state}`);
    }
    expect(notCompleted).toEqual([]);
    expect(jobsLeft).toEqual([]);
    const counts = await queue.getJobCounts('active', 'wait', 'delayed', 'failed', 'prioritized');
    expect(counts).toEqual({ active: 0, wait: 0, delayed: 0, failed: 0, prioritized: 0 });

    // nobody rung twice
    const twice = plans.filter((p, i) => sys.sim.invitesTo(p.a).length > 1 || sys.sim.invitesTo(p.b).length > 1 || sys.sim.originateCount(legUuid(ids[i]!, 'a', 1)) > 1);
    expect(twice.map((p) => p.a)).toEqual([]);

    const results: Record<string, number> = {};
    for (const r of byId.values()) results[r.result] = (results[r.result] ?? 0) + 1;
    console.log(
      `stress seed=${SEED}: ${CALLS} calls queued in ${placedMs} ms, all settled in ${settledMs} ms ` +
        `(${Math.round((CALLS * 1000) / settledMs)} calls/s); ${cancels.length} placed and cancelled through the API; results ${JSON.stringify(results)}`,
    );
  }, 180_000);
});
