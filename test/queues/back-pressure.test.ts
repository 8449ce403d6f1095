/**
 * Back-pressure end to end against the switch simulator: POST /v1/calls and a direct enqueue are
 * refused (429 gateway_rate_limited / 503 switch_at_capacity, Retry-After) instead of queueing a call
 * that would ring late, and the worker holds queued calls while the switch refuses new channels.
 *
 * The simulator answers `status` like a switch with the shipped limits (sessions-per-second 30,
 * min-idle-cpu off). A low Idle-CPU is what a real switch reports in HEARTBEAT and `status` (trace
 * 04c); here the test hands the controller such a HEARTBEAT and such a `status`.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { enqueueClickToDial, callbackQueueName, CapacityRefusedError, CLICK_TO_DIAL_JOB_NAME } from '../../src';
import { callIdFor } from '../../src/calls/click-to-dial-request';
import { parsePlainEvent } from '../../src/esl/event';
import { CLICK_TO_DIAL_JOB_VERSION, signClickToDialJob } from '../../src/calls/click-to-dial-job';
import { capacityKey } from '../../src/queues/switch-capacity';
import { paceKey, readDispatchPace } from '../../src/queues/dispatch-pace';
import { createRedis } from '../../src/stores/redis';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';

async function post(sys: TestSystem, requestId: string, i: number): Promise<{ status: number; code?: string; retryAfter?: string }> {
  const res = await sys.app.http.inject({
    method: 'POST',
    url: '/v1/calls',
    headers: { authorization: `Bearer ${sys.apiKey}`, 'content-type': 'application/json' },
    payload: { requestId, a: `1380000${String(8000 + i)}`, b: `1390000${String(8000 + i)}` },
  });
  const body = res.json<{ error?: { code: string } }>();
  const retryAfter = res.headers['retry-after'];
  return { status: res.statusCode, code: body.error?.code, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined };
}

describe('back-pressure: calls the gateway or the switch cannot dial in time are refused', () => {
  it('429 gateway_rate_limited once the backlog would wait longer than CALLBACK_MAX_WAIT_SECONDS at the gateway rate', async () => {
    // No worker takes calls: the backlog only grows. 2 calls/s, at most 2 s: four wait, the fifth would wait 2.5 s.
    const sys = await startTestSystem({ workers: false, env: { CALLBACK_CALLS_PER_SECOND: '2', CALLBACK_MAX_WAIT_SECONDS: '2', CALLBACK_SWITCH_SHARE: '85' } });
    try {
      const replies = [];
      for (let i = 0; i < 5; i++) replies.push(await post(sys, `gw-${i}`, i));
      expect(replies.slice(0, 4).map((r) => r.status)).toEqual([202, 202, 202, 202]);
      expect(replies[4]).toEqual({ status: 429, code: 'gateway_rate_limited', retryAfter: '1' });
      // Refused before it was recorded: nothing to show, nobody will be rung.
      const refusedId = callIdFor(sys.tenantId, 'gw-4');
      expect((await sys.api('GET', `/v1/calls/${refusedId}`)).status).toBe(404);
      // An accepted call asked for again is the same call, whatever the backlog.
      expect((await post(sys, 'gw-0', 0)).status).toBe(200);
      // The gateway's rate is the narrower one: the queue's limiter runs at it.
      const redis = createRedis('redis://127.0.0.1:6379');
      expect(await redis.hget(`${sys.env.REDIS_PREFIX!}:${callbackQueueName('carrier')}:meta`, 'max')).toBe('2');
      await redis.quit();
    } finally {
      await sys.stop();
    }
  });

  it("the queue follows the switch's sessions-per-second: 503 switch_at_capacity when the switch sets the pace", async () => {
    // 30 sessions/s (the simulator's, as shipped): (30 − 1) × 85 % / 2 legs = 12 calls/s; 1 s of backlog is 12 calls.
    const sys = await startTestSystem({ workers: false, env: { CALLBACK_CALLS_PER_SECOND: '1000', CALLBACK_MAX_WAIT_SECONDS: '1', CALLBACK_SWITCH_SHARE: '85' } });
    try {
      const statuses = [];
      for (let i = 0; i < 13; i++) statuses.push((await post(sys, `sw-${i}`, 100 + i)).status);
      expect(statuses.filter((s) => s === 202)).toHaveLength(12);
      expect(await post(sys, 'sw-13', 113)).toEqual({ status: 503, code: 'switch_at_capacity', retryAfter: '1' });
      const redis = createRedis('redis://127.0.0.1:6379');
      expect(await redis.hget(`${sys.env.REDIS_PREFIX!}:${callbackQueueName('carrier')}:meta`, 'max')).toBe('12');
      await redis.quit();
    } finally {
      await sys.stop();
    }
  });

  it('bounds the wait by the rate calls are actually dialled at: 503 switch_at_capacity when they leave slower than the limit', async () => {
    // The limit allows 400 calls/s; the controllers manage 6 (the calls they dialled lately waited 1.5 s each, 1.9 s at most).
    const sys = await startTestSystem({ workers: false, env: { CALLBACK_CALLS_PER_SECOND: '400', CALLBACK_MAX_WAIT_SECONDS: '2' } });
    const backend = createRedis('redis://127.0.0.1:6379');
    try {
      const prefix = sys.env.REDIS_PREFIX!;
      // As every controller's worker leaves it (dispatch-pace.ts), for every second the test may span.
      const second = Math.floor(Date.now() / 1000);
      for (let s = second - 5; s <= second + 20; s++) {
        await backend.multi().hset(paceKey(prefix, 'carrier', s), 'calls', 6, 'lagMs', 9000, 'max:c1', 1900).pexpire(paceKey(prefix, 'carrier', s), 30_000).exec();
      }
      // At 6 calls/s, 2 s is 12 calls: twelve wait, the thirteenth would wait 2.2 s.
      const replies = [];
      for (let i = 0; i < 13; i++) replies.push(await post(sys, `pace-${i}`, 300 + i));
      expect(replies.slice(0, 12).map((r) => r.status)).toEqual(Array(12).fill(202));
      expect(replies[12]).toEqual({ status: 503, code: 'switch_at_capacity', retryAfter: '1' });
      const err = await enqueueClickToDial(
        { connection: backend, prefix, gateway: 'carrier' },
        { tenantId: sys.tenantId, requestId: 'pace-direct', a: '13800008401', b: '13900008401' },
        { keyId: sys.apiKeyId, apiKey: sys.apiKey },
      ).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'switch_at_capacity', retryAfterSeconds: 1 });
      // The latest calls dialled later than the bound (6 s after they were accepted): any new call would be too.
      for (let s = second - 5; s <= second + 20; s++) await backend.hset(paceKey(prefix, 'carrier', s), 'calls', 6, 'lagMs', 600, 'max:c1', 200, 'max:c2', 6000);
      await new Promise((r) => setTimeout(r, 300)); // the API's copy of the pace is 250 ms old at most
      expect(await post(sys, 'pace-13', 313)).toEqual({ status: 503, code: 'controller_overloaded', retryAfter: '4' });
      // Once the calls are dialled without waiting (the controllers caught up), the limit's rate is back.
      for (let s = second - 5; s <= second + 20; s++) await backend.hset(paceKey(prefix, 'carrier', s), 'calls', 6, 'lagMs', 600, 'max:c1', 200, 'max:c2', 300);
      await new Promise((r) => setTimeout(r, 300));
      expect((await post(sys, 'pace-14', 314)).status).toBe(202);
    } finally {
      await backend.quit();
      await sys.stop();
    }
  });

  it("each controller's worker counts the calls it dials and how long after being queued, first attempts only", async () => {
    const sys = await startTestSystem({ env: { CALLBACK_MAX_WAIT_SECONDS: '5' } });
    const backend = createRedis('redis://127.0.0.1:6379');
    const queue = new Queue(callbackQueueName('carrier'), { connection: backend, prefix: sys.env.REDIS_PREFIX! });
    try {
      const a = '13800008402';
      const b = '13900008402';
      sys.sim.setPhone(a, { answer: 'answer' });
      sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 200 });
      // Queued 4 s ago by a backend (BullMQ's own time of queueing).
      const data = signClickToDialJob({ v: CLICK_TO_DIAL_JOB_VERSION, tenantId: sys.tenantId, requestId: 'waited', a, b }, { keyId: sys.apiKeyId, apiKey: sys.apiKey });
      const callId = callIdFor(sys.tenantId, 'waited');
      const queuedAt = Date.now();
      await queue.add(CLICK_TO_DIAL_JOB_NAME, data, { jobId: callId, timestamp: queuedAt - 4000 });
      expect((await sys.waitForCall(callId, (c) => c.cdr !== null, 15_000)).result).toBe('connected');
      let pace: Awaited<ReturnType<typeof readDispatchPace>> = null;
      await waitUntil('the pace of the started call written', async () => {
        // The 3 seconds from the one it was queued in (the call is over by now: its CDR waited for company).
        pace = await readDispatchPace(backend, sys.env.REDIS_PREFIX!, 'carrier', queuedAt + 3000);
        return pace !== null;
      });
      expect(pace).toMatchObject({ calls: 1 });
      expect(pace!.meanLagSeconds).toBeGreaterThanOrEqual(4);
      expect(pace!.meanLagSeconds).toBeLessThan(10);
      expect(pace!.maxLagSeconds).toBeCloseTo(pace!.meanLagSeconds, 2);
      // A retry is dialled long after its call was queued, by design (the tenant's retry delay): not counted.
      const c = '13800008403';
      const d = '13900008403';
      sys.sim.setPhone(c, { answer: 'answer' });
      sys.sim.setPhone(d, { answer: 'answer', hangupAfterMs: 200 });
      const retry = signClickToDialJob({ v: CLICK_TO_DIAL_JOB_VERSION, tenantId: sys.tenantId, requestId: 'retried', a: c, b: d }, { keyId: sys.apiKeyId, apiKey: sys.apiKey });
      const retryId = callIdFor(sys.tenantId, 'retried');
      await queue.add(CLICK_TO_DIAL_JOB_NAME, { ...retry, attempt: 2 }, { jobId: retryId, timestamp: Date.now() - 30_000 });
      expect((await sys.waitForCall(retryId, (x) => x.cdr !== null, 15_000)).result).toBe('connected');
      await new Promise((r) => setTimeout(r, 400)); // a flush (every 250 ms) has passed
      const total = async () => {
        let calls = 0;
        for (const k of await backend.keys(`${sys.env.REDIS_PREFIX!}:dispatch-pace:*`)) calls += Number(await backend.hget(k, 'calls'));
        return calls;
      };
      expect(await total()).toBe(1);
    } finally {
      await queue.close();
      await backend.quit();
      await sys.stop();
    }
  });

  describe('while the switch is short of idle CPU', () => {
    let sys: TestSystem;
    let backend: Redis;
    let status = '';
    /** Hands the controller a HEARTBEAT and waits until the reading it leads to is published; returns when the HEARTBEAT was sent. */
    const setIdle = async (idle: number): Promise<number> => {
      status = [
        'UP 0 years, 0 days, 0 hours, 2 minutes, 19 seconds, 594 milliseconds, 829 microseconds',
        'FreeSWITCH (Version 1.10.12-release  64bit) is ready',
        '7 session(s) since startup',
        '0 session(s) - peak 2, last 5min 2 ',
        '0 session(s) per Sec out of max 30, peak 2, last 5min 2 ',
        '1000 session(s) max',
        `min idle cpu 25.00/${idle.toFixed(2)}`,
        'Current Stack Size/Max 240K/8192K',
        '',
      ].join('\n');
      // A HEARTBEAT as FreeSWITCH sends it (trace 04c), every second here.
      const sentAt = Date.now();
      sys.app.esl.emit(
        'event',
        parsePlainEvent(
          `Event-Name: HEARTBEAT\nCore-UUID: ${sys.sim.coreUuid}\nEvent-Calling-Function: send_heartbeat\nEvent-Info: System%20Ready\nSession-Count: 0\nMax-Sessions: 1000\nSession-Per-Sec: 30\nSession-Per-Sec-Last: 0\nIdle-CPU: ${idle.toFixed(6)}\n`,
        ),
      );
      // The HEARTBEAT makes the controller ask `status`, then publish the snapshot direct producers read.
      await waitUntil(`the capacity snapshot with idle CPU ${idle} published`, async () => {
        const raw = await backend.get(capacityKey(sys.env.REDIS_PREFIX!, 'carrier'));
        const published = raw ? (JSON.parse(raw) as { switch?: { idleCpu?: number; minIdleCpu?: number | null } | null }) : null;
        return published?.switch?.idleCpu === idle && published.switch.minIdleCpu === 25;
      });
      return sentAt;
    };

    beforeAll(async () => {
      sys = await startTestSystem({ env: { CALLBACK_MAX_WAIT_SECONDS: '5', CALLBACK_SWITCH_SHARE: '85' } });
      const original = sys.app.esl.api.bind(sys.app.esl);
      jest.spyOn(sys.app.esl, 'api').mockImplementation((command, opts) => (command === 'status' && status ? Promise.resolve(status) : original(command, opts)));
      backend = createRedis('redis://127.0.0.1:6379');
      const firstAt = await setIdle(90);
      // Real time must pass: the controller measures the heartbeat interval between the two HEARTBEATs,
      // and Retry-After is that interval rounded. Sent 1 s after the first, however long publishing took.
      await new Promise((r) => setTimeout(r, Math.max(0, firstAt + 1000 - Date.now())));
      await setIdle(10); // a second later: heartbeats 1 s apart, so Retry-After is 1 s
    });
    afterAll(async () => {
      await backend?.quit();
      await sys?.stop();
    });

    it('POST /v1/calls is refused with 503 switch_at_capacity and Retry-After; a direct enqueue throws the same', async () => {
      expect(await post(sys, 'cpu-1', 200)).toEqual({ status: 503, code: 'switch_at_capacity', retryAfter: '1' });
      const err = await enqueueClickToDial(
        { connection: backend, prefix: sys.env.REDIS_PREFIX!, gateway: 'carrier' },
        { tenantId: sys.tenantId, requestId: 'cpu-direct', a: '13800008201', b: '13900008201' },
        { keyId: sys.apiKeyId, apiKey: sys.apiKey },
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CapacityRefusedError);
      expect(err).toMatchObject({ code: 'switch_at_capacity', kind: 'unavailable', retryAfterSeconds: 1 });
    });

    it('a call already queued is held, not dialled into a refusal, and dialled once the switch has CPU again', async () => {
      const a = '13800008202';
      const b = '13900008202';
      sys.sim.setPhone(a, { answer: 'answer' });
      sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 200 });
      // Queued before the switch ran short (added as is, past admission).
      const queue = new Queue(callbackQueueName('carrier'), { connection: backend, prefix: sys.env.REDIS_PREFIX! });
      const data = signClickToDialJob({ v: CLICK_TO_DIAL_JOB_VERSION, tenantId: sys.tenantId, requestId: 'held', a, b }, { keyId: sys.apiKeyId, apiKey: sys.apiKey });
      const callId = callIdFor(sys.tenantId, 'held');
      await queue.add(CLICK_TO_DIAL_JOB_NAME, data, { jobId: callId });
      // The worker took the job and held it, and took it again once the 1 s hold ran out and held it again:
      // had it dialled instead, A would have been rung by now.
      const holds = () => sys.logLines.filter((l) => l.includes('holding the call queue') && l.includes(callId)).length;
      await waitUntil('the queued call to be held twice', () => holds() >= 2);
      expect(sys.sim.invitesTo(a)).toHaveLength(0);
      expect(['waiting', 'delayed', 'prioritized', 'active']).toContain(await (await queue.getJob(callId))?.getState());
      await setIdle(80);
      const done = await sys.waitForCall(callId, (c) => c.cdr !== null, 15_000);
      expect(done.result).toBe('connected');
      expect(sys.sim.invitesTo(a)).toHaveLength(1);
      await queue.close();
    });
  });
});
