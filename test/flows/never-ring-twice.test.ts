import type { ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import { startApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config';
import { legUuid } from '../../src/flows/click-to-dial';
import { createLogger } from '../../src/logger';
import { startTestSystem, type TestSystem } from '../support/system';
import { spawnWorkerProcess } from '../support/spawn-worker';
import { waitUntil } from '../support/wait';

describe('a job never rings anyone twice, even when its worker dies mid-call', () => {
  // A worker process, a takeover controller and a call of several seconds: on a loaded machine, well over jest's 5 s.
  jest.setTimeout(90_000);
  let sys: TestSystem;
  let takeover: App | undefined;
  let child: ChildProcess | undefined;

  beforeEach(async () => {
    // The API runs here without workers; the first worker is a separate process we can kill.
    sys = await startTestSystem({ workers: false, timeScale: 1 });
  });
  afterEach(async () => {
    child?.kill('SIGKILL');
    child?.stdout?.destroy();
    child?.stderr?.destroy();
    await takeover?.stop();
    takeover = undefined;
    await sys?.stop();
  });

  let takeoverLog: string[] = [];

  async function kill(worker: ChildProcess): Promise<void> {
    const exited = new Promise((r) => worker.once('exit', r));
    worker.kill('SIGKILL');
    await exited;
  }

  async function takeOver(): Promise<void> {
    takeoverLog = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        takeoverLog.push(String(chunk));
        cb();
      },
    });
    takeover = await startApp(loadConfig({ ...sys.env }), createLogger('info', sink), { lockDurationMs: 1000, stalledIntervalMs: 500 });
  }

  it('killed while A rings: the next worker follows the same A leg and rings B once', async () => {
    const a = '13800002001';
    const b = '13900002001';
    sys.sim.setPhone(a, { answer: 'answer', ringMs: 3000 });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 500 });
    child = await spawnWorkerProcess(sys.env);
    const call = await sys.placeCall({ requestId: 'crash-1', a, b });
    await waitUntil('one INVITE to a', () => sys.sim.invitesTo(a).length === 1, 15_000);
    await kill(child);
    await takeOver();

    const done = await sys.waitForCall(call.id, (c) => c.cdr !== null, 30_000);
    expect(sys.sim.originateCount(legUuid(call.id, 'a', 1))).toBe(1);
    expect(sys.sim.invitesTo(a)).toHaveLength(1);
    expect(sys.sim.invitesTo(b)).toHaveLength(1);
    expect(done.result).toBe('connected');
    expect(takeoverLog.join('')).toContain('resuming an attempt that was already started');
    const [rows] = await sys.app.pool.query('SELECT COUNT(*) AS n FROM cdrs WHERE call_id = ?', [call.id]);
    expect((rows as Array<{ n: number }>)[0]!.n).toBe(1);
  });

  it('killed while A and B talk: the next worker only waits for the end and writes one CDR', async () => {
    const a = '13800002002';
    const b = '13900002002';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 4000 });
    child = await spawnWorkerProcess(sys.env);
    const call = await sys.placeCall({ requestId: 'crash-2', a, b });
    await sys.waitForCall(call.id, (c) => c.state === 'bridged', 15_000);
    await kill(child);
    await takeOver();

    const done = await sys.waitForCall(call.id, (c) => c.cdr !== null, 30_000);
    expect(sys.sim.invitesTo(a)).toHaveLength(1);
    expect(sys.sim.invitesTo(b)).toHaveLength(1);
    expect(done.result).toBe('connected');
    expect(takeoverLog.join('')).toContain('resuming an attempt that was already started');
  });
});
