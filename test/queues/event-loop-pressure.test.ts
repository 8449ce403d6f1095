/**
 * The controller's own overload: new calls are refused (503 controller_overloaded, Retry-After)
 * while its event loop runs late, measured on this process's real event loop.
 */
import { admitUnderLoopDelay, ControllerOverloadedError, EventLoopPressure } from '../../src/queues/event-loop-pressure';
import { RetryLaterError } from '../../src/domain/errors';
import { toHttpError } from '../../src/http/errors';
import { callIdFor } from '../../src/calls/click-to-dial-request';
import { startTestSystem } from '../support/system';

/** Keeps the event loop busy in `sliceMs` slices for `totalMs`, as a starved or saturated controller's loop is. */
function busyFor(totalMs: number, sliceMs: number): Promise<void> {
  const until = Date.now() + totalMs;
  return new Promise((resolve) => {
    const slice = (): void => {
      const end = Math.min(until, Date.now() + sliceMs);
      while (Date.now() < end) {
        /* busy */
      }
      if (Date.now() >= until) resolve();
      else setImmediate(slice);
    };
    slice();
  });
}

describe('admitUnderLoopDelay', () => {
  const reading = (meanMs: number, at = 1000) => ({ meanMs, p99Ms: meanMs * 3, at });

  it('refuses while the mean delay is over the bound, with Retry-After 1 s', () => {
    expect(() => admitUnderLoopDelay(reading(100), 100, 1000, 3000)).not.toThrow();
    let err: unknown;
    try {
      admitUnderLoopDelay(reading(140), 100, 1000, 3000);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ControllerOverloadedError);
    expect(err).toBeInstanceOf(RetryLaterError);
    expect(err).toMatchObject({ code: 'controller_overloaded', kind: 'unavailable', retryAfterSeconds: 1 });
    expect((err as Error).message).toContain('140 ms late (at most 100 ms)');
    expect(toHttpError(err as Error).status).toBe(503);
  });

  it('refuses nothing with the bound off, before the first reading, or on a stale reading (the timer itself stopped)', () => {
    expect(() => admitUnderLoopDelay(reading(5000), 0, 1000, 3000)).not.toThrow();
    expect(() => admitUnderLoopDelay(null, 100, 1000, 3000)).not.toThrow();
    expect(() => admitUnderLoopDelay(reading(5000, 1000), 100, 4001, 3000)).not.toThrow();
  });
});

describe('EventLoopPressure on the real event loop', () => {
  it('reads a busy loop as late and an idle one as on time', async () => {
    const pressure = new EventLoopPressure({ maxDelayMs: 8, intervalMs: 60_000 });
    pressure.start();
    try {
      await new Promise((r) => setTimeout(r, 300));
      pressure.read(); // start a fresh interval
      await busyFor(900, 70);
      const busy = pressure.read();
      expect(busy?.meanMs).toBeGreaterThan(8);
      expect(busy?.p99Ms).toBeGreaterThanOrEqual(busy?.meanMs ?? Infinity);
      expect(() => pressure.admit()).toThrow(ControllerOverloadedError);
      await new Promise((r) => setTimeout(r, 600));
      const idle = pressure.read();
      expect(idle?.meanMs).toBeLessThan(8);
      expect(() => pressure.admit()).not.toThrow();
    } finally {
      pressure.stop();
    }
  });
});

describe('POST /v1/calls while the controller runs late', () => {
  it('is refused with 503 controller_overloaded and Retry-After, and accepted once the loop is on time again', async () => {
    const sys = await startTestSystem({ workers: false, env: { CONTROLLER_MAX_LOOP_DELAY_MS: '8' } });
    const post = async (requestId: string) => {
      const res = await sys.app.http.inject({
        method: 'POST',
        url: '/v1/calls',
        headers: { authorization: `Bearer ${sys.apiKey}`, 'content-type': 'application/json' },
        payload: { requestId, a: '13800008501', b: '13900008501' },
      });
      return { status: res.statusCode, code: res.json<{ error?: { code: string } }>().error?.code, retryAfter: res.headers['retry-after'] };
    };
    try {
      // Two of the controller's one-second readings fall inside the busy spell.
      await busyFor(2200, 70);
      expect(await post('late-1')).toEqual({ status: 503, code: 'controller_overloaded', retryAfter: '1' });
      // Refused before it was recorded: nothing to show.
      expect((await sys.api('GET', `/v1/calls/${callIdFor(sys.tenantId, 'late-1')}`)).status).toBe(404);
      await new Promise((r) => setTimeout(r, 2200));
      expect((await post('late-2')).status).toBe(202);
    } finally {
      await sys.stop();
    }
  });
});
