import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { maskPhonesInText } from '../domain/phone-number';
import { notFound, toHttpError } from '../http/errors';
import { clientErrorHandler } from '../http/request-guards';
import type { Logger } from '../logger';
import { oldestWaitingSince, type PlatformMetrics } from './metrics';

/**
 * Operator endpoints outside the tenant API: Prometheus metrics, liveness, and a read-only
 * queue dashboard. On the API's port, /metrics always needs the admin token
 * (`Authorization: Bearer <ADMIN_TOKEN>`) and the dashboard needs that or HTTP Basic
 * `admin:<token>`; without ADMIN_TOKEN neither exists there (404). A scrape without credentials
 * is only served by the separate metrics listener (METRICS_HOST/METRICS_PORT, startMetricsListener),
 * which an operator binds to an address only the scraper reaches.
 */
export interface OpsDeps {
  readonly metrics: PlatformMetrics;
  readonly adminToken: string | null;
  readonly queues: ReadonlyArray<{ readonly name: string; readonly queue: Queue }>;
}

function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function isAdmin(request: FastifyRequest, token: string): boolean {
  const header = request.headers.authorization ?? '';
  const bearer = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
  if (bearer) return sameSecret(bearer, token);
  const basic = /^Basic\s+(\S+)$/i.exec(header)?.[1];
  if (basic) {
    const [user, ...rest] = Buffer.from(basic, 'base64').toString('utf8').split(':');
    return user === 'admin' && sameSecret(rest.join(':'), token);
  }
  return false;
}

function refuse(reply: FastifyReply, basicRealm: boolean): FastifyReply {
  if (basicRealm) void reply.header('www-authenticate', 'Basic realm="numguard admin", charset="UTF-8"');
  return reply.status(401).send({ error: { code: 'unauthorized', message: 'admin credentials required' } });
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function dashboard(queues: OpsDeps['queues']): Promise<string> {
  const now = Date.now();
  const sections: string[] = [];
  for (const { name, queue } of queues) {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized');
    const oldestSince = await oldestWaitingSince(queue);
    const failed = await queue.getFailed(0, 9);
    const rows = failed
      .map((j) => `<tr><td>${escapeHtml(String(j.id))}</td><td>${escapeHtml(j.name)}</td><td>${j.attemptsMade}</td><td>${escapeHtml(maskPhonesInText(j.failedReason))}</td><td>${new Date(j.finishedOn ?? j.timestamp).toISOString()}</td></tr>`)
      .join('');
    sections.push(`<section><h2>${escapeHtml(name)}</h2>
<p class="counts">${Object.entries(counts).map(([k, v]) => `<span><b>${v}</b> ${k}</span>`).join('')}</p>
<p>oldest waiting: ${oldestSince === null ? 'none' : `${Math.max(0, Math.round((now - oldestSince) / 1000))} s`}</p>
${rows ? `<table><thead><tr><th>job</th><th>name</th><th>attempts</th><th>last error</th><th>at</th></tr></thead><tbody>${rows}</tbody></table>` : '<p>no failed jobs</p>'}
</section>`);
  }
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="10"><title>numguard queues</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:1000px;padding:16px;color:#1d2733}h1{font-size:22px}
section{border:1px solid #d8dee6;border-radius:10px;padding:12px 16px;margin:12px 0}.counts span{display:inline-block;margin-right:16px}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{border-bottom:1px solid #eef1f5;padding:4px 6px;text-align:left;vertical-align:top}</style>
</head><body><h1>Queues</h1><p>Read-only; refreshes every 10 s. Failed-job errors have phone numbers masked.</p>${sections.join('')}</body></html>`;
}

export function registerOpsRoutes(app: FastifyInstance, deps: OpsDeps): void {
  app.get('/livez', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (!deps.adminToken) {
      return reply.status(404).send({ error: { code: 'metrics_disabled', message: 'set ADMIN_TOKEN to scrape /metrics here, or METRICS_PORT for a separate metrics listener' } });
    }
    if (!isAdmin(request, deps.adminToken)) return refuse(reply, false);
    return reply.header('content-type', deps.metrics.contentType).send(await deps.metrics.text());
  });

  app.get('/admin/queues', { schema: { hide: true } }, async (request, reply) => {
    if (!deps.adminToken) return reply.status(404).send({ error: { code: 'not_found', message: 'set ADMIN_TOKEN to enable the queue dashboard' } });
    if (!isAdmin(request, deps.adminToken)) return refuse(reply, true);
    return reply.header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(await dashboard(deps.queues));
  });
}

export interface MetricsListener {
  readonly address: { readonly host: string; readonly port: number };
  close(): Promise<void>;
}

/**
 * A listener of its own that serves only `GET /metrics`, without credentials: for a Prometheus
 * that scrapes over a private interface (METRICS_HOST, default 127.0.0.1; METRICS_PORT). Anything
 * else answers in the API's error shape.
 */
export async function startMetricsListener(
  metrics: Pick<PlatformMetrics, 'contentType' | 'text'>,
  listen: { readonly host: string; readonly port: number },
  logger: Logger,
): Promise<MetricsListener> {
  const sendJson = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(text);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== '/metrics') {
      sendJson(res, 404, notFound().body);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendJson(res, 405, toHttpError({ statusCode: 405 }).body);
      return;
    }
    metrics.text().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        logger.error({ err }, 'metrics scrape failed');
        sendJson(res, 500, toHttpError(err).body);
      },
    );
  });
  server.on('clientError', clientErrorHandler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  logger.info({ host: address.address, port: address.port }, 'metrics listener started');
  return {
    address: { host: address.address, port: address.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
