import * as http from 'node:http';
import * as https from 'node:https';
import type { LookupFunction } from 'node:net';
import { performance } from 'node:perf_hooks';
import { categorizeRequestError, httpStatusError, type DeliveryErrorCategory } from './delivery-errors';
import type { WebhookPayload } from './payload';
import { resolveWebhookHost, type ResolvedAddress, type ResolveOptions } from './public-address';
import { webhookHeaders } from './signing';
import type { WebhookEndpoint } from './webhook-store';

export interface AttemptResult {
  readonly ok: boolean;
  readonly httpStatus: number | null;
  /** What the tenant sees in the delivery log; null when delivered. */
  readonly error: DeliveryErrorCategory | null;
  readonly durationMs: number;
  /** For the operator's log only (socket error, address): never stored where the tenant can read it. */
  readonly detail: string | null;
}

export interface PostOptions extends ResolveOptions {
  /** The whole attempt (resolution, connect, answer) must finish within this. */
  readonly timeoutMs: number;
}

/**
 * A `lookup` for node's http/https that answers with the addresses already resolved and checked,
 * so the socket connects to one of them and nothing is resolved between the check and the connect.
 */
export function pinnedLookup(addresses: readonly ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    const family = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0;
    const usable = addresses.filter((a) => family === 0 || a.family === family);
    const first = usable[0];
    if (!first) {
      const err = Object.assign(new Error('no checked address of the requested family'), { code: 'ENOTFOUND' });
      process.nextTick(() => callback(err, '', 0));
      return;
    }
    if (options.all) process.nextTick(() => callback(null, usable.map((a) => ({ address: a.address, family: a.family }))));
    else process.nextTick(() => callback(null, first.address, first.family));
  };
}

const TIMED_OUT = Symbol('timed out');

function describe(err: unknown): string {
  const e = (err ?? {}) as { code?: unknown; message?: unknown };
  return [typeof e.code === 'string' ? e.code : null, typeof e.message === 'string' ? e.message : String(err)].filter(Boolean).join(': ');
}

/**
 * One signed POST to the endpoint: the host is resolved once, every address checked, and the
 * connection made to a checked address (TLS SNI, certificate check and Host header still use the
 * URL's host name). 2xx is delivered; any other status (redirects too), an error or the timeout
 * is a failed attempt.
 */
export async function postWebhook(endpoint: Pick<WebhookEndpoint, 'url' | 'secret'>, payload: WebhookPayload, opts: PostOptions): Promise<AttemptResult> {
  const started = performance.now();
  const elapsed = (): number => performance.now() - started;
  const failed = (error: DeliveryErrorCategory, detail: string): AttemptResult => ({ ok: false, httpStatus: null, error, durationMs: elapsed(), detail });

  let url: URL;
  try {
    url = new URL(endpoint.url);
  } catch {
    return failed('connection_failed', 'the stored url does not parse');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return failed('connection_failed', `unsupported protocol ${url.protocol}`);

  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), opts.timeoutMs);
  });
  try {
    const host = await Promise.race([resolveWebhookHost(url.hostname, opts), deadline]);
    if (host === TIMED_OUT) return failed('timeout', 'name resolution did not finish in time');
    if (!host.ok) return failed(host.reason === 'not_public' ? 'not_public_address' : 'unresolvable', host.detail);
    const body = JSON.stringify(payload);
    const addresses = host.addresses;
    return await new Promise<AttemptResult>((settle) => {
      let done = false;
      const finish = (r: AttemptResult): void => {
        if (done) return;
        done = true;
        settle(r);
      };
      const req = (url.protocol === 'https:' ? https : http).request({
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port === '' ? undefined : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          'user-agent': 'numguard-webhooks/1',
          ...webhookHeaders(endpoint.secret, payload.id, body),
        },
        // A fresh connection per attempt: a pooled socket could be one made to an earlier resolution.
        agent: false,
        lookup: pinnedLookup(addresses),
      });
      const to = addresses.map((a) => a.address).join(',');
      req.on('response', (res) => {
        // The reply body is of no interest.
        res.on('error', () => undefined);
        res.destroy();
        const status = res.statusCode ?? 0;
        const ok = status >= 200 && status < 300;
        finish({ ok, httpStatus: status, error: ok ? null : httpStatusError(status), durationMs: elapsed(), detail: ok ? null : `HTTP ${status} from ${to}` });
      });
      req.on('error', (err) => {
        if ((err as { cause?: unknown }).cause === TIMED_OUT) finish(failed('timeout', `no response within ${opts.timeoutMs} ms from ${to}`));
        else finish(failed(categorizeRequestError(err), `${describe(err)} (checked ${to})`));
      });
      void deadline.then(() => {
        if (!done) req.destroy(new Error('webhook attempt timed out', { cause: TIMED_OUT }));
      });
      req.end(body);
    });
  } finally {
    clearTimeout(timer);
  }
}
