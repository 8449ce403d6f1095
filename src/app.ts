import type { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { AbuseGuard } from './abuse/abuse-guard';
import type { ClickToDialDefaults } from './calls/click-to-dial-request';
import { DefaultClickToDialService } from './calls/click-to-dial-service';
import type { AppConfig } from './config';
import { EslClient } from './esl/client';
import { PlatformMetrics } from './monitoring/metrics';
import { createReadinessProbe } from './monitoring/readiness';
import { ConsoleHub } from './agent-console/console-hub';
import { ConsoleSessionStore } from './agent-console/console-sessions';
import { AgentTokenStore } from './stores/agent-tokens';
import { completionEvents, PlatformEventBus, withId } from './events/platform-events';
import { EslOutboundServer, peerMatcher, type OutboundSession } from './esl/outbound-server';
import { SwitchIdentity } from './esl/switch-identity';
import { callToXId, handleCallToX, type CallToXDeps } from './flows/call-to-x';
import type { ClickToDialDeps } from './flows/click-to-dial';
import { SUBSCRIBED_EVENTS } from './flows/switch';
import { RedisAuthThrottle } from './http/auth-throttle';
import { buildHttpServer } from './http/server';
import { registerOpsRoutes, startMetricsListener } from './monitoring/ops-routes';
import { registerAbuseRoutes } from './abuse/abuse-routes';
import { registerConsoleRoutes, type ConsoleDeps } from './agent-console/console-routes';
import { registerAuditRoutes } from './audit/routes';
import { registerMediaRoutes } from './bindings/media-routes';
import { registerBindingRoutes } from './bindings/routes';
import { registerCallRoutes } from './calls/call-routes';
import { registerWebhookRoutes, type WebhookRouteDeps } from './webhooks/routes';
import type { Logger } from './logger';
import { CallbackQueue, startCallbackWorker } from './queues/callback-queue';
import type { CallOutcome } from './stores/call-outcome';
import { CdrQueue, startCdrWriter } from './queues/cdr-queue';
import { BindingRegistry } from './stores/binding-registry';
import { CallStore } from './stores/call-store';
import { CdrStore } from './stores/cdr-store';
import { cachedApiKeyAuth, cachedTenantLookup } from './stores/cached-tenants';
import { LiveCallStore } from './stores/live-calls';
import { MediaCatalogue, MediaPlayback } from './stores/media-catalogue';
import { platformSecret } from './stores/platform-secrets';
import { numberHasher } from './domain/number-hash';
import { migrate } from './stores/migrate';
import { createMysqlPool, ensureDatabase, type Pool } from './stores/mysql';
import { createRedis } from './stores/redis';
import { RouteIndex } from './stores/route-index';
import { TenantStore } from './stores/tenant-store';
import { AuditStore } from './stores/audit-store';
import { startWebhookDispatch, webhookQueuer } from './webhooks/dispatch';
import { startWebhookWorker, WebhookQueue } from './webhooks/webhook-queue';
import { CachedWebhookEndpoints, WebhookStore } from './webhooks/webhook-store';


export { SUBSCRIBED_EVENTS };

export interface App {
  readonly http: FastifyInstance;
  readonly bindings: BindingRegistry;
  readonly routes: RouteIndex;
  /** Where FreeSWITCH's dialplan `socket` app must connect (calls to X). */
  readonly outboundAddress: { host: string; port: number };
  readonly esl: EslClient;
  readonly pool: Pool;
  readonly service: DefaultClickToDialService;
  readonly callbackWorker: Worker;
  /** Call and binding events: webhooks listen locally, agent consoles subscribe per tenant. */
  readonly events: PlatformEventBus;
  /** Abuse control: rate limits, blacklist on the call paths, fan-out flags. */
  readonly abuse: AbuseGuard;
  /** The separate /metrics listener (METRICS_HOST/METRICS_PORT), if configured. */
  readonly metricsAddress: { readonly host: string; readonly port: number } | null;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Start the callback and CDR workers (default true). An API-only instance sets false. */
  readonly workers?: boolean;
  /** BullMQ stall detection for the callback worker (tests shorten it). */
  readonly lockDurationMs?: number;
  readonly stalledIntervalMs?: number;
}

/** Wires every room together: stores, switch connection, queues, flows and the HTTP API. */
export async function startApp(config: AppConfig, logger: Logger, options: StartOptions = {}): Promise<App> {
  await ensureDatabase(config.mysqlUrl);
  const pool = createMysqlPool(config.mysqlUrl);
  await migrate(pool, logger);
  const redis = createRedis(config.redisUrl);

  const tenants = new TenantStore(pool);
  const apiKeys = cachedApiKeyAuth(tenants, 5000);
  const audit = new AuditStore(pool);
  const calls = new CallStore(pool);
  const cdrs = new CdrStore(pool);
  const live = new LiveCallStore(redis, config.redisPrefix);
  const numberHash = numberHasher(config.numberHashKey ?? (await platformSecret(pool, 'number_hash_key')));
  const routes = new RouteIndex(redis, config.redisPrefix, numberHash);
  // Created once the queues exist (below); abuse control reports through it from then on.
  let metrics: PlatformMetrics | undefined;
  const abuse = new AbuseGuard({
    redis,
    prefix: config.redisPrefix,
    numberHash,
    pool,
    limits: config.abuse,
    logger,
    metrics: { refused: (limit) => metrics?.abuseRefusal(limit), flagged: (kind) => metrics?.abuseFlag(kind) },
  });
  const bindings = new BindingRegistry(pool, routes, abuse);
  // Routing never waits on MySQL: the index lives in Redis, rebuilt from MySQL whenever Redis lost it.
  const ensureRoutes = async (): Promise<void> => {
    if (!(await routes.isReady())) {
      const n = await routes.rebuild(await bindings.listActive());
      logger.warn({ bindings: n }, 'routing index rebuilt from MySQL');
    }
  };
  await ensureRoutes();
  const routeCheck = setInterval(() => void ensureRoutes().catch((err: unknown) => logger.error({ err }, 'routing index check failed')), 10_000);
  routeCheck.unref();

  const esl = new EslClient({ ...config.esl, events: SUBSCRIBED_EVENTS, logger: logger.child({ component: 'esl' }) });
  esl.on('error', (err: unknown) => logger.error({ err }, 'esl error'));
  await esl.start();

  const events = new PlatformEventBus(redis, config.redisPrefix, (err, event) =>
    logger.warn({ err, type: event.type, callId: event.callId }, 'event listener failed'),
  );
  const cdrQueue = new CdrQueue({ connection: redis, prefix: config.redisPrefix });
  const finished = async (call: CallOutcome): Promise<void> => {
    await cdrQueue.enqueue(call);
    for (const e of completionEvents(call.cdr)) events.report(e);
  };
  // Routing already stops at expiry (to the second); this moves ended bindings into history and reports them.
  const expireBindings = async (): Promise<void> => {
    for (const b of await bindings.expireDue()) {
      events.report({ type: 'binding.expired', tenantId: b.tenantId, bindingId: b.id, at: b.expiresAt });
    }
  };
  const expirySweep = setInterval(() => void expireBindings().catch((err: unknown) => logger.error({ err }, 'binding expiry sweep failed')), 5_000);
  expirySweep.unref();
  const callbackQueue = new CallbackQueue(redis, config.redisPrefix, config.dial.gateway);

  const flow: ClickToDialDeps = {
    switch: esl,
    live,
    dialString: (n) => config.dial.overrides[n] ?? config.dial.template.replace('{number}', n),
    ringbackTone: config.callbacks.ringbackTone,
    bFailedPrompt: config.callbacks.bFailedPrompt,
    recordingPath: (callId) => `${config.callbacks.recordingsDir}/${callId}.wav`,
    report: events.report,
    logger,
  };

  const defaults: ClickToDialDefaults = {
    ringTimeoutASeconds: config.callbacks.ringTimeoutASeconds,
    ringTimeoutBSeconds: config.callbacks.ringTimeoutBSeconds,
    maxDurationSeconds: config.callbacks.maxDurationSeconds,
    passthroughAllowed: config.callbacks.passthroughAllowed,
  };
  const media = new MediaCatalogue(pool);
  const mediaPlayback = new MediaPlayback(media, config.callsToX.soundsDir);
  const switches = new SwitchIdentity([esl]);
  const outbound = new EslOutboundServer({
    host: config.outboundSocket.host,
    port: config.outboundSocket.port,
    allowedPeers: peerMatcher(config.outboundSocket.allowedPeers),
    fromKnownSwitch: (channelData) => switches.isKnown(channelData.header('Core-UUID')),
    logger: logger.child({ component: 'outbound-socket' }),
    commandTimeoutMs: config.esl.commandTimeoutMs,
  });
  const callToX: CallToXDeps = {
    routes,
    dialString: flow.dialString,
    ringbackTone: config.callbacks.ringbackTone,
    notInServicePrompt: config.callsToX.notInServicePrompt,
    announcementOf: (mediaId) => mediaPlayback.argumentFor(mediaId),
    bFailedPrompt: config.callbacks.bFailedPrompt,
    ringTimeoutSeconds: config.callbacks.ringTimeoutBSeconds,
    maxDurationSeconds: config.callbacks.maxDurationSeconds,
    recordingPath: flow.recordingPath,
    finished,
    report: events.report,
    routed: (ms) => metrics?.routingDecision(ms),
    admitCaller: (tenantId, caller, target, now) => abuse.admitCallToX(tenantId, caller, target, now),
    logger,
  };
  outbound.on('session', (session: OutboundSession) => {
    const ended = metrics?.callStarted(callToXId(session.uuid), 'call_to_x');
    handleCallToX(callToX, session)
      .catch((err: unknown) => logger.error({ err }, 'call to X failed'))
      .finally(() => ended?.());
  });
  const outboundAddress = await outbound.listen();

  const workers = options.workers ?? true;
  const webhookStore = new WebhookStore(pool);
  const webhookEndpoints = new CachedWebhookEndpoints(webhookStore, 5000);
  const webhookQueue = new WebhookQueue({ connection: redis, prefix: config.redisPrefix });
  const queueWebhook = webhookQueuer({ store: webhookEndpoints, queue: webhookQueue });
  // The completion webhooks are queued again from the durable CDR job: if this instance dies between
  // the call ending and the webhook being queued, whichever instance writes the CDR queues it (same event id, sent once).
  const cdrWriter = workers
    ? startCdrWriter({
        connection: redis,
        prefix: config.redisPrefix,
        pool,
        logger,
        concurrency: 50,
        afterWrite: async (outcome) => {
          for (const e of completionEvents(outcome.cdr)) await queueWebhook(withId(e));
        },
      })
    : null;
  const webhookWorker = workers
    ? startWebhookWorker({
        connection: redis,
        prefix: config.redisPrefix,
        store: webhookStore,
        endpoints: webhookEndpoints,
        logger,
        timeoutMs: config.webhooks.timeoutMs,
        retryUnitMs: config.webhooks.retryUnitMs,
        onFailedAttempt: (status) => metrics?.webhookFailure(status),
        allowPrivateUrls: config.webhooks.allowPrivateUrls,
        tenantConcurrency: config.webhooks.tenantConcurrency,
      })
    : null;
  const pruneDeliveryLog = async (): Promise<void> => {
    const deleted = await webhookStore.pruneDeliveries(Date.now() - config.webhooks.logRetentionDays * 86_400_000);
    if (deleted > 0) logger.info({ deleted, retentionDays: config.webhooks.logRetentionDays }, 'webhook delivery log pruned');
  };
  const runDeliveryLogPrune = (): void => void pruneDeliveryLog().catch((err: unknown) => logger.error({ err }, 'webhook delivery log prune failed'));
  // The instance that delivers webhooks also keeps their log to its retention.
  const deliveryLogPrune = workers ? setInterval(runDeliveryLogPrune, 3_600_000) : null;
  deliveryLogPrune?.unref();
  if (workers) runDeliveryLogPrune();
  const stopWebhookDispatch = startWebhookDispatch({ events, store: webhookEndpoints, queue: webhookQueue, logger });
  const callbackWorker = startCallbackWorker({
    connection: redis,
    prefix: config.redisPrefix,
    gateway: config.dial.gateway,
    concurrency: config.callbacks.concurrency,
    callsPerSecond: config.callbacks.callsPerSecond,
    flow,
    finished,
    tenants: cachedTenantLookup(tenants, 5000),
    keys: tenants,
    calls,
    defaults,
    numbers: bindings,
    admission: abuse,
    callbackBindingTtlSeconds: config.callbacks.callbackBindingTtlSeconds,
    routes,
    logger,
    lockDurationMs: options.lockDurationMs,
    stalledIntervalMs: options.stalledIntervalMs,
    autorun: workers,
  });

  const service = new DefaultClickToDialService({
    tenants,
    calls,
    cdrs,
    live,
    queue: callbackQueue,
    switchApi: (cmd) => esl.api(cmd),
    finished,
    defaults,
    numbers: bindings,
    admission: abuse,
    logger,
  });

  const queues = [
    { name: 'click-to-dial', queue: callbackQueue.queue },
    { name: 'cdr', queue: cdrQueue.queue },
    { name: 'webhooks', queue: webhookQueue.queue },
  ] as const;
  const consoleHub = new ConsoleHub(events, createRedis(config.redisUrl));
  const agentTokens = new AgentTokenStore(pool);
  // Longer than any call can last: ringing A and B, then the talk-time cap, and a margin.
  const longestCallMs =
    (config.callbacks.ringTimeoutASeconds + config.callbacks.ringTimeoutBSeconds + config.callbacks.maxDurationSeconds) * 1000 + 600_000;
  metrics = new PlatformMetrics({
    events,
    queues,
    pool,
    eslConnected: () => esl.state === 'ready',
    redisReady: () => redis.status === 'ready',
    staleCallMs: longestCallMs,
  });
  const auditFailed = (err: unknown): void => {
    logger.error({ err }, 'audit entry not written');
    metrics?.auditFailure();
  };
  const consoleDeps: ConsoleDeps = {
    // The token is checked at sign-in only (uncached: a revoked or expired one signs no one in).
    tokens: agentTokens,
    sessions: new ConsoleSessionStore(pool, {
      lifetimeMs: config.agentConsole.sessionHours * 3_600_000,
      idleMs: config.agentConsole.idleMinutes * 60_000,
    }),
    cookie: { alwaysSecure: config.agentConsole.cookieSecure, trustProxy: config.agentConsole.trustProxy },
    calls: service,
    hub: consoleHub,
    redis,
    prefix: config.redisPrefix,
    audit,
    onAuditError: auditFailed,
  };
  const webhookRoutes: WebhookRouteDeps = {
    store: webhookStore,
    invalidate: (tenantId) => webhookEndpoints.invalidate(tenantId),
    queue: webhookQueue,
    allowPrivateUrls: config.webhooks.allowPrivateUrls,
  };
  const http = buildHttpServer({
    logger,
    auth: {
      authenticate: async (key) => {
        const t = await apiKeys.authenticate(key);
        return t ? { tenantId: t.id, keyId: t.apiKeyId, name: t.name } : null;
      },
    },
    audit,
    onAuditError: auditFailed,
    authThrottle: new RedisAuthThrottle(redis, config.redisPrefix, config.authFailuresPerMinute),
    readiness: createReadinessProbe({ esl, redis, pool }),
    routes: [(api) => registerOpsRoutes(api, { metrics, adminToken: config.adminToken, queues }), (api) => registerConsoleRoutes(api, consoleDeps)],
    // Abuse control first: the tenant's request rate is counted before any other route runs.
    v1Routes: [
      (v1) => registerAbuseRoutes(v1, abuse),
      (v1) => registerAuditRoutes(v1, audit),
      (v1) => registerCallRoutes(v1, { calls: service, cdrs }),
      (v1) => registerBindingRoutes(v1, { registry: bindings }),
      (v1) => registerMediaRoutes(v1, media),
      (v1) => registerWebhookRoutes(v1, webhookRoutes),
    ],
  });
  await http.listen({ host: config.http.host, port: config.http.port });
  const metricsListener = config.metricsListen ? await startMetricsListener(metrics, config.metricsListen, logger) : null;

  return {
    http,
    bindings,
    routes,
    outboundAddress,
    esl,
    pool,
    service,
    callbackWorker,
    events,
    abuse,
    metricsAddress: metricsListener?.address ?? null,
    async stop() {
      clearInterval(routeCheck);
      clearInterval(expirySweep);
      if (deliveryLogPrune) clearInterval(deliveryLogPrune);
      await outbound.close();
      await http.close();
      await metricsListener?.close();
      await callbackWorker.close();
      await cdrWriter?.close();
      stopWebhookDispatch();
      metrics.stop();
      await consoleHub.close();
      await webhookWorker?.close();
      await webhookQueue.close();
      await callbackQueue.close();
      await cdrQueue.close();
      await esl.stop();
      await redis.quit();
      await pool.end();
    },
  };
}
