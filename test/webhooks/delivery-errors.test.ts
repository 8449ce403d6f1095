import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger';
import { categorizeRequestError, isDeliveryErrorCategory, publicDeliveryError } from '../../src/webhooks/delivery-errors';
import type { WebhookPayload } from '../../src/webhooks/payload';
import type { Resolver } from '../../src/webhooks/public-address';
import { startWebhookWorker, WebhookQueue } from '../../src/webhooks/webhook-queue';
import { WebhookStore, type Delivery } from '../../src/webhooks/webhook-store';
import { createTestDatabase, type TestDatabase } from '../support/mysql';
import { createTestRedis, type TestRedis } from '../support/redis';
import { startReceiver, type Receiver } from './receiver';

const SECRET = 'errors-test-secret-0123';
const TIMEOUT_MS = 1000;
const NOWHERE = 'hooks.nowhere.invalid';

/** A port nothing listens on (any more). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** What node's resolver throws for a name that does not exist. */
const nxdomain: Resolver = async (hostname) => {
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', errno: -3008, syscall: 'getaddrinfo', hostname });
};

describe('the delivery log tells the tenant a category, never socket details (real Redis and MariaDB)', () => {
  let db: TestDatabase;
  let redis: TestRedis;
  let store: WebhookStore;
  let queue: WebhookQueue;
  let worker: ReturnType<typeof startWebhookWorker>;
  const logLines: string[] = [];
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = await createTestRedis();
    store = new WebhookStore(db.pool);
    queue = new WebhookQueue({ connection: redis.redis, prefix: redis.prefix });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString('utf8'));
        done();
      },
    });
    worker = startWebhookWorker({
      connection: redis.redis,
      prefix: redis.prefix,
      store,
      endpoints: { get: (tenantId) => store.getEndpoint(tenantId) },
      logger: createLogger('info', sink),
      timeoutMs: TIMEOUT_MS,
      retryUnitMs: 600_000, // one attempt per event within this test
      allowPrivateUrls: true, // the endpoints are on 127.0.0.1
      resolve: nxdomain,
    });
  });
  afterAll(async () => {
    for (const r of receivers) await r.close();
    await worker?.close();
    await queue?.close();
    await redis?.cleanup();
    await db?.drop();
  });

  async function firstAttempt(url: string): Promise<Delivery> {
    const tenantId = randomUUID();
    await store.putEndpoint(tenantId, { url, secret: SECRET, events: null, enabled: true });
    const payload: WebhookPayload = { id: randomUUID(), type: 'webhook.test', createdAt: new Date().toISOString(), tenantId, data: {} };
    await queue.enqueue(payload);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const { items } = await store.listDeliveries(tenantId, { eventId: payload.id });
      if (items.length > 0) return items[items.length - 1]!;
      if (Date.now() > deadline) throw new Error(`no delivery logged for ${url}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('refused on two closed ports, a timeout and an unknown name: the texts carry no port, address or errno', async () => {
    const [portA, portB] = [await closedPort(), await closedPort()];
    expect(portA).not.toBe(portB);
    const hanging = await startReceiver(SECRET, () => 'hang');
    receivers.push(hanging);
    const hangingPort = new URL(hanging.url).port;

    const [refusedA, refusedB, slow, unknown] = await Promise.all([
      firstAttempt(`http://127.0.0.1:${portA}/hooks`),
      firstAttempt(`http://127.0.0.1:${portB}/hooks`),
      firstAttempt(hanging.url),
      firstAttempt(`https://${NOWHERE}:8443/hooks`),
    ]);
    expect(refusedA.error).toBe('connection_failed');
    expect(refusedB.error).toBe('connection_failed');
    expect(slow.error).toBe('timeout');
    expect(unknown.error).toBe('unresolvable');
    for (const d of [refusedA, refusedB, slow, unknown]) {
      expect(d).toMatchObject({ status: 'failed', httpStatus: null, attempt: 1 });
      const text = d.error!;
      expect(isDeliveryErrorCategory(text)).toBe(true);
      for (const leak of [String(portA), String(portB), hangingPort, '8443', '127.0.0.1', NOWHERE, 'getaddrinfo', String(TIMEOUT_MS)]) {
        expect(text).not.toContain(leak);
      }
      expect(text).not.toMatch(/\bE[A-Z]{3,}\b/); // ECONNREFUSED, ENOTFOUND, ETIMEDOUT, …
      expect(text).not.toMatch(/\d/);
    }

    // The operator's log has what happened.
    const log = logLines.join('');
    expect(log).toContain('ECONNREFUSED');
    expect(log).toContain('ENOTFOUND');
  });

  it('an answer other than 2xx is http_<status>', async () => {
    const r = await startReceiver(SECRET, () => 503);
    receivers.push(r);
    expect(await firstAttempt(r.url)).toMatchObject({ status: 'failed', httpStatus: 503, error: 'http_503' });
    const redirect = await startReceiver(SECRET, () => 302);
    receivers.push(redirect);
    expect(await firstAttempt(redirect.url)).toMatchObject({ status: 'failed', httpStatus: 302, error: 'http_302' });
  });
});

describe('delivery error categories', () => {
  it.each([
    [{ code: 'ECONNREFUSED' }, 'connection_failed'],
    [{ code: 'ECONNRESET' }, 'connection_failed'],
    [{ code: 'EHOSTUNREACH' }, 'connection_failed'],
    [{ code: 'ETIMEDOUT' }, 'timeout'],
    [{ code: 'ENOTFOUND' }, 'unresolvable'],
    [{ code: 'ERR_TLS_CERT_ALTNAME_INVALID' }, 'tls_failed'],
    [{ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }, 'tls_failed'],
    [{ code: 'CERT_HAS_EXPIRED' }, 'tls_failed'],
    [new Error('something odd'), 'connection_failed'],
  ])('%j is %s', (err, category) => {
    expect(categorizeRequestError(err)).toBe(category);
  });

  it('texts logged before the categories are shown to the tenant as their category', () => {
    expect(publicDeliveryError(null)).toBeNull();
    expect(publicDeliveryError('HTTP 500')).toBe('http_500');
    expect(publicDeliveryError('no response within 5000 ms')).toBe('timeout');
    expect(publicDeliveryError('ECONNREFUSED: connect ECONNREFUSED 10.1.2.3:81')).toBe('connection_failed');
    expect(publicDeliveryError('ENOTFOUND: getaddrinfo ENOTFOUND internal.corp')).toBe('connection_failed');
    expect(publicDeliveryError('host resolves to a non-public address')).toBe('not_public_address');
    expect(publicDeliveryError('host does not resolve')).toBe('unresolvable');
    expect(publicDeliveryError('http_404')).toBe('http_404');
    expect(publicDeliveryError('timeout')).toBe('timeout');
  });
});
