import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createLogger } from '../../src/logger';
import type { WebhookPayload } from '../../src/webhooks/payload';
import { RedisTenantSlots } from '../../src/webhooks/tenant-slots';
import { startWebhookWorker, WebhookQueue } from '../../src/webhooks/webhook-queue';
import { WebhookStore } from '../../src/webhooks/webhook-store';
import { createTestDatabase, type TestDatabase } from '../support/mysql';
import { createTestRedis, TEST_REDIS_URL, type TestRedis } from '../support/redis';
import { startReceiver, type Receiver } from './receiver';

const SECRET = 'fairness-test-secret-0123';

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('per-tenant delivery slots in Redis', () => {
  let redis: TestRedis;
  let other: Redis;
  beforeAll(async () => {
    redis = await createTestRedis();
    other = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    other?.disconnect();
    await redis?.cleanup();
  });

  it('the limit holds across controllers (connections), per tenant, and a release frees a slot at once', async () => {
    const one = new RedisTenantSlots(redis.redis, redis.prefix, 2, 60_000);
    const two = new RedisTenantSlots(other, redis.prefix, 2, 60_000);
    expect(await one.acquire('t1', 'a')).toBe(true);
    expect(await two.acquire('t1', 'b')).toBe(true);
    expect(await one.acquire('t1', 'c')).toBe(false);
    expect(await two.acquire('t1', 'c')).toBe(false);
    expect(await two.acquire('t2', 'x')).toBe(true); // another tenant is not affected
    expect(await one.inFlight('t1')).toBe(2);
    await one.release('t1', 'a');
    expect(await two.acquire('t1', 'c')).toBe(true);
    expect(await one.acquire('t1', 'd')).toBe(false);
  });

  it('the slots of a controller that died holding them come back when their lease runs out, and the key expires', async () => {
    // long enough that the two calls below land inside it on a machine whose load average is 12
    const leaseMs = 3000;
    const slots = new RedisTenantSlots(redis.redis, redis.prefix, 1, leaseMs);
    const taken = Date.now();
    expect(await slots.acquire('crashy', 'dead-holder')).toBe(true); // never released
    expect(await slots.acquire('crashy', 'next')).toBe(false);
    const ttl = await redis.redis.pttl(`${redis.prefix}:webhooks:tenant-slots:crashy`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(leaseMs);
    await until('the lease to expire', () => slots.acquire('crashy', 'next'), 20_000);
    expect(Date.now() - taken).toBeGreaterThanOrEqual(leaseMs - 50);
  });
});

describe('one tenant\'s hanging endpoint delays only that tenant (real Redis and MariaDB)', () => {
  const TIMEOUT_MS = 8000;
  const SHARE = 5;
  let db: TestDatabase;
  let redis: TestRedis;
  let second: Redis;
  let store: WebhookStore;
  let queue: WebhookQueue;
  let workers: Array<ReturnType<typeof startWebhookWorker>> = [];
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = await createTestRedis();
    second = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    store = new WebhookStore(db.pool);
    queue = new WebhookQueue({ connection: redis.redis, prefix: redis.prefix });
  });
  afterAll(async () => {
    // Closing the receivers first lets the hanging requests fail at once, so the workers stop promptly.
    for (const r of receivers) await r.close();
    for (const w of workers) await w.close();
    await queue?.close();
    second?.disconnect();
    await redis?.cleanup();
    await db?.drop();
  });

  function payloadFor(tenantId: string): WebhookPayload {
    return { id: randomUUID(), type: 'call.answered', createdAt: new Date().toISOString(), tenantId, data: { callId: randomUUID(), leg: 'a' } };
  }

  it('with 50 events queued for A (hanging) before 5 for B, B\'s are all delivered while A\'s first requests are still open', async () => {
    const slow = await startReceiver(SECRET, () => 'hang');
    const fast = await startReceiver(SECRET, () => 200);
    receivers.push(slow, fast);
    const [a, b] = [randomUUID(), randomUUID()];
    await store.putEndpoint(a, { url: slow.url, secret: SECRET, events: null, enabled: true });
    await store.putEndpoint(b, { url: fast.url, secret: SECRET, events: null, enabled: true });
    const aEvents = Array.from({ length: 50 }, () => payloadFor(a));
    const bEvents = Array.from({ length: 5 }, () => payloadFor(b));
    for (const p of aEvents) await queue.enqueue(p);
    for (const p of bEvents) await queue.enqueue(p);

    // Two controllers of 10 deliveries each: 20 in all, as one controller has by default.
    workers = [redis.redis, second].map((connection) =>
      startWebhookWorker({
        connection,
        prefix: redis.prefix,
        store,
        endpoints: { get: (tenantId) => store.getEndpoint(tenantId) },
        logger: createLogger('silent'),
        timeoutMs: TIMEOUT_MS,
        retryUnitMs: 600_000,
        allowPrivateUrls: true,
        concurrency: 10,
        tenantConcurrency: SHARE,
      }),
    );

    await fast.waitFor((ws) => ws.length >= bEvents.length, TIMEOUT_MS * 3);
    // Measured against A's progress, not the clock: none of A's attempts has ended yet
    // (each ends only at its timeout), and A holds no more than its share of the 20.
    const aLog = await store.listDeliveries(a, { limit: 200 });
    expect(aLog.items).toHaveLength(0);
    expect(slow.answered()).toBe(0);
    expect(slow.received.length).toBeLessThanOrEqual(SHARE);
    expect(slow.received.length).toBeGreaterThan(0);
    expect(new Set(fast.received.map((w) => w.payload.id))).toEqual(new Set(bEvents.map((p) => p.id)));

    // B's log: each delivered on its first attempt.
    await until('B\'s deliveries to be logged', async () => (await store.listDeliveries(b, { limit: 200 })).items.length >= bEvents.length);
    const bLog = (await store.listDeliveries(b, { limit: 200 })).items;
    expect(bLog.every((d) => d.status === 'delivered' && d.attempt === 1)).toBe(true);

    // A's held-back events were put aside (picked up, then delayed) without using up an attempt.
    const aJobs = await Promise.all(aEvents.map((p) => queue.queue.getJob(p.id)));
    expect(aJobs.every((job) => job !== undefined && job.attemptsMade === 0)).toBe(true);
    // B's jobs were queued behind all of A's, so every A job past its share was taken and put aside
    // before B's could be taken: taken at least once, never sent.
    const sent = new Set(slow.received.map((w) => w.payload.id));
    const putAside = aJobs.filter((job) => job!.attemptsStarted >= 1 && !sent.has(job!.id!));
    expect(putAside.length).toBeGreaterThanOrEqual(aEvents.length - SHARE * workers.length);
    expect(putAside.every((job) => job!.attemptsMade === 0)).toBe(true);
    expect(slow.received.length).toBeLessThanOrEqual(SHARE);
  }, 60_000);
});
