/**
 * A controller restart resumes its own jobs (issue #9 item 3): the only controller of a fleet of two
 * simulated switches is SIGKILLed with a bridged click-to-dial call and started again at once under the
 * same NODE_ID. Its locks are long (CALLBACK_LOCK_SECONDS=60), so stall detection cannot be what
 * picks the call up: the restarted controller must take back the job its last run left running as
 * soon as it is up, follow the call on the switch it is on (still live: B hangs up 25 s after
 * answering) and write its one CDR when it ends, ringing nobody again.
 * (The process's own start takes seconds on a loaded machine: the resume is timed from its start line.)
 */
import { startControllerProcess, type ControllerProcess } from '../support/controller-process';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';
import { expectRungOnceWithOneCdr } from './rung-once';

describe('a controller killed mid-call and restarted at once under the same NODE_ID', () => {
  let sys: TestSystem;
  const controllers: ControllerProcess[] = [];
  let env: Record<string, string>;
  beforeAll(async () => {
    // The API instance of the test runs no workers: only the child controller takes calls.
    sys = await startTestSystem({ switches: 2, workers: false, timeScale: 1 });
    env = { ...sys.env, NODE_ID: 'restarting-1', CALLBACK_LOCK_SECONDS: '60', LOG_LEVEL: 'info' };
    controllers.push(await startControllerProcess(env, 60_000));
  }, 150_000);
  afterAll(async () => {
    await Promise.all(controllers.map((c) => c.kill()));
    await sys?.stop();
  });

  it('the restarted controller resumes its call as soon as it is up and follows it to its one CDR, nobody rung twice', async () => {
    const a = '13800097001';
    const b = '13900097001';
    for (const s of sys.sims) {
      s.setPhone(a, { answer: 'answer', ringMs: 300 });
      s.setPhone(b, { answer: 'answer', ringMs: 300, hangupAfterMs: 25_000 });
    }
    const call = await sys.placeCall({ requestId: 'restart-1', a, b });
    await sys.waitForCall(call.id, (c) => c.state === 'bridged', 30_000);
    const first = controllers[0]!;
    await waitUntil('the controller running the call', () => first.logs.some((l) => l.callId === call.id && l.msg === 'bridged'));
    const killedAt = Date.now();
    await first.kill();
    const restarted = await startControllerProcess(env, 60_000);
    controllers.push(restarted);
    const upAt = Date.now();
    const resumed = await restarted.waitForLog('resuming the jobs this controller left running before its restart', 10_000);
    const resumedAt = Date.now();
    console.info(`restart: up ${String(upAt - killedAt)} ms after the kill (process start on this machine), its call resumed ${String(resumedAt - upAt)} ms after that`);
    expect(resumed.jobs).toEqual([call.id]);
    // It waits one missed heartbeat (2 s) to know its last run stopped.
    expect(resumedAt - upAt).toBeLessThan(8000);
    // Locks of 60 s: without the resume, nothing could follow the call for a minute after the kill.
    expect(resumedAt - killedAt).toBeLessThan(60_000);

    const done = await sys.waitForCall(call.id, (c) => c.cdr !== null, 40_000);
    expect(done.result).toBe('connected');
    expect(Math.abs((done.cdr?.talkSeconds ?? 0) - 25)).toBeLessThanOrEqual(2);
    expect(restarted.logs.some((l) => l.callId === call.id && l.msg === 'resuming an attempt that was already started')).toBe(true);
    await expectRungOnceWithOneCdr(sys, call.id, a, b);
  }, 150_000);
});
