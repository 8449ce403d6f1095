import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { startApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { CdrQueue } from '../../src/queues/cdr-queue';
import { TEST_REDIS_URL } from '../support/redis';
import { startTestSystem, type TestSystem } from '../support/system';
import { makeOutcome } from '../stores/fixtures';
import { distinctById, startReceiver, type ReceivedWebhook, type Receiver } from './receiver';
import { spawnWorkerProcess } from '../support/spawn-worker';
import { waitUntil } from '../support/wait';

const SECRET = 'durable-progress-secret-0123456789';
const PROGRESS = ['call.ringing', 'call.answered', 'call.bridged', 'call.completed'];
/** Every progress event of a connected click-to-dial call, as `type/leg`. */
const CONNECTED_CALL = ['call.ringing/a', 'call.answered/a', 'call.ringing/b', 'call.answered/b', 'call.bridged/-', 'call.completed/-'].sort();

const eventsOf = (received: readonly ReceivedWebhook[], callId: string): ReceivedWebhook[] => received.filter((w) => w.payload.data.callId === callId);
const kinds = (ws: readonly ReceivedWebhook[]): string[] => ws.map((w) => `${w.payload.type}/${w.payload.data.leg ?? '-'}`).sort();

/** Issue #10 item 3: ringing, answered and bridged survive a controller dying, once per event id. */
describe('progress webhooks are queued again from the durable CDR job', () => {
  let sys: TestSystem;
  let receiver: Receiver;

  beforeAll(async () => {
    sys = await startTestSystem();
    receiver = await startReceiver(SECRET);
    expect((await sys.api('PUT', '/v1/webhook', { url: receiver.url, secret: SECRET, events: PROGRESS })).status).toBe(200);
  });
  afterAll(async () => {
    await receiver?.close();
    await sys?.stop();
  });

  it('a call whose controller died before reporting anything: the CDR job alone delivers every progress event once', async () => {
    const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const cdrQueue = new CdrQueue({ connection, prefix: sys.env.REDIS_PREFIX! });
    try {
      const outcome = makeOutcome(sys.tenantId, {}, false);
      await cdrQueue.enqueue(outcome);
      await receiver.waitFor((ws) => eventsOf(ws, outcome.cdr.callId).length >= CONNECTED_CALL.length);
      const mine = eventsOf(receiver.received, outcome.cdr.callId);
      expect(kinds(mine)).toEqual(CONNECTED_CALL);
      expect(mine.every((w) => w.verification.ok)).toBe(true);
      expect(mine.find((w) => w.payload.type === 'call.ringing' && w.payload.data.leg === 'b')!.payload.createdAt).toBe(new Date(outcome.cdr.bRingAt!).toISOString());

      // The live path reporting the same facts later (a slow instance) sends nothing more: same event ids.
      sys.app.events.report({ type: 'call.bridged', tenantId: sys.tenantId, callId: outcome.cdr.callId, at: Date.now() });
      sys.app.events.report({ type: 'call.answered', leg: 'a', tenantId: sys.tenantId, callId: outcome.cdr.callId, at: Date.now() });
      await new Promise((r) => setTimeout(r, 1500));
      expect(kinds(eventsOf(receiver.received, outcome.cdr.callId))).toEqual(CONNECTED_CALL);
    } finally {
      await cdrQueue.close();
      await connection.quit();
    }
  });

  it('a live call reports each event once though the CDR job queues them again', async () => {
    const a = '13800062001';
    const b = '13900062001';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 500 });
    const call = await sys.placeCall({ requestId: 'progress-live', a, b });
    await sys.waitForCall(call.id);
    await receiver.waitFor((ws) => eventsOf(ws, call.id).length >= CONNECTED_CALL.length);
    await new Promise((r) => setTimeout(r, 1000));
    const mine = eventsOf(receiver.received, call.id);
    expect(kinds(mine)).toEqual(CONNECTED_CALL);
    expect(new Set(mine.map((w) => w.payload.id)).size).toBe(mine.length);
  });
});

describe('progress webhooks of a click-to-dial call whose controller is killed (SIGKILL) at several points', () => {
  jest.setTimeout(90_000);
  let sys: TestSystem;
  let receiver: Receiver;
  let takeover: App | undefined;
  let child: ChildProcess | undefined;

  beforeEach(async () => {
    // The API runs here without workers; the controller running the call is a child process we kill.
    sys = await startTestSystem({ workers: false, timeScale: 1 });
    receiver = await startReceiver(SECRET);
    expect((await sys.api('PUT', '/v1/webhook', { url: receiver.url, secret: SECRET, events: PROGRESS })).status).toBe(200);
  });
  afterEach(async () => {
    child?.kill('SIGKILL');
    child?.stdout?.destroy();
    child?.stderr?.destroy();
    await takeover?.stop();
    takeover = undefined;
    await receiver?.close();
    await sys?.stop();
  });

  async function killAndTakeOver(): Promise<void> {
    const worker = child!;
    const exited = new Promise((r) => worker.once('exit', r));
    worker.kill('SIGKILL');
    await exited;
    takeover = await startApp(loadConfig({ ...sys.env }), createLogger('warn'), { lockDurationMs: 1000, stalledIntervalMs: 500 });
  }

  /**
   * Every event of the call arrives, each under one id. A delivery the killed controller had in flight (posted, not
   * yet recorded as done) is delivered again under the same id: at least once, the receiver keeps the first of an id.
   */
  async function expectEveryEventOnce(callId: string): Promise<void> {
    await receiver.waitFor((ws) => distinctById(eventsOf(ws, callId)).length >= CONNECTED_CALL.length, 20_000);
    // An event queued under a second id would be here by now: give it the time to arrive.
    await new Promise((r) => setTimeout(r, 1500));
    const mine = eventsOf(receiver.received, callId);
    expect(kinds(distinctById(mine))).toEqual(CONNECTED_CALL);
    expect(mine.every((w) => w.verification.ok)).toBe(true);
  }

  it('killed while A rings', async () => {
    const a = '13800062101';
    const b = '13900062101';
    sys.sim.setPhone(a, { answer: 'answer', ringMs: 4000 });
    sys.sim.setPhone(b, { answer: 'answer', ringMs: 500, hangupAfterMs: 4000 });
    child = await spawnWorkerProcess(sys.env);
    const call = await sys.placeCall({ requestId: 'progress-kill-a', a, b });
    await waitUntil('one INVITE to a', () => sys.sim.invitesTo(a).length === 1, 15_000);
    await new Promise((r) => setTimeout(r, 300));
    await killAndTakeOver();
    expect((await sys.waitForCall(call.id, (c) => c.cdr !== null, 30_000)).result).toBe('connected');
    await expectEveryEventOnce(call.id);
  });

  it('killed while B rings', async () => {
    const a = '13800062102';
    const b = '13900062102';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', ringMs: 2500, hangupAfterMs: 1000 });
    child = await spawnWorkerProcess(sys.env);
    const call = await sys.placeCall({ requestId: 'progress-kill-b', a, b });
    await waitUntil('one INVITE to b', () => sys.sim.invitesTo(b).length === 1, 15_000);
    await new Promise((r) => setTimeout(r, 300));
    await killAndTakeOver();
    expect((await sys.waitForCall(call.id, (c) => c.cdr !== null, 30_000)).result).toBe('connected');
    await expectEveryEventOnce(call.id);
  });

  it('killed while A and B talk', async () => {
    const a = '13800062103';
    const b = '13900062103';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 3000 });
    child = await spawnWorkerProcess(sys.env);
    const call = await sys.placeCall({ requestId: 'progress-kill-talk', a, b });
    await sys.waitForCall(call.id, (c) => c.state === 'bridged', 15_000);
    await killAndTakeOver();
    expect((await sys.waitForCall(call.id, (c) => c.cdr !== null, 30_000)).result).toBe('connected');
    await expectEveryEventOnce(call.id);
  });

  it('killed the moment B answers (before it could record or report the bridge)', async () => {
    const a = '13800062104';
    const b = '13900062104';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', ringMs: 1500, hangupAfterMs: 3000 });
    child = await spawnWorkerProcess(sys.env);
    const call = await sys.placeCall({ requestId: 'progress-kill-answer', a, b });
    await waitUntil('one INVITE to b', () => sys.sim.invitesTo(b).length === 1, 15_000);
    // B answers 1.5 s after its INVITE: kill just before, so the bridge happens while nobody follows the call.
    await new Promise((r) => setTimeout(r, 1400));
    await killAndTakeOver();
    expect((await sys.waitForCall(call.id, (c) => c.cdr !== null, 30_000)).result).toBe('connected');
    await expectEveryEventOnce(call.id);
  });
});
