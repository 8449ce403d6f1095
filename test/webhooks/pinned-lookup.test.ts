import { randomUUID } from 'node:crypto';
import { createServer, isIP, type AddressInfo, type Server } from 'node:net';
import type { WebhookPayload } from '../../src/webhooks/payload';
import { postWebhook } from '../../src/webhooks/pinned-post';
import type { Resolver } from '../../src/webhooks/public-address';
import { startReceiver, type Receiver } from './receiver';

const SECRET = 'pinned-test-secret-0123';
/** The tenant's host name; only the scripted resolvers below know it. */
const NAME = 'hooks.rebind.test';
/** In these tests 127.0.0.2 plays a public address; 127.0.0.1 stays what it is: the operator's own host. */
const playsPublic = (address: string): boolean => address === '127.0.0.2';

/** A DNS server answering each query from a script: the first answer, then the next, …, the last one from then on. */
function scriptedDns(...answers: string[][]): { resolve: Resolver; asked: string[] } {
  const asked: string[] = [];
  const resolve: Resolver = async (hostname) => {
    asked.push(hostname);
    const answer = answers[Math.min(asked.length, answers.length) - 1]!;
    return answer.map((address) => ({ address, family: isIP(address) === 6 ? 6 : 4 }));
  };
  return { resolve, asked };
}

function payload(): WebhookPayload {
  return { id: randomUUID(), type: 'webhook.test', createdAt: new Date().toISOString(), tenantId: randomUUID(), data: {} };
}

describe('webhook delivery connects to exactly the address it checked (no DNS rebinding)', () => {
  /** The tenant's endpoint, on the address that passes the check. */
  let outside: Receiver;
  /** An internal service on the same port, on the address the name later rebinds to. */
  let inside: Receiver;
  let port: number;

  beforeAll(async () => {
    for (let tries = 0; ; tries++) {
      outside = await startReceiver(SECRET, () => 200, { host: '127.0.0.2' });
      port = Number(new URL(outside.url).port);
      try {
        inside = await startReceiver(SECRET, () => 200, { host: '127.0.0.1', port });
        return;
      } catch (err) {
        // that port was taken on 127.0.0.1: pick another
        await outside.close();
        if (tries > 20) throw err;
      }
    }
  });
  afterAll(async () => {
    await outside?.close();
    await inside?.close();
  });

  it('resolves once per attempt and connects to the checked address, though the name rebinds to a private one right after', async () => {
    const dns = scriptedDns(['127.0.0.2'], ['127.0.0.1']);
    const url = `http://${NAME}:${port}/hooks?tenant=1`;
    const first = await postWebhook({ url, secret: SECRET }, payload(), { timeoutMs: 5000, resolve: dns.resolve, isAllowedAddress: playsPublic });
    expect(first).toMatchObject({ ok: true, httpStatus: 200, error: null });
    expect(dns.asked).toEqual([NAME]);
    expect(outside.received).toHaveLength(1);
    expect(inside.received).toHaveLength(0);
    // The endpoint still sees its own name, and the signature is intact.
    expect(outside.received[0]!.headers.host).toBe(`${NAME}:${port}`);
    expect(outside.received[0]!.verification.ok).toBe(true);

    // The next attempt resolves afresh, gets the private address, and is refused before connecting.
    const second = await postWebhook({ url, secret: SECRET }, payload(), { timeoutMs: 5000, resolve: dns.resolve, isAllowedAddress: playsPublic });
    expect(second).toMatchObject({ ok: false, httpStatus: null, error: 'not_public_address' });
    expect(dns.asked).toEqual([NAME, NAME]);
    expect(inside.received).toHaveLength(0);
    expect(outside.received).toHaveLength(1);
  });

  it('refuses a name when any of its addresses is not public, and connects nowhere', async () => {
    const before = outside.received.length;
    const dns = scriptedDns(['127.0.0.2', '127.0.0.1']);
    const result = await postWebhook({ url: `http://${NAME}:${port}/hooks`, secret: SECRET }, payload(), {
      timeoutMs: 5000,
      resolve: dns.resolve,
      isAllowedAddress: playsPublic,
    });
    expect(result).toMatchObject({ ok: false, error: 'not_public_address' });
    expect(dns.asked).toHaveLength(1);
    expect(outside.received).toHaveLength(before);
    expect(inside.received).toHaveLength(0);
  });

  it('with WEBHOOK_ALLOW_PRIVATE_URLS the connection is still pinned to the one resolution', async () => {
    const before = outside.received.length;
    const dns = scriptedDns(['127.0.0.2'], ['127.0.0.1']);
    const result = await postWebhook({ url: `http://${NAME}:${port}/hooks`, secret: SECRET }, payload(), { timeoutMs: 5000, resolve: dns.resolve, allowPrivate: true });
    expect(result).toMatchObject({ ok: true, httpStatus: 200 });
    expect(dns.asked).toHaveLength(1);
    expect(outside.received).toHaveLength(before + 1);
    expect(inside.received).toHaveLength(0);
  });

  it('an IP literal is checked as it is and not resolved', async () => {
    const dns = scriptedDns(['127.0.0.2']);
    const refused = await postWebhook({ url: `http://127.0.0.1:${port}/hooks`, secret: SECRET }, payload(), { timeoutMs: 5000, resolve: dns.resolve });
    expect(refused).toMatchObject({ ok: false, error: 'not_public_address' });
    const mapped = await postWebhook({ url: `http://[::ffff:7f00:1]:${port}/hooks`, secret: SECRET }, payload(), { timeoutMs: 5000, resolve: dns.resolve });
    expect(mapped).toMatchObject({ ok: false, error: 'not_public_address' });
    expect(dns.asked).toHaveLength(0);
    expect(inside.received).toHaveLength(0);
  });

  it('https sends the host name as TLS SNI while connecting to the checked address', async () => {
    // A TLS server is not needed to see the ClientHello: it arrives in clear text.
    const hellos: Buffer[] = [];
    const server: Server = createServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        hellos.push(chunk);
        socket.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    try {
      const tlsPort = (server.address() as AddressInfo).port;
      const dns = scriptedDns(['127.0.0.2'], ['127.0.0.1']);
      const result = await postWebhook({ url: `https://${NAME}:${tlsPort}/hooks`, secret: SECRET }, payload(), {
        timeoutMs: 5000,
        resolve: dns.resolve,
        isAllowedAddress: playsPublic,
      });
      expect(hellos).toHaveLength(1);
      expect(hellos[0]!.includes(Buffer.from(NAME, 'ascii'))).toBe(true);
      expect(dns.asked).toHaveLength(1);
      expect(result.ok).toBe(false);
      expect(['tls_failed', 'connection_failed']).toContain(result.error);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a resolver slower than the timeout ends the attempt as a timeout', async () => {
    const never: Resolver = () => new Promise(() => undefined);
    const result = await postWebhook({ url: `http://${NAME}:${port}/hooks`, secret: SECRET }, payload(), { timeoutMs: 200, resolve: never });
    expect(result).toMatchObject({ ok: false, error: 'timeout' });
  });
});
