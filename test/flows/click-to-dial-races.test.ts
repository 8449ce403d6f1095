/**
 * No click-to-dial call outlives its legs (issues 12 and 14). Each test replays one interleaving of the
 * carrier's timing against the switch simulator, deterministically (PhoneBehaviour.byeRacing puts A's BYE at
 * an exact point of the controller's conversation with the switch), and checks the CDR (result, cause, side),
 * that the call settled right after its last leg ended, and that nothing is left: no channel on the switch,
 * the live state completed, the BullMQ job completed.
 *
 * No fixed sleeps: every wait is for a condition. "Promptly" is measured from the moment the test saw A's
 * CHANNEL_HANGUP_COMPLETE to the CDR's end, against PROMPTLY_MS: every way the flow can end a wait by
 * timing out takes 10 s or more, an event-driven end takes milliseconds, and a busy 2-core machine fits
 * comfortably in between.
 */
import { Queue } from 'bullmq';
import type { CallView } from '../../src/calls/types';
import { loadConfig } from '../../src/config';
import type { CdrRecord } from '../../src/domain/call';
import type { EslEvent } from '../../src/esl/event';
import { callIdFor } from '../../src/calls/click-to-dial-request';
import { legUuid } from '../../src/flows/click-to-dial';
import { callbackQueueName } from '../../src/calls/callback-queue';
import { LiveCallStore } from '../../src/stores/live-calls';
import { createRedis, type Redis } from '../../src/stores/redis';
import type { ByeRace, PhoneBehaviour } from '../simulator/FreeSwitchSimulator';
import { TEST_REDIS_URL } from '../support/redis';
import { startTestSystem, type TestSystem } from '../support/system';

const PROMPTLY_MS = 5000;
/** A number whose dial string is FreeSWITCH's `error/` endpoint: the switch refuses to create the channel (recording 16a). */
const B_OUT_OF_ORDER = '13900009999';

async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`not reached in ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Seen {
  readonly e: EslEvent;
  readonly at: number;
}

/** One system per describe: the simulator, the controller, a fresh database and Redis prefix, and probes into them. */
function harness(opts: { env?: Record<string, string> } = {}) {
  const h = {} as {
    sys: TestSystem;
    redis: Redis;
    queue: Queue;
    live: LiveCallStore;
    events: Seen[];
  };
  let seq = 0;
  beforeAll(async () => {
    h.sys = await startTestSystem({ env: { DIAL_STRING_OVERRIDES: JSON.stringify({ [B_OUT_OF_ORDER]: 'error/DESTINATION_OUT_OF_ORDER' }), ...opts.env } });
    h.redis = createRedis(TEST_REDIS_URL);
    const config = loadConfig(h.sys.env);
    h.queue = new Queue(callbackQueueName(config.dial.gateway), { connection: h.redis, prefix: config.redisPrefix });
    h.live = new LiveCallStore(h.redis, config.redisPrefix);
    h.events = [];
    h.sys.app.esl.on('event', (e: EslEvent) => h.events.push({ e, at: Date.now() }));
  });
  afterAll(async () => {
    await h.queue?.close();
    await h.sys?.stop();
    h.redis?.disconnect();
  });

  const numbers = (): { a: string; b: string } => {
    seq++;
    return { a: `1380001${String(seq).padStart(4, '0')}`, b: `1390001${String(seq).padStart(4, '0')}` };
  };

  const legs = (callId: string) => ({ uA: legUuid(callId, 'a', 1), uB: legUuid(callId, 'b', 1) });

  const eventsOf = (uuid: string): Seen[] => h.events.filter((s) => s.e.uuid === uuid);

  /**
   * The call's CDR, once its job has completed; and the proof that nothing of it is left anywhere.
   * Returns the CDR and how long after A's HANGUP_COMPLETE (as this test saw it) the call settled.
   */
  const settled = async (call: CallView): Promise<{ cdr: CdrRecord; lagMs: number; view: CallView }> => {
    const view = await h.sys.waitForCall(call.id, (c) => c.cdr !== null, 30_000);
    const job = await until(`job of ${call.id} completed`, async () => {
      const j = await h.queue.getJob(call.id);
      return j && (await j.getState()) === 'completed' ? j : undefined;
    });
    expect(job.returnvalue).toMatchObject({ result: view.cdr!.result });
    const { uA, uB } = legs(call.id);
    expect(h.sys.sim.channels().filter((c) => c.uuid === uA || c.uuid === uB)).toEqual([]);
    expect(await h.live.get(call.id)).toMatchObject({ state: 'completed', result: view.cdr!.result });
    const aEnd = eventsOf(uA).find((s) => s.e.name === 'CHANNEL_HANGUP_COMPLETE');
    return { cdr: view.cdr!, lagMs: aEnd ? view.cdr!.endedAt - aEnd.at : Number.NaN, view };
  };

  const place = async (a: PhoneBehaviour, b: PhoneBehaviour, extra: Record<string, unknown> = {}, nums = numbers()): Promise<{ call: CallView; a: string; b: string }> => {
    h.sys.sim.setPhone(nums.a, a);
    h.sys.sim.setPhone(nums.b, b);
    const call = await h.sys.placeCall({ requestId: `race-${nums.a}`, a: nums.a, b: nums.b, ringTimeoutBSeconds: 60, ...extra });
    return { call, ...nums };
  };

  return { h, numbers, legs, eventsOf, settled, place };
}

describe('click-to-dial: A hanging up at any moment settles the call at once with the right result', () => {
  const { h, legs, eventsOf, settled, place } = harness();

  it('A hangs up as soon as B’s channel exists: B is cancelled, the call is cancelled by A', async () => {
    const { call, b } = await place({ answer: 'answer', byeRacing: 'bridge-started' }, { answer: 'no-answer' });
    const { cdr, lagMs } = await settled(call);
    const { uB } = legs(call.id);
    expect(cdr).toMatchObject({ result: 'cancelled', hangupCause: 'NORMAL_CLEARING', hangupSide: 'a', talkSeconds: 0 });
    expect(h.sys.sim.invitesTo(b)).toHaveLength(1);
    expect(eventsOf(uB).find((s) => s.e.name === 'CHANNEL_HANGUP')?.e.header('Hangup-Cause')).toBe('ORIGINATOR_CANCEL');
    expect(lagMs).toBeLessThan(PROMPTLY_MS);
  });

  it.each<[ByeRace]>([['originate-reply-before'], ['originate-reply-after']])(
    'A answers and hangs up racing the originate reply (%s): cancelled by A, A reached (no retry), B never rung',
    async (race) => {
      const { call, a, b } = await place({ answer: 'answer', byeRacing: race }, { answer: 'answer' });
      const { cdr, lagMs } = await settled(call);
      expect(cdr).toMatchObject({ result: 'cancelled', hangupSide: 'a', hangupCause: 'NORMAL_CLEARING' });
      expect(cdr.aAnswerAt).not.toBeNull();
      expect(h.sys.sim.invitesTo(a)).toHaveLength(1);
      expect(h.sys.sim.invitesTo(b)).toHaveLength(0);
      expect(lagMs).toBeLessThan(PROMPTLY_MS);
    },
  );

  it('A hangs up just before B answers: B is cancelled, cancelled by A', async () => {
    const { call, b } = await place({ answer: 'answer', byeRacing: 'b-answer-before' }, { answer: 'answer', ringMs: 1000 });
    const { cdr, lagMs } = await settled(call);
    expect(cdr).toMatchObject({ result: 'cancelled', hangupSide: 'a', bAnswerAt: null, talkSeconds: 0 });
    expect(h.sys.sim.invitesTo(b)).toHaveLength(1);
    expect(lagMs).toBeLessThan(PROMPTLY_MS);
  });

  it('A hangs up just after the bridge: connected, ended by A', async () => {
    const { call } = await place({ answer: 'answer', byeRacing: 'b-answer-after' }, { answer: 'answer', ringMs: 1000 });
    const { cdr, lagMs } = await settled(call);
    expect(cdr).toMatchObject({ result: 'connected', hangupSide: 'a', hangupCause: 'NORMAL_CLEARING' });
    expect(cdr.bAnswerAt).not.toBeNull();
    expect(lagMs).toBeLessThan(PROMPTLY_MS);
  });

  it('A hangs up while B rings: cancelled by A with A’s cause', async () => {
    const { call } = await place({ answer: 'answer', hangupAfterMs: 1000 }, { answer: 'no-answer' });
    const { cdr, lagMs } = await settled(call);
    expect(cdr).toMatchObject({ result: 'cancelled', hangupSide: 'a', hangupCause: 'NORMAL_CLEARING' });
    expect(lagMs).toBeLessThan(PROMPTLY_MS);
  });

  it('a connected call is followed to its end however long it lasts: the flow’s short waits never cut it', async () => {
    // 12 s of real time (240 s simulated at the test's timeScale 0.05): longer than any of the flow's short
    // waits (1 s, 10 s), which must not apply to a bridged call; only the maximum duration does.
    const { call } = await place({ answer: 'answer' }, { answer: 'answer', hangupAfterMs: 240_000 });
    const { cdr, lagMs } = await settled(call);
    expect(cdr).toMatchObject({ result: 'connected', hangupSide: 'b', hangupCause: 'NORMAL_CLEARING' });
    expect(cdr.talkSeconds).toBeGreaterThanOrEqual(239);
    expect(lagMs).toBeLessThan(PROMPTLY_MS);
  }, 40_000);
});

describe('click-to-dial: a B leg the switch refuses ends with the switch’s cause (issue 12)', () => {
  const { h, numbers, legs, eventsOf, settled, place } = harness();

  it('bridge to a channel the switch cannot create (error/DESTINATION_OUT_OF_ORDER, recording 16a): failed with that cause, A hears the prompt', async () => {
    const { a } = numbers();
    const { call } = await place({ answer: 'answer' }, { answer: 'answer' }, {}, { a, b: B_OUT_OF_ORDER });
    const { cdr, lagMs } = await settled(call);
    expect(cdr).toMatchObject({ result: 'failed', hangupCause: 'DESTINATION_OUT_OF_ORDER', hangupSide: 'platform', talkSeconds: 0 });
    const { uA, uB } = legs(call.id);
    expect(eventsOf(uB)).toEqual([]);
    // the prompt followed the refused bridge at once (no wait for a B hangup that never comes), then A was hung up
    const onA = eventsOf(uA);
    const bridgeDone = onA.find((s) => s.e.name === 'CHANNEL_EXECUTE_COMPLETE' && s.e.header('Application') === 'bridge')!;
    expect(bridgeDone.e.variable('originate_disposition')).toBe('DESTINATION_OUT_OF_ORDER');
    const prompt = onA.find((s) => s.e.name === 'CHANNEL_EXECUTE_COMPLETE' && s.e.header('Application') === 'playback')!;
    expect(prompt.e.header('Application-Response')).toBe('FILE PLAYED');
    expect(prompt.at - bridgeDone.at).toBeLessThan(PROMPTLY_MS);
    expect(onA.find((s) => s.e.name === 'CHANNEL_HANGUP_COMPLETE')?.e.variable('sip_hangup_disposition')).toBe('send_bye');
    expect(lagMs).toBeLessThan(PROMPTLY_MS);
    // B never saw X: no callback binding is left for it
    const [rows] = await h.sys.app.pool.query('SELECT COUNT(*) AS n FROM bindings WHERE id = ?', [legUuid(call.id, 'callback-binding', 0)]);
    expect((rows as Array<{ n: number }>)[0]!.n).toBe(0);
  });

  it('the same when the carrier ends A right after the refusal: still failed with the switch’s cause, not cancelled by A', async () => {
    const { a } = numbers();
    const { call } = await place({ answer: 'answer', byeRacing: 'bridge-failed' }, { answer: 'answer' }, {}, { a, b: B_OUT_OF_ORDER });
    const { cdr, lagMs } = await settled(call);
    expect(cdr).toMatchObject({ result: 'failed', hangupCause: 'DESTINATION_OUT_OF_ORDER', hangupSide: 'platform' });
    expect(lagMs).toBeLessThan(PROMPTLY_MS);
  });

  it.each([['GATEWAY_DOWN'], ['INVALID_PROFILE']])('a sofia B leg the switch refuses (%s, recording 16b): failed with that cause', async (cause) => {
    const { call, b } = await place({ answer: 'answer' }, { answer: 'refused', refuseCause: cause });
    const { cdr, lagMs } = await settled(call);
    expect(cdr).toMatchObject({ result: 'failed', hangupCause: cause, hangupSide: 'platform' });
    expect(h.sys.sim.invitesTo(b)).toHaveLength(0);
    expect(lagMs).toBeLessThan(PROMPTLY_MS);
  });

  it('B busy and A ended right after: b_busy (B failed first), with B’s cause', async () => {
    const { call } = await place({ answer: 'answer', byeRacing: 'bridge-failed' }, { answer: 'busy' });
    const { cdr, lagMs } = await settled(call);
    expect(cdr).toMatchObject({ result: 'b_busy', hangupCause: 'USER_BUSY', hangupSide: 'b' });
    expect(lagMs).toBeLessThan(PROMPTLY_MS);
  });

  it('A refused by the switch: failed with the switch’s cause, no event to wait for', async () => {
    const { call, b } = await place({ answer: 'refused', refuseCause: 'DESTINATION_OUT_OF_ORDER' }, { answer: 'answer' });
    const view = await h.sys.waitForCall(call.id, (c) => c.cdr !== null);
    expect(view.cdr).toMatchObject({ result: 'failed', hangupCause: 'DESTINATION_OUT_OF_ORDER', hangupSide: 'platform' });
    expect(view.cdr!.endedAt - Date.parse(view.createdAt)).toBeLessThan(PROMPTLY_MS);
    expect(h.sys.sim.invitesTo(b)).toHaveLength(0);
  });
});

describe('click-to-dial: cancel ends the call in every state', () => {
  // A long prompt (5 s at timeScale 0.05) so a cancel can land while A hears it.
  const { h, legs, settled, place } = harness({ env: { B_FAILED_PROMPT: 'tone_stream://%(500,500,480,620);loops=100' } });

  const cancel = async (id: string): Promise<void> => {
    const res = await h.sys.api('POST', `/v1/calls/${id}/cancel`);
    expect(res.status).toBe(200);
  };

  it('queued (no worker took it yet): cancelled, nobody rung', async () => {
    await h.queue.pause();
    try {
      const { call, a, b } = await place({ answer: 'answer' }, { answer: 'answer' });
      await cancel(call.id);
      const view = await h.sys.waitForCall(call.id);
      expect(view.cdr).toMatchObject({ result: 'cancelled', hangupSide: 'platform' });
      expect(h.sys.sim.invitesTo(a)).toHaveLength(0);
      expect(h.sys.sim.invitesTo(b)).toHaveLength(0);
    } finally {
      await h.queue.resume();
    }
  });

  it('A ringing, and the API’s uuid_kill missed it (the flag alone): the flow hangs A up itself', async () => {
    // Once A's channel exists the flag is a safety net, looked at within 5 s of its last read (A's ringing
    // was written and read it): A rings longer than that (120 s at the simulator's 0.05 is 6 s).
    const { call, b } = await place({ answer: 'no-answer' }, { answer: 'answer' }, { ringTimeoutASeconds: 120 });
    await h.sys.waitForCall(call.id, (c) => c.legs.a.state === 'ringing');
    await h.live.requestCancel(call.id); // what the API does first; its uuid_kill is left out
    const { cdr } = await settled(call);
    expect(cdr).toMatchObject({ result: 'cancelled', hangupCause: 'ORIGINATOR_CANCEL', hangupSide: 'platform' });
    expect(h.sys.sim.invitesTo(b)).toHaveLength(0);
  });

  it('the originate on its way to the switch (A not created yet, so a uuid_kill finds nothing): A is hung up as soon as it exists', async () => {
    const { a, b } = { a: '13800019001', b: '13900019001' };
    h.sys.sim.setPhone(a, { answer: 'no-answer' });
    const rid = 'race-cancel-originate';
    const callId = callIdFor(h.sys.tenantId, rid);
    // just before the switch takes this call's originate, the cancel flag is set (what the API does before its uuid_kill)
    h.sys.sim.onCommand(async (raw) => {
      if (raw.startsWith('bgapi originate') && raw.includes(legUuid(callId, 'a', 1))) await h.live.requestCancel(callId);
    });
    try {
      const call = await h.sys.placeCall({ requestId: rid, a, b, ringTimeoutASeconds: 60 });
      expect(call.id).toBe(callId);
      const { cdr } = await settled(call);
      expect(cdr).toMatchObject({ result: 'cancelled', hangupCause: 'ORIGINATOR_CANCEL', hangupSide: 'platform', aAnswerAt: null });
      expect(h.sys.sim.invitesTo(b)).toHaveLength(0);
    } finally {
      h.sys.sim.onCommand(undefined);
    }
  });

  it('A just answered, B being dialled by the switch (a_answered): cancelled, both legs hung up', async () => {
    const { a, b } = { a: '13800019002', b: '13900019002' };
    h.sys.sim.setPhone(a, { answer: 'answer' });
    h.sys.sim.setPhone(b, { answer: 'no-answer' });
    const rid = 'race-cancel-answered';
    const callId = callIdFor(h.sys.tenantId, rid);
    const { uA, uB } = legs(callId);
    // as A's answer reaches the controller (the switch is already calling B): the cancel comes now, its uuid_kill behind it
    const onAnswer = (e: EslEvent): void => {
      if (e.uuid !== uA || e.name !== 'CHANNEL_ANSWER') return;
      void h.live.requestCancel(callId).then(() => h.sys.api('POST', `/v1/calls/${callId}/cancel`));
    };
    h.sys.app.esl.on('event', onAnswer);
    try {
      const call = await h.sys.placeCall({ requestId: rid, a, b });
      const { cdr } = await settled(call);
      expect(cdr).toMatchObject({ result: 'cancelled', hangupCause: 'ORIGINATOR_CANCEL', hangupSide: 'platform' });
      expect(cdr.aAnswerAt).not.toBeNull();
      expect(h.sys.sim.originateCount(uB)).toBeLessThanOrEqual(1);
    } finally {
      h.sys.app.esl.off('event', onAnswer);
    }
  });

  it('B ringing (calling_b): cancelled, both legs hung up', async () => {
    const { call } = await place({ answer: 'answer' }, { answer: 'no-answer' });
    await h.sys.waitForCall(call.id, (c) => c.legs.b.state === 'ringing');
    await cancel(call.id);
    const { cdr, lagMs } = await settled(call);
    expect(cdr).toMatchObject({ result: 'cancelled', hangupCause: 'ORIGINATOR_CANCEL', hangupSide: 'platform' });
    expect(lagMs).toBeLessThan(PROMPTLY_MS);
  });

  it('B ringing and the API’s uuid_kill missed both legs (the flag alone): the flow ends it', async () => {
    const { call } = await place({ answer: 'answer' }, { answer: 'no-answer' });
    await h.sys.waitForCall(call.id, (c) => c.legs.b.state === 'ringing');
    await h.live.requestCancel(call.id);
    const { cdr } = await settled(call);
    expect(cdr).toMatchObject({ result: 'cancelled', hangupCause: 'ORIGINATOR_CANCEL', hangupSide: 'platform' });
  });

  it('bridged: the call ends at once; it was connected, ended by the platform', async () => {
    const { call } = await place({ answer: 'answer' }, { answer: 'answer' });
    await h.sys.waitForCall(call.id, (c) => c.state === 'bridged');
    await cancel(call.id);
    const { cdr, lagMs } = await settled(call);
    expect(cdr).toMatchObject({ result: 'connected', hangupCause: 'ORIGINATOR_CANCEL', hangupSide: 'platform' });
    expect(lagMs).toBeLessThan(PROMPTLY_MS);
  });

  it('ending (A hears the B-busy prompt): A is hung up at once, the result stays b_busy', async () => {
    const { call } = await place({ answer: 'answer' }, { answer: 'busy' });
    const { uA } = legs(call.id);
    await until('the prompt is sent to A', () => h.sys.sim.receivedRaw.some((m) => m.startsWith(`sendmsg ${uA}`) && m.includes('execute-app-name: playback')));
    await cancel(call.id);
    const { cdr, lagMs } = await settled(call);
    expect(cdr).toMatchObject({ result: 'b_busy', hangupCause: 'USER_BUSY' });
    const played = h.events.find((s) => s.e.uuid === uA && s.e.name === 'CHANNEL_EXECUTE_COMPLETE' && s.e.header('Application') === 'playback');
    expect(played?.e.header('Application-Response')).toBe('FILE NOT PLAYED');
    expect(lagMs).toBeLessThan(PROMPTLY_MS);
  });
});
