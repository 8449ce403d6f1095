import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { RowDataPacket } from 'mysql2/promise';
import { callToXId } from '../../src/flows/call-to-x';
import { handoverQueueName } from '../../src/flows/call-to-x-handover';
import { startControllerProcess, type ControllerProcess } from '../support/controller-process';
import { TEST_REDIS_URL } from '../support/redis';
import { SwitchObserver } from '../support/switch-observer';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';
import { distinctById, startReceiver, type ReceivedWebhook, type Receiver } from '../webhooks/receiver';

/**
 * Issue #10 item 3, calls to X: the controller whose outbound socket carries a call to X is killed
 * (SIGKILL: no shutdown code runs) at several points of the call. Another controller, already running
 * (the test system's app, with workers), must settle the call: exactly one CDR with the switch's result,
 * talk seconds, cause and end time, and each progress event (answered, bridged, completed) once, within
 * 15 s of the kill (or of the call's end, for a call still up then). Switch simulator at real time,
 * real MariaDB and Redis; the killed controller is src/main.ts in a child process.
 */

const SECRET = 'call-to-x-killed-secret-0123456789';
const PROGRESS = ['call.ringing', 'call.answered', 'call.bridged', 'call.completed'];
/** Every progress event of a connected call to X, as `type/leg`. */
const CONNECTED_CALL = ['call.answered/b', 'call.bridged/-', 'call.completed/-'];
const SETTLED_WITHIN_MS = 15_000;

const eventsOf = (received: readonly ReceivedWebhook[], callId: string): ReceivedWebhook[] => received.filter((w) => w.payload.data.callId === callId);
const kinds = (ws: readonly ReceivedWebhook[]): string[] => ws.map((w) => `${w.payload.type}/${w.payload.data.leg ?? '-'}`).sort();

describe('a call to X whose controller is killed (SIGKILL) mid-call is settled by another controller', () => {
  jest.setTimeout(90_000);
  const X = '700100000000088';
  let sys: TestSystem;
  let receiver: Receiver;
  let child: ControllerProcess | undefined;
  let observer: SwitchObserver;
  let connection: Redis;
  let handovers: Queue;

  beforeEach(async () => {
    // The test system's app is the other controller (workers on); the controller under test is the child process.
    sys = await startTestSystem({ timeScale: 1 });
    await sys.app.bindings.importNumbers(sys.tenantId, [{ x: X, area: '010' }]);
    receiver = await startReceiver(SECRET);
    expect((await sys.api('PUT', '/v1/webhook', { url: receiver.url, secret: SECRET, events: PROGRESS })).status).toBe(200);
    connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    handovers = new Queue(handoverQueueName(sys.env.REDIS_PREFIX!), { connection, prefix: sys.env.REDIS_PREFIX! });
    observer = await SwitchObserver.connect(sys);
    child = await startControllerProcess(sys.env);
  });
  afterEach(async () => {
    await child?.kill();
    child = undefined;
    await observer?.stop();
    await handovers?.close();
    await connection?.quit();
    await receiver?.close();
    await sys?.stop();
  });

  async function cdrsOf(callId: string): Promise<RowDataPacket[]> {
    const [rows] = await sys.app.pool.query<RowDataPacket[]>('SELECT * FROM cdrs WHERE call_id = ?', [callId]);
    return rows;
  }

  /** A call to X through the child's socket: B answers after ringMs, the caller hangs up talkMs after that. */
  async function callToX(caller: string, b: string, ringMs: number, talkMs: number) {
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a: caller, b, x: X });
    sys.sim.setPhone(b, { answer: 'answer', ringMs });
    const uuid = await sys.sim.connectOutbound(child!.outboundAddress, { callerNumber: caller, destinationNumber: X, caller: { hangupAfterMs: talkMs } });
    observer.watch(uuid);
    return { id: callToXId(uuid), uuid };
  }

  async function kill(how: 'SIGKILL' = 'SIGKILL'): Promise<number> {
    const proc = child!;
    proc.child.kill(how);
    const exit = await proc.exited;
    expect(exit.signal).toBe('SIGKILL');
    return exit.at;
  }

  /** The call's end as the switch saw it: first hangup cause, billed seconds, end time. */
  function endOf(uuid: string): { cause: string; billsec: number; at: number } | undefined {
    const hangup = observer.hangup(uuid);
    return hangup && { cause: hangup.cause, billsec: observer.billsec(uuid)!, at: hangup.at };
  }

  /** One CDR, the switch's figures, settled in time; each progress event once, the bridge at the switch's time. */
  async function expectSettledOnce({ id: callId, uuid }: { id: string; uuid: string }, killedAt: number) {
    const rows = await waitUntil('the CDR', async () => {
      const r = await cdrsOf(callId);
      return r.length > 0 && r;
    }, 30_000);
    const writtenAt = Date.now();
    const end = await waitUntil('the call to end on the switch', () => endOf(uuid));
    expect(writtenAt - Math.max(killedAt, end.at)).toBeLessThan(SETTLED_WITHIN_MS);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ result: 'connected', talk_seconds: end.billsec, hangup_cause: end.cause, hangup_side: 'a' });
    expect(Math.abs((rows[0]!.ended_at as Date).getTime() - end.at)).toBeLessThan(1000);
    const bridgedAt = observer.at(uuid, 'CHANNEL_BRIDGE')!;
    expect(Math.abs((rows[0]!.b_answer_at as Date).getTime() - bridgedAt)).toBeLessThan(1000);

    await receiver.waitFor((ws) => distinctById(eventsOf(ws, callId)).length >= CONNECTED_CALL.length, 20_000);
    // An event queued under a second id would be queued by now: give it the time to arrive.
    await new Promise((r) => setTimeout(r, 1500));
    const mine = eventsOf(receiver.received, callId);
    expect(kinds(distinctById(mine))).toEqual(CONNECTED_CALL);
    expect(mine.every((w) => w.verification.ok)).toBe(true);
    const bridged = mine.find((w) => w.payload.type === 'call.bridged')!;
    expect(Math.abs(new Date(bridged.payload.createdAt).getTime() - bridgedAt)).toBeLessThan(1000);
    expect((await cdrsOf(callId)).length).toBe(1);
  }

  it('killed while B rings (before the bridge): the call goes on, and is settled when it ends', async () => {
    const call = await callToX('13800063001', '13900063001', 2500, 3000);
    await waitUntil('B to ring', () => sys.sim.invitesTo('13900063001').length === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(observer.event(call.uuid, 'CHANNEL_BRIDGE')).toBeUndefined();
    const killedAt = await kill();
    await expectSettledOnce(call, killedAt);
  });

  it('killed while A and B talk: nobody settles it while its controller lives, another controller does once it is dead', async () => {
    const call = await callToX('13800063002', '13900063002', 200, 10_000);
    await waitUntil('the bridge', () => observer.event(call.uuid, 'CHANNEL_BRIDGE'));
    // The child beats: longer than its TTL (CALLBACK_LOCK_SECONDS, 6 s) on, its call is still nobody else's.
    await new Promise((r) => setTimeout(r, 7000));
    expect(await handovers.getJob(`handover-${call.id}`)).toBeUndefined();
    const killedAt = await kill();
    expect(endOf(call.uuid)).toBeUndefined();
    await expectSettledOnce(call, killedAt);
  });

  it('the call ends while its controller is frozen, which is then killed before queueing the CDR', async () => {
    const call = await callToX('13800063003', '13900063003', 200, 2000);
    await waitUntil('the bridge', () => observer.event(call.uuid, 'CHANNEL_BRIDGE'));
    child!.child.kill('SIGSTOP');
    await waitUntil('the call to end', () => endOf(call.uuid), 15_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(await cdrsOf(call.id)).toHaveLength(0);
    const killedAt = await kill();
    await expectSettledOnce(call, killedAt);
  });

  it('a call the controller finished is never settled again after it is killed', async () => {
    const call = await callToX('13800063004', '13900063004', 200, 1000);
    const rows = await waitUntil('the CDR', async () => {
      const r = await cdrsOf(call.id);
      return r.length > 0 && r;
    }, 30_000);
    expect(rows[0]).toMatchObject({ result: 'connected' });
    await kill();
    // Past the TTL of its heartbeat and a few sweeps of the other controller.
    await new Promise((r) => setTimeout(r, 10_000));
    expect(await handovers.getJob(`handover-${call.id}`)).toBeUndefined();
    expect(await cdrsOf(call.id)).toHaveLength(1);
    expect(kinds(distinctById(eventsOf(receiver.received, call.id)))).toEqual(CONNECTED_CALL);
  });
});
