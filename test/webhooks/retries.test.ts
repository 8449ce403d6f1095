import { randomUUID } from 'node:crypto';
import { createLogger } from '../../src/logger';
import type { WebhookPayload } from '../../src/webhooks/payload';
import {
  startWebhookWorker,
  WEBHOOK_ATTEMPTS,
  WEBHOOK_RETRY_SCHEDULE_MINUTES,
  webhookBackoffStrategy,
  WebhookQueue,
} from '../../src/webhooks/webhook-queue';
import { WebhookStore, type Delivery } from '../../src/webhooks/webhook-store';
import { createTestDatabase, type TestDatabase } from '../support/mysql';
import { createTestRedis, type TestRedis } from '../support/redis';
import { startReceiver, type Receiver, type Reply } from './receiver';

const SECRET = 'retry-test-secret-0123';
const UNIT_MS = 20;
const TIMEOUT_MS = 1500;

describe('webhook retry schedule', () => {
  it('backs off 1, 4, 9, 106, 203, 300 units after attempts 1..6, and a job has 7 attempts', () => {
    const units = webhookBackoffStrategy(1);
    expect([1, 2, 3, 4, 5, 6].map(units)).toEqual([1, 4, 9, 106, 203, 300]);
    expect(webhookBackoffStrategy()(1)).toBe(60_000);
    expect(webhookBackoffStrategy()(6)).toBe(300 * 60_000);
    expect(WEBHOOK_ATTEMPTS).toBe(7);
  });
});

describe('webhook delivery through the queue (real Redis and MariaDB)', () => {
  let db: TestDatabase;
  let redis: TestRedis;
  let store: WebhookStore;
  let queue: WebhookQueue;
  let worker: ReturnType<typeof startWebhookWorker>;
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = await createTestRedis();
    store = new WebhookStore(db.pool);
    queue = new WebhookQueue({ connection: redis.redis, prefix: redis.prefix });
    worker = startWebhookWorker({
      connection: redis.redis,
      prefix: redis.prefix,
      store,
      endpoints: { get: (tenantId) => store.getEndpoint(tenantId) },
      logger: createLogger('silent'),
      timeoutMs: TIMEOUT_MS,
      retryUnitMs: UNIT_MS,
      allowPrivateUrls: true, // the receiver listens on 127.0.0.1
    });
  });
  afterAll(async () => {
    for (const r of receivers) await r.close();
    await worker?.close();
    await queue?.close();
    await redis?.cleanup();
    await db?.drop();
  });

  async function endpointFor(reply: (index: number) => Reply, opts: { enabled?: boolean } = {}): Promise<{ tenantId: string; receiver: Receiver }> {
    const receiver = await startReceiver(SECRET, (_w, i) => reply(i));
    receivers.push(receiver);
    const tenantId = randomUUID();
    await store.putEndpoint(tenantId, { url: receiver.url, secret: SECRET, events: null, enabled: opts.enabled ?? true });
    return { tenantId, receiver };
  }

  function payloadFor(tenantId: string): WebhookPayload {
    return { id: randomUUID(), type: 'call.answered', createdAt: new Date().toISOString(), tenantId, data: { callId: randomUUID(), leg: 'a' } };
  }

  /** The attempts of one event, oldest first, once `done` holds for them. */
  async function attemptsOf(tenantId: string, eventId: string, done: (d: Delivery[]) => boolean, timeoutMs = 30_000): Promise<Delivery[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { items } = await store.listDeliveries(tenantId, { eventId, limit: 200 });
      const oldestFirst = [...items].reverse();
      if (done(oldestFirst)) return oldestFirst;
      if (Date.now() > deadline) throw new Error(`deliveries not as expected: ${JSON.stringify(oldestFirst)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('a failing endpoint gets exactly 7 attempts: 6 failed then gave_up, further and further apart', async () => {
    const { tenantId, receiver } = await endpointFor(() => 500);
    const payload = payloadFor(tenantId);
    await queue.enqueue(payload);

    const log = await attemptsOf(tenantId, payload.id, (d) => d.some((x) => x.status === 'gave_up'));
    expect(log.map((d) => d.status)).toEqual(['failed', 'failed', 'failed', 'failed', 'failed', 'failed', 'gave_up']);
    expect(log.map((d) => d.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(log.every((d) => d.httpStatus === 500 && d.error === 'http_500' && d.url === receiver.url)).toBe(true);

    const job = await queue.queue.getJob(payload.id);
    expect(await job!.getState()).toBe('failed');
    expect(job!.attemptsMade).toBe(7);

    // The same event, byte for byte, signed afresh on every attempt.
    expect(receiver.received).toHaveLength(7);
    expect(new Set(receiver.received.map((w) => w.rawBody)).size).toBe(1);
    expect(receiver.received.every((w) => w.verification.ok && w.headers['x-numguard-event-id'] === payload.id)).toBe(true);

    const gaps = receiver.received.slice(1).map((w, i) => w.at - receiver.received[i]!.at);
    gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(WEBHOOK_RETRY_SCHEDULE_MINUTES[i]! * UNIT_MS - 5));
    // From the fourth gap on the schedule steps by ~100 units (2 s here), far above queue latency.
    expect(gaps[3]!).toBeGreaterThan(gaps[2]!);
    expect(gaps[4]!).toBeGreaterThan(gaps[3]!);
    expect(gaps[5]!).toBeGreaterThan(gaps[4]!);
  }, 60_000);

  it('an endpoint that recovers gets the event delivered, after the failed attempts are logged', async () => {
    const { tenantId, receiver } = await endpointFor((i) => (i < 2 ? 503 : 204));
    const payload = payloadFor(tenantId);
    await queue.enqueue(payload);
    const log = await attemptsOf(tenantId, payload.id, (d) => d.some((x) => x.status === 'delivered'));
    expect(log.map((d) => [d.attempt, d.status, d.httpStatus])).toEqual([
      [1, 'failed', 503],
      [2, 'failed', 503],
      [3, 'delivered', 204],
    ]);
    expect(receiver.received).toHaveLength(3);
  });

  it('an endpoint that does not answer in time is a failed attempt, and the retry delivers', async () => {
    const { tenantId, receiver } = await endpointFor((i) => (i === 0 ? 'hang' : 200));
    const payload = payloadFor(tenantId);
    await queue.enqueue(payload);
    const log = await attemptsOf(tenantId, payload.id, (d) => d.some((x) => x.status === 'delivered'));
    expect(log.map((d) => d.status)).toEqual(['failed', 'delivered']);
    expect(log[0]).toMatchObject({ httpStatus: null, error: 'timeout' });
    expect(log[0]!.durationMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    expect(receiver.received).toHaveLength(2);
  });

  it('the same event queued again is not delivered again (job id = event id)', async () => {
    const { tenantId, receiver } = await endpointFor(() => 200);
    const payload = payloadFor(tenantId);
    await Promise.all([queue.enqueue(payload), queue.enqueue(payload)]);
    await attemptsOf(tenantId, payload.id, (d) => d.length > 0);
    await queue.enqueue(payload);
    // A later event is delivered; the repeated one never was queued.
    const later = payloadFor(tenantId);
    await queue.enqueue(later);
    await attemptsOf(tenantId, later.id, (d) => d.length > 0);
    expect(receiver.received.filter((w) => w.payload.id === payload.id)).toHaveLength(1);
    const { items } = await store.listDeliveries(tenantId, { eventId: payload.id });
    expect(items).toHaveLength(1);
  });

  it('a disabled endpoint receives nothing and logs nothing', async () => {
    const { tenantId, receiver } = await endpointFor(() => 200, { enabled: false });
    const payload = payloadFor(tenantId);
    await queue.enqueue(payload);
    const deadline = Date.now() + 10_000;
    while ((await (await queue.queue.getJob(payload.id))?.getState()) !== 'completed') {
      if (Date.now() > deadline) throw new Error('job did not complete');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(receiver.received).toHaveLength(0);
    expect((await store.listDeliveries(tenantId)).items).toHaveLength(0);
  });

  it('the delivery log pages newest first and stays within the tenant', async () => {
    const { tenantId } = await endpointFor(() => 200);
    const payloads = [payloadFor(tenantId), payloadFor(tenantId), payloadFor(tenantId)];
    for (const p of payloads) await queue.enqueue(p);
    for (const p of payloads) await attemptsOf(tenantId, p.id, (d) => d.length > 0);
    const first = await store.listDeliveries(tenantId, { limit: 2 });
    expect(first.items).toHaveLength(2);
    expect(first.nextCursor).not.toBeNull();
    const second = await store.listDeliveries(tenantId, { limit: 2, cursor: first.nextCursor! });
    expect(second.items).toHaveLength(1);
    expect(second.nextCursor).toBeNull();
    const all = [...first.items, ...second.items];
    expect(new Set(all.map((d) => d.eventId))).toEqual(new Set(payloads.map((p) => p.id)));
    const times = all.map((d) => d.createdAt);
    expect([...times].sort((x, y) => y - x)).toEqual(times);
    expect((await store.listDeliveries(randomUUID())).items).toHaveLength(0);
  });
});
