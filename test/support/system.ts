import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { deterministicUuid } from '../../src/domain/ids';
import { startApp, type App } from '../../src/app';
import type { CallView } from '../../src/calls/types';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { TenantStore, type NewTenant } from '../../src/stores/tenant-store';
import type { RowDataPacket } from 'mysql2/promise';
import { FreeSwitchSimulator, type OutboundCall } from '../simulator';
import { waitUntil } from './wait';
import { createTestDatabase } from './mysql';
import { testRedisPrefix } from './redis';

export const X = '700100000000001';

export interface TestSystem {
  readonly app: App;
  readonly sim: FreeSwitchSimulator;
  /** Every simulated switch (sim is the first); named fs1, fs2, ... in SWITCHES when there are several. */
  readonly sims: readonly FreeSwitchSimulator[];
  readonly apiKey: string;
  /** The id of apiKey: with it, jobs queued straight into BullMQ are signed. */
  readonly apiKeyId: string;
  readonly tenantId: string;
  readonly logLines: string[];
  readonly env: Record<string, string>;
  readonly tenants: TenantStore;
  api<T = unknown>(method: string, path: string, body?: unknown, key?: string): Promise<{ status: number; body: T }>;
  placeCall(body: Record<string, unknown>): Promise<CallView>;
  waitForCall(id: string, until?: (c: CallView) => boolean, timeoutMs?: number): Promise<CallView>;
  /** A carrier's call to X on the first simulated switch; resolves with its CDR row once written. */
  callX(call: OutboundCall, timeoutMs?: number): Promise<CallToX>;
  /** The CDR row of the call to X the switch opened as channel `uuid`, once written. */
  cdrOfCallToX(uuid: string, timeoutMs?: number): Promise<RowDataPacket>;
  stop(): Promise<void>;
}

export interface CallToX {
  readonly uuid: string;
  readonly callId: string;
  readonly cdr: RowDataPacket;
}

export interface TestSystemOptions {
  readonly tenant?: Partial<NewTenant>;
  readonly env?: Record<string, string>;
  readonly timeScale?: number;
  readonly lockDurationMs?: number;
  readonly stalledIntervalMs?: number;
  /** Run the callback and CDR workers in this process (default true). */
  readonly workers?: boolean;
  /** Do not wait for the switches to connect before returning. */
  readonly noSwitchWait?: boolean;
  /** How many simulated switches (default 1: ESL_HOST; several: SWITCHES=fs1@…,fs2@…). */
  readonly switches?: number;
}

/** The whole controller against the switch simulator, a fresh database and a fresh Redis prefix. */
export async function startTestSystem(opts: TestSystemOptions = {}): Promise<TestSystem> {
  const sims = Array.from({ length: opts.switches ?? 1 }, () => new FreeSwitchSimulator({ timeScale: opts.timeScale ?? 0.05 }));
  const addrs = await Promise.all(sims.map((s) => s.start()));
  const sim = sims[0] as FreeSwitchSimulator;
  const addr = addrs[0] as { host: string; port: number };
  const db = await createTestDatabase();
  const prefix = testRedisPrefix();
  const ownSpool = opts.env?.MESSAGE_SPOOL_DIR === undefined ? mkdtempSync(join(tmpdir(), 'ng-spool-')) : null;
  const env: Record<string, string> = {
    ...(ownSpool ? { MESSAGE_SPOOL_DIR: ownSpool } : {}),
    ESL_HOST: addr.host,
    ESL_PORT: String(addr.port),
    ESL_PASSWORD: 'ClueCon',
    ESL_RECONNECT_MIN_MS: '50',
    ESL_RECONNECT_MAX_MS: '500',
    MYSQL_URL: db.url,
    REDIS_PREFIX: prefix,
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: '0',
    OUTBOUND_SOCKET_HOST: '127.0.0.1',
    OUTBOUND_SOCKET_PORT: '0',
    CALLBACK_CALLS_PER_SECOND: '1000',
    LOG_LEVEL: 'debug',
    // Abuse limits off unless a test turns them on (test/abuse/): suites reuse numbers freely.
    CALLS_PER_CALLER_PER_MINUTE: '0',
    BINDINGS_PER_NUMBER_PER_HOUR: '0',
    TENANT_REQUESTS_PER_SECOND: '0',
    // The anomaly watch off too (test/abuse/anomaly-watch.test.ts sets a tenant's own thresholds): it costs Redis round trips per CDR.
    CALLER_BURST_CALLS: '0',
    X_BURST_CALLS: '0',
    SHORT_CALL_MIN_CALLS: '0',
    BULK_BINDING_MIN_PER_MINUTE: '0',
    // Back-pressure off unless a test turns it on (test/queues/back-pressure.test.ts): suites queue calls in bursts,
    // and the simulator reports the shipped sessions-per-second (30), which would hold the queue to 12 calls/s.
    CALLBACK_SWITCH_SHARE: '0',
    CALLBACK_MAX_WAIT_SECONDS: '0',
    // Likewise the controller's own overload bound: every test system shares the jest process's one event loop.
    CONTROLLER_MAX_LOOP_DELAY_MS: '0',
    // Webhook receivers in tests listen on 127.0.0.1 (test/webhooks/webhook-url-guard.test.ts turns the guard on).
    WEBHOOK_ALLOW_PRIVATE_URLS: 'true',
    ...(sims.length > 1 ? { SWITCHES: addrs.map((a, i) => `fs${i + 1}@${a.host}:${a.port}`).join(',') } : {}),
    ...opts.env,
  };
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  });
  const app = await startApp(loadConfig(env), createLogger('debug', sink), {
    lockDurationMs: opts.lockDurationMs,
    stalledIntervalMs: opts.stalledIntervalMs,
    workers: opts.workers,
  });
  // The controller serves without waiting for its switches; tests start once the simulator is connected.
  if (!opts.noSwitchWait && !(await app.fleet.whenConnected(30_000))) throw new Error('the controller did not connect to the switch simulator');
  const tenants = new TenantStore(db.pool);
  const tenant = await tenants.create({ name: 'acme', defaultX: X, ...opts.tenant });
  // The operator assigns the tenant its numbers; X, its default, is one of them.
  await app.bindings.importNumbers(tenant.id, [{ x: X, area: '010' }]);
  const { id: apiKeyId, key } = await tenants.createApiKey(tenant.id, 'test');
  const address = app.http.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const base = `http://127.0.0.1:${port}`;

  const api = async <T,>(method: string, path: string, body?: unknown, apiKey = key) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  };

  const waitForCall = async (id: string, until: (c: CallView) => boolean = (c) => c.cdr !== null, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { status, body } = await api<CallView>('GET', `/v1/calls/${id}`);
      // A job queued straight into BullMQ is unknown to the API until the worker records it.
      if (status === 200 && until(body)) return body;
      if (Date.now() > deadline) throw new Error(`call ${id} did not reach the expected state: ${JSON.stringify(body)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const cdrOfCallToX = (uuid: string, timeoutMs = 20_000): Promise<RowDataPacket> => {
    const callId = deterministicUuid('call-to-x', uuid);
    return waitUntil(
      `the CDR of the call to X ${callId}`,
      async () => (await app.pool.query<RowDataPacket[]>('SELECT * FROM cdrs WHERE call_id = ?', [callId]))[0][0],
      timeoutMs,
    );
  };

  return {
    app,
    sim,
    sims,
    apiKey: key,
    apiKeyId,
    tenantId: tenant.id,
    logLines,
    env,
    tenants,
    api,
    async placeCall(body) {
      const res = await api<CallView>('POST', '/v1/calls', body);
      if (res.status !== 202 && res.status !== 200) throw new Error(`placeCall: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    waitForCall,
    cdrOfCallToX,
    async callX(call, timeoutMs) {
      const uuid = await sim.connectOutbound(app.outboundAddress, call);
      return { uuid, callId: deterministicUuid('call-to-x', uuid), cdr: await cdrOfCallToX(uuid, timeoutMs) };
    },
    async stop() {
      await app.stop();
      await Promise.all(sims.map((s) => s.stop()));
      await db.drop();
      if (ownSpool) rmSync(ownSpool, { recursive: true, force: true });
    },
  };
}
