/**
 * Takeover in seconds (issue #9 item 3): two controllers (src/main.ts, each in its own process, as
 * shipped: CALLBACK_LOCK_SECONDS default) drive a fleet of two simulated switches. The one carrying a
 * bridged click-to-dial call is SIGKILLed; the other must finish that call's state and its one CDR
 * within 15 s of the kill, following the call on the switch it was placed on, never ringing anyone again.
 */
import { startControllerProcess, type ControllerProcess } from '../support/controller-process';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';
import { expectRungOnceWithOneCdr } from './rung-once';

describe('a controller killed mid-call', () => {
  let sys: TestSystem;
  const controllers: ControllerProcess[] = [];
  beforeAll(async () => {
    // The API instance of the test runs no workers: only the two child controllers take calls.
    sys = await startTestSystem({ switches: 2, workers: false, timeScale: 1 });
    for (const id of ['c1', 'c2']) {
      // CALLBACK_LOCK_SECONDS left at its default: the takeover time is the shipped one.
      const env: Record<string, string> = { ...sys.env, NODE_ID: id, LOG_LEVEL: 'info' };
      controllers.push(await startControllerProcess(env, 60_000));
    }
  }, 150_000);
  afterAll(async () => {
    await Promise.all(controllers.map((c) => c.kill()));
    await sys?.stop();
  });

  it('another controller writes its CDR within 15 s, on the switch the call was placed on, nobody rung twice', async () => {
    const a = '13800096001';
    const b = '13900096001';
    for (const s of sys.sims) {
      s.setPhone(a, { answer: 'answer', ringMs: 300 });
      s.setPhone(b, { answer: 'answer', ringMs: 300, hangupAfterMs: 5000 });
    }
    const call = await sys.placeCall({ requestId: 'takeover-1', a, b });
    await sys.waitForCall(call.id, (c) => c.state === 'bridged', 30_000);
    const owner = await waitUntil('the controller running the call', () =>
      controllers.find((c) => c.logs.some((l) => l.callId === call.id && l.msg === 'bridged')),
    );
    const survivor = controllers.find((c) => c !== owner) as ControllerProcess;
    const killedAt = Date.now();
    await owner.kill();

    const done = await sys.waitForCall(call.id, (c) => c.cdr !== null, 20_000);
    const tookMs = Date.now() - killedAt;
    console.info(`takeover: the CDR of a call whose controller was SIGKILLed was written ${String(tookMs)} ms after the kill`);
    expect(tookMs).toBeLessThan(15_000);
    expect(done.result).toBe('connected');
    expect(survivor.logs.some((l) => l.callId === call.id && l.msg === 'resuming an attempt that was already started')).toBe(true);
    await expectRungOnceWithOneCdr(sys, call.id, a, b);
  }, 90_000);
});
