import { Writable } from 'node:stream';
import { Scheduler } from '../../src/lifecycle/scheduler';
import { createLogger } from '../../src/logger';

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('the scheduler of periodic work', () => {
  const lines: string[] = [];
  const logger = createLogger(
    'error',
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );

  it('runs each task on its interval, never two runs of one task at once, and stop() waits for the run in progress', async () => {
    const scheduler = new Scheduler(logger);
    let runs = 0;
    let running = 0;
    let most = 0;
    let release = (): void => undefined;
    scheduler.add({
      name: 'slow task',
      everyMs: 5,
      run: async () => {
        runs += 1;
        running += 1;
        most = Math.max(most, running);
        if (runs === 2) await new Promise<void>((r) => (release = r));
        running -= 1;
      },
    });
    await until(() => runs === 2);
    // Ticks come and go while the second run hangs: none starts a third.
    // Proving that nothing happens takes time: eight 5 ms ticks.
    await new Promise((r) => setTimeout(r, 40));
    expect(runs).toBe(2);
    let stopped = false;
    const stopping = scheduler.stop().then(() => (stopped = true));
    // Proving that stop() does not return early takes time: it would have returned by now.
    await new Promise((r) => setTimeout(r, 20));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(most).toBe(1);
    // Proving that nothing runs after stop() takes time: six 5 ms ticks.
    await new Promise((r) => setTimeout(r, 30));
    expect(runs).toBe(2);
    expect(() => scheduler.add({ name: 'late', everyMs: 5, run: async () => undefined })).toThrow(/stopped/);
  });

  it('runs a task at start when asked, and logs a failed run by the task’s name without stopping it', async () => {
    const scheduler = new Scheduler(logger);
    let runs = 0;
    scheduler.add({
      name: 'flaky sweep',
      everyMs: 5,
      runAtStart: true,
      run: async () => {
        runs += 1;
        if (runs === 1) throw new Error('boom');
      },
    });
    expect(runs).toBe(1); // at once, before the first tick
    await until(() => runs >= 3);
    await scheduler.stop();
    expect(lines.join('')).toContain('flaky sweep failed');
  });
  it('tells a run in progress that stop() was called, and does not log the run it ended as failed', async () => {
    const scheduler = new Scheduler(logger);
    const before = lines.length;
    let started = false;
    scheduler.add({
      name: 'paced pass',
      everyMs: 5,
      run: async (stopping) => {
        started = true;
        // A run that would rest for a minute: only the signal ends it early.
        await new Promise<void>((resolve, reject) => {
          const rest = setTimeout(resolve, 60_000);
          stopping.addEventListener('abort', () => {
            clearTimeout(rest);
            reject(stopping.reason as Error);
          });
        });
      },
    });
    await until(() => started);
    const t0 = Date.now();
    await scheduler.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(lines.slice(before).join('')).not.toContain('paced pass failed');
  });
});
