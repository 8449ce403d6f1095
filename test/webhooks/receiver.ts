import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebhookPayload } from '../../src/webhooks/payload';
import { verifyWebhook, type WebhookVerification } from '../../src/webhooks/signing';

export interface ReceivedWebhook {
  /** epoch ms when the request arrived */
  readonly at: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawBody: string;
  readonly payload: WebhookPayload;
  /** checked with the README's verifyWebhook, against the secret the receiver was given */
  readonly verification: WebhookVerification;
}

/** What the endpoint does with a request: answer with this status, or never answer. */
export type Reply = number | 'hang';

export interface Receiver {
  readonly url: string;
  readonly received: ReceivedWebhook[];
  /** Requests that have arrived and not been answered. */
  pending(): number;
  answered(): number;
  /** Resolves when `predicate` holds for the requests received so far. */
  waitFor(predicate: (received: readonly ReceivedWebhook[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A local webhook endpoint (node:http) that verifies every request's signature; on 127.0.0.1 and a free port unless told. */
export async function startReceiver(
  secret: string,
  reply: (w: ReceivedWebhook, index: number) => Reply = () => 200,
  listen: { host?: string; port?: number } = {},
): Promise<Receiver> {
  const received: ReceivedWebhook[] = [];
  const hanging = new Set<ServerResponse>();
  let answered = 0;
  const waiters = new Set<() => void>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const w: ReceivedWebhook = {
        at: Date.now(),
        headers: req.headers,
        rawBody,
        payload: JSON.parse(rawBody) as WebhookPayload,
        verification: verifyWebhook(secret, req.headers, rawBody),
      };
      received.push(w);
      const r = reply(w, received.length - 1);
      if (r === 'hang') {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
      } else {
        answered += 1;
        res.statusCode = r;
        res.end('ok');
      }
      for (const wake of waiters) wake();
    });
  });
  const host = listen.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/hooks`,
    received,
    pending: () => hanging.size,
    answered: () => answered,
    waitFor(predicate, timeoutMs = 20_000) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!predicate(received)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`receiver: condition not met after ${received.length} requests: ${received.map((w) => w.payload.type).join(', ')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One delivery per event id: delivery is at least once per id (a killed controller's in-flight post is sent again under its id). */
export function distinctById(ws: readonly ReceivedWebhook[]): ReceivedWebhook[] {
  return [...new Map(ws.map((w) => [w.payload.id, w])).values()];
}
