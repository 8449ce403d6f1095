import { randomUUID } from 'node:crypto';
import type { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { AbuseGuard } from './abuse/abuse-guard';
import type { ClickToDialDefaults } from './calls/click-to-dial-request';
import { DefaultClickToDialService } from './calls/click-to-dial-service';
import type { AppConfig } from './config';
import type { EslClient } from './esl/client';
import { SwitchFleet } from './fleet/switch-fleet';
import type { SwitchNode } from './fleet/switch-node';
import { FleetBackPressure, fleetPlacement } from './fleet/placement';
import { SwitchStore } from './stores/switch-store';
import { PlatformMetrics } from './monitoring/metrics';
import { createReadinessProbe } from './monitoring/readiness';
import { ConsoleHub } from './agent-console/console-hub';
import { ConsoleSessionStore } from './agent-console/console-sessions';
import { AgentTokenStore } from './stores/agent-tokens';
import { completionEvents, PlatformEventBus, progressEvents, withId, type PlatformEvent } from './events/platform-events';
import { EslOutboundServer, peerMatcher, type OutboundSession } from './esl/outbound-server';
import { SwitchIdentity } from './esl/switch-identity';
import { CALL_TO_X_EVENTS, callToXId, handleCallToX, type CallToXDeps } from './flows/call-to-x';
import { callToXHandOver, CallToXHandoverQueue, durableCallsToX, startCallToXSettler, sweepOrphanedCallsToX } from './flows/call-to-x-handover';
import { STALE_FIGURES_SWEEP, sweepStaleFigures } from './flows/switch-figures';
import { CallsToXOwners } from './stores/calls-to-x-owners';
import { GuardedLiveCallStore, HandedOverCalls } from './lifecycle/handed-over';
import { JobsInFlight } from './lifecycle/jobs-in-flight';
import { lastRunStopped, NODE_BEAT_MS, resumeOwnJobs } from './lifecycle/own-jobs';
import { QueuedCdrs } from './lifecycle/queued-cdrs';
import { Scheduler } from './lifecycle/scheduler';
import { callIdFor } from './calls/click-to-dial-request';
import type { ClickToDialDeps } from './flows/click-to-dial';
import { CALL_EVENT_FILTERS, SUBSCRIBED_EVENTS } from './flows/switch';
import { RedisAuthThrottle } from './http/auth-throttle';
import { buildHttpServer } from './http/server';
import { registerOpsRoutes, startMetricsListener } from './monitoring/ops-routes';
import { registerAbuseRoutes } from './abuse/abuse-routes';
import { refuseQuarantined } from './abuse/disposal';
import { NumberTraceReader } from './abuse/number-trace';
import { registerConsoleRoutes, type ConsoleDeps } from './agent-console/console-routes';
import { registerAuditRoutes } from './audit/routes';
import { registerMediaRoutes } from './bindings/media-routes';
import { registerBindingRoutes } from './bindings/routes';
import { registerCallRoutes } from './calls/call-routes';
import { registerWebhookRoutes, type WebhookRouteDeps } from './webhooks/routes';
import type { Logger } from './logger';
import { CallbackQueue, callbackQueueName, startCallbackWorker } from './calls/callback-queue';
import { CAPACITY_EVENT_FILTERS, CAPACITY_EVENTS, callbackBacklog, capacityKey } from './queues/switch-capacity';
import { DispatchPaceReader, DispatchPaceRecorder, readDispatchPace } from './queues/dispatch-pace';
import { EventLoopPressure } from './queues/event-loop-pressure';
import type { CallOutcome } from './stores/call-outcome';
import { CdrQueue, startCdrWriter } from './queues/cdr-queue';
import { BindingService } from './bindings/binding-service';
import { CallStore } from './stores/call-store';
import { CdrStore } from './stores/cdr-store';
import { refusalAttribution } from './stores/cdr-attribution';
import { cachedApiKeyAuth, cachedSigningKeys, cachedTenantLookup, TENANT_POLICY_CACHE_MS } from './stores/cached-tenants';
import { LiveCallStore } from './stores/live-calls';
import { NodeJobsStore } from './stores/node-jobs';
import { MediaCatalogue, MediaPlayback } from './stores/media-catalogue';
import { platformSecret } from './stores/platform-secrets';
import { numberHasher } from './domain/number-hash';
import { migrate } from './stores/migrate';
import { createMysqlPool, ensureDatabase, type Pool } from './stores/mysql';
import { createPipelinedRedis, createRedis, createRequestRedis, isCluster } from './stores/redis';
import { joinRouteCache, RouteReadCache, RouteWriteBarrier } from './stores/route-cache';
import { activeBindingsFor, activeBindingsForExtension, RouteLookup } from './stores/route-lookup';
import { RouteIndex, type RouteRead } from './stores/route-index';
import { TenantStore } from './stores/tenant-store';
import { AuditStore, BatchedAuditWriter } from './stores/audit-store';
import { startWebhookDispatch, webhookBulkQueuer, webhookQueuer } from './webhooks/dispatch';
import { startWebhookWorker, WebhookQueue } from './webhooks/webhook-queue';
import { CachedWebhookEndpoints, WebhookStore } from './webhooks/webhook-store';
import { registerMessageRoutes } from './messages/message-routes';
import { startMessaging, type Messaging } from './messages/messaging';
import { MESSAGE_EVENT_FILTERS, MESSAGE_EVENTS } from './messages/sip-carrier';

export interface App {
  readonly http: FastifyInstance;
  readonly bindings: BindingService;
  readonly routes: RouteIndex;
  /** Where FreeSWITCH's dialplan `socket` app must connect (calls to X). */
  readonly outboundAddress: { host: string; port: number };
  /** Every switch this controller drives. */
  readonly fleet: SwitchFleet;
  /** The event socket of the fleet's first switch (the only one without SWITCHES). */
  readonly esl: EslClient;
  readonly pool: Pool;
  readonly service: DefaultClickToDialService;
  readonly callbackWorker: Worker;
  /** Call and binding events: webhooks listen locally, agent consoles subscribe per tenant. */
  readonly events: PlatformEventBus;
  /** Abuse control: rate limits, blacklist on the call paths, fan-out flags. */
  readonly abuse: AbuseGuard;
  /** Text messages relayed through X: records, queue, carrier paths. */
  readonly messaging: Messaging;
  /** The separate /metrics listener (METRICS_HOST/METRICS_PORT), if configured. */
  readonly metricsAddress: { readonly host: string; readonly port: number } | null;
  /**
   * Graceful shutdown, first half: /readyz answers 503, no new outbound-socket calls nor jobs are
   * taken, and the live calls may finish here for up to timeoutMs; the ones still live then are
   * handed over (click-to-dial jobs back to the queue, calls to X to be settled from the switch by
   * another controller). Resolves once every call here is finished or handed over and its CDR
   * queued (and, with workers, written). Called again while running, a shorter timeout brings the
   * deadline forward (a second SIGTERM: 0, hand over now).
   */
  drain(timeoutMs: number): Promise<void>;
  /** Closes everything; live calls are handed over at once unless drain() ran. */
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
  // Request paths (routing, the API) wait on Redis a bounded time; BullMQ's queues and workers wait for a reconnect.
  const redisTarget = { url: config.redisUrl, clusterNodes: config.redisClusterNodes };
  const redis = createRequestRedis(redisTarget, config.redisRequests);
  const queueRedis = createRedis(redisTarget);
  // The click-to-dial flows' live-call state: hundreds of calls' commands per tick in one write.
  const flowRedis = createPipelinedRedis(redisTarget);

  const tenants = new TenantStore(pool);
  // An API key revoked stops authenticating requests, and signing queued jobs, within this.
  const apiKeyCacheMs = 5000;
  const apiKeys = cachedApiKeyAuth(tenants, apiKeyCacheMs);
  const audit = new AuditStore(pool);
  // What the API's requests append goes in multi-row INSERTs after the responses: at 30 calls/s one
  // INSERT (and commit) per 6 requests instead of one per request; an entry is stored within 0.2 s.
  const auditWrites = new BatchedAuditWriter(audit, { lingerMs: 200 });
  const calls = new CallStore(pool);
  const cdrs = new CdrStore(pool);
  const live = new LiveCallStore(redis, config.redisPrefix);
  const numberHash = numberHasher(config.numberHashKey ?? (await platformSecret(pool, 'number_hash_key')));
  // Calls to X read the index through a local cache that every index write invalidates (published on
  // the route-changes channel, heard on a connection of its own), coherent across controllers: every
  // index write here waits until each cache holding a lease has heard it (route-cache.ts). On a
  // cluster (pub/sub order across nodes is not kept) there is no cache.
  const coherent = !isCluster(redis);
  const routeCache = new RouteReadCache<RouteRead>(coherent ? config.routeCache : { ...config.routeCache, ttlMs: 0 });
  // The index invalidates its own cache once Redis has its writes: its own barrier neither waits for that cache nor hears from it.
  const routeCacheId = randomUUID();
  const routeWriteBarrier = coherent
    ? await RouteWriteBarrier.start({
        subscriber: createRequestRedis(redisTarget, config.redisRequests),
        redis,
        prefix: config.redisPrefix,
        ackTimeoutMs: config.routeCache.ackTimeoutMs,
        localCacheId: routeCache.enabled ? routeCacheId : undefined,
      })
    : undefined;
  const stopRouteCache = routeCache.enabled
    ? await joinRouteCache(routeCache, {
        subscriber: createRequestRedis(redisTarget, config.redisRequests),
        redis,
        prefix: config.redisPrefix,
        leaseMs: config.routeCache.leaseMs,
        id: routeCacheId,
        localWriterId: routeWriteBarrier?.id,
      })
    : async () => undefined;
  const routes = new RouteIndex(redis, config.redisPrefix, numberHash, routeCache, routeWriteBarrier);
  // Created once the queues exist (below); abuse control reports through it from then on.
  // eslint-disable-next-line prefer-const -- assigned once, below; the closures made before then read it
  let metrics: PlatformMetrics | undefined;
  // Set once the webhook queue exists (below): abuse.flagged goes to the tenant as a durable job.
  // eslint-disable-next-line prefer-const -- assigned once, below; the closure made before then reads it
  let announceFlag: ((event: PlatformEvent) => Promise<void>) | undefined;
  const abuse = new AbuseGuard({
    redis,
    prefix: config.redisPrefix,
    numberHash,
    pool,
    limits: config.abuse,
    logger,
    metrics: {
      refused: (limit) => metrics?.abuseRefusal(limit),
      flagged: (kind) => metrics?.abuseFlag(kind),
      acted: (action) => metrics?.abuseAction(action),
    },
    audit: (entry) => audit.append(entry),
    announce: async (event) => announceFlag?.(withId(event)),
  });
  // A quarantined X routes no call (nor text): the routing path holds the quarantined numbers in memory.
  await abuse.quarantined.refresh();
  const bindings = new BindingService(pool, routes, abuse, { routeWriteTimeoutMs: config.routeIndexWrites.timeoutMs, batch: config.bindBatch });
  // Routing reads the index in Redis; when Redis has lost it, it is rebuilt from MySQL at once (seen by a
  // lookup, a reconnect, the readiness probe or the periodic check), and misses are answered from MySQL meanwhile.
  const routeLookup = new RouteLookup({
    index: routes,
    listActive: () => bindings.listActive(),
    activeFor: activeBindingsFor(pool),
    activeForExtension: activeBindingsForExtension(pool),
    logger,
  });
  await routeLookup.ensureComplete();
  redis.on('ready', () => void routeLookup.ensureComplete().catch(() => undefined));
  // Periodic work, all ended by stop() (which waits for a run in progress).
  const scheduler = new Scheduler(logger);
  scheduler.add({ name: 'routing index check', everyMs: 10_000, run: () => routeLookup.ensureComplete() });
  // What calls and texts to X decide by: the index (MySQL while it is rebuilt), a quarantined X refused.
  const routing = refuseQuarantined(routeLookup, abuse.quarantined);
  // Routing changes left in the outbox (Redis was unreachable, or a controller died after its commit) reach the index here.
  scheduler.add({ name: 'route outbox', everyMs: 1_000, run: async () => {
    await bindings.drainPendingRoutes(800);
  } });
  scheduler.add({
    name: 'route index reconcile',
    everyMs: config.routeIndexWrites.reconcileIntervalSeconds * 1000,
    run: async (stopping) => {
      const drift = await routes.reconcile(() => bindings.listActivePages(), Date.now(), stopping);
      metrics?.routeDrift(drift.found, drift.repaired);
      if (drift.found > 0) logger.warn(drift, 'route index drifted from MySQL');
    },
  });
  scheduler.add({ name: 'quarantined numbers', everyMs: 5_000, run: () => abuse.quarantined.refresh() });
  scheduler.add({ name: 'abuse block expiry', everyMs: 5_000, run: async () => {
    await abuse.disposal.sweepExpiredBlocks();
  } });

  // Every switch of the fleet, each over its own event socket. Nothing here waits for a switch: the API,
  // health endpoints and metrics serve whether or not any is up; /readyz says which are.
  // eslint-disable-next-line prefer-const -- assigned once, below; the fleet reports to it from then on
  let backPressure: FleetBackPressure | undefined;
  const fleet = new SwitchFleet({
    configured: config.fleet.switches,
    esl: {
      password: config.esl.password,
      commandTimeoutMs: config.esl.commandTimeoutMs,
      reconnectMinMs: config.esl.reconnectMinMs,
      reconnectMaxMs: config.esl.reconnectMaxMs,
      events: [...SUBSCRIBED_EVENTS, ...CAPACITY_EVENTS, ...MESSAGE_EVENTS],
      filters: [...CALL_EVENT_FILTERS, ...CAPACITY_EVENT_FILTERS, ...MESSAGE_EVENT_FILTERS],
    },
    lostAfterMs: config.fleet.lostAfterSeconds * 1000,
    gatewayCallsPerSecond: config.callbacks.callsPerSecond,
    switchSharePercent: config.callbacks.switchSharePercent,
    maxWaitSeconds: config.callbacks.maxWaitSeconds,
    changed: () => void backPressure?.changed(),
    logger,
  });
  const esl = fleet.primary.client;
  const switchStore = new SwitchStore(pool);
  // The `switches` table (CLI): switches added there join, drained ones take no new calls, removed ones leave.
  await fleet.apply(await switchStore.list()).catch((err: unknown) => logger.error({ err }, 'switches table not read'));
  fleet.start();
  scheduler.add({ name: 'switch fleet', everyMs: config.fleet.refreshSeconds * 1000, run: async () => {
    await fleet.apply(await switchStore.list());
    await switchStore.report(config.nodeId, fleet.list().map((n) => ({ name: n.name, health: n.health() })));
  } });

  const events = new PlatformEventBus(redis, config.redisPrefix, (err, event) =>
    logger.warn({ err, type: event.type, callId: event.callId }, 'event listener failed'),
  );
  const cdrQueue = new CdrQueue({ connection: queueRedis, prefix: config.redisPrefix, groupWindowMs: config.callbacks.cdrGroupWindowMs });
  const queuedCdrs = new QueuedCdrs();
  const finished = async (call: CallOutcome): Promise<void> => {
    queuedCdrs.queued(await cdrQueue.enqueue(call));
    for (const e of completionEvents(call.cdr)) events.report(e);
  };
  // Graceful shutdown (drain): what runs here, and what was let go of at the drain deadline.
  const handedOver = new HandedOverCalls();
  const workers = options.workers ?? true;
  // A controller restarted under its NODE_ID takes back at once the click-to-dial jobs its last run left
  // running: the worker that run recorded is read before this run's worker records its own.
  const ownCallbackJobs = workers && config.resumeOwnJobs
    ? new NodeJobsStore(queueRedis, config.redisPrefix, config.nodeId, callbackQueueName(config.dial.gateway))
    : null;
  const lastRunWorker = ownCallbackJobs
    ? await ownCallbackJobs.takeLastWorker().catch((err: unknown) => {
        logger.warn({ err }, 'worker of the last run not read: its jobs wait for stall detection');
        return null;
      })
    : null;
  const callbackJobs = new JobsInFlight();
  const settlerJobs = new JobsInFlight();
  const callsToX = new Set<Promise<unknown>>();
  let handOverCallsToX = (): void => undefined;
  const callsToXHandover = new Promise<void>((resolve) => (handOverCallsToX = resolve));
  // Routing already stops at expiry (to the second); this moves ended bindings into history and reports them.
  const expireBindings = async (): Promise<void> => {
    for (const b of await bindings.expireDue()) {
      events.report({ type: 'binding.expired', tenantId: b.tenantId, bindingId: b.id, at: b.expiresAt });
    }
  };
  scheduler.add({ name: 'binding expiry sweep', everyMs: 5_000, run: expireBindings });
  const callbackQueue = new CallbackQueue(queueRedis, config.redisPrefix, config.dial.gateway);
  // Back-pressure: the queue's rate follows the switches' sessions-per-second; calls none can dial in time are refused.
  const capacity = new FleetBackPressure({
    fleet,
    applyRate: async (rate) => {
      await callbackQueue.queue.setGlobalRateLimit(rate, 1000);
    },
    publish: async (snapshot, ttlMs) => {
      await redis.set(capacityKey(config.redisPrefix, config.dial.gateway), JSON.stringify(snapshot), 'PX', ttlMs);
    },
    logger,
  });
  backPressure = capacity;
  await capacity.changed();
  // How fast and how late calls actually leave the queue, counted by every controller's worker.
  const paceRecorder = new DispatchPaceRecorder(redis, config.redisPrefix, config.dial.gateway);
  scheduler.add({ name: 'dispatch pace', everyMs: 250, run: () => paceRecorder.flush() });
  const dispatchPace = new DispatchPaceReader(() => readDispatchPace(redis, config.redisPrefix, config.dial.gateway));
  // This controller's own overload: how late its event loop runs.
  const loopPressure = new EventLoopPressure({ maxDelayMs: config.callbacks.maxLoopDelayMs });
  loopPressure.start();

  const flow: ClickToDialDeps = {
    // Each attempt is placed on a switch of the fleet (placement below); this is the default.
    switch: fleet.primary,
    // A call handed over at the drain deadline is another controller's: its flow here writes nothing more.
    live: new GuardedLiveCallStore(flowRedis, config.redisPrefix, handedOver),
    dialString: (n) => config.dial.overrides[n] ?? config.dial.template.replace('{number}', n),
    ringbackTone: config.callbacks.ringbackTone,
    bFailedPrompt: config.callbacks.bFailedPrompt,
    recordingPath: (callId) => `${config.callbacks.recordingsDir}/${callId}.wav`,
    endWarningTone: config.endWarning.tone,
    events,
    logger,
  };

  const defaults: ClickToDialDefaults = {
    ringTimeoutASeconds: config.callbacks.ringTimeoutASeconds,
    ringTimeoutBSeconds: config.callbacks.ringTimeoutBSeconds,
    maxDurationSeconds: config.callbacks.maxDurationSeconds,
    passthroughAllowed: config.callbacks.passthroughAllowed,
    endWarningSeconds: config.endWarning.seconds,
  };
  const media = new MediaCatalogue(pool);
  const mediaPlayback = new MediaPlayback(media, config.callsToX.soundsDir);
  const switches = new SwitchIdentity(() => fleet.list());
  const outbound = new EslOutboundServer({
    host: config.outboundSocket.host,
    port: config.outboundSocket.port,
    allowedPeers: peerMatcher(config.outboundSocket.allowedPeers),
    fromKnownSwitch: (channelData) => switches.isKnown(channelData.header('Core-UUID')),
    logger: logger.child({ component: 'outbound-socket' }),
    commandTimeoutMs: config.esl.commandTimeoutMs,
    events: CALL_TO_X_EVENTS,
  });
  const handoverQueue = new CallToXHandoverQueue({ connection: queueRedis, prefix: config.redisPrefix });
  // A call to X outlives this controller being killed: it is this instance's (in Redis) until its CDR is queued, and
  // every controller settles the calls of an instance that stopped beating within the time a click-to-dial lock lasts.
  const ownerAliveForMs = config.callbacks.lockSeconds * 1000;
  const callsToXOwners = new CallsToXOwners(redis, config.redisPrefix, `${config.nodeId}:${randomUUID()}`, ownerAliveForMs);
  await callsToXOwners.heartbeat().catch((err: unknown) => logger.error({ err }, 'calls to X heartbeat failed'));
  scheduler.add({ name: 'calls to X heartbeat', everyMs: ownerAliveForMs / 3, run: () => callsToXOwners.heartbeat() });
  scheduler.add({
    name: 'orphaned calls to X',
    everyMs: ownerAliveForMs / 3,
    runAtStart: true,
    run: async () => {
      await sweepOrphanedCallsToX(callsToXOwners, handoverQueue, logger);
    },
  });
  const callToX: CallToXDeps = {
    routes: routing,
    extensions: config.callsToX.extensions,
    dialString: flow.dialString,
    ringbackTone: config.callbacks.ringbackTone,
    notInServicePrompt: config.callsToX.notInServicePrompt,
    unavailablePrompt: config.callsToX.unavailablePrompt,
    routingTimeoutMs: config.redisRequests.commandTimeoutMs,
    announcementOf: (mediaId) => mediaPlayback.argumentFor(mediaId),
    bFailedPrompt: config.callbacks.bFailedPrompt,
    ringTimeoutSeconds: config.callbacks.ringTimeoutBSeconds,
    maxDurationSeconds: config.callbacks.maxDurationSeconds,
    endWarningSeconds: config.endWarning.seconds,
    endWarningTone: config.endWarning.tone,
    recordingPath: flow.recordingPath,
    finished,
    report: events.report,
    routed: (ms) => metrics?.routingDecision(ms),
    admitCaller: (tenantId, caller, target, now) => abuse.admitCallToX(tenantId, caller, target, now),
    handOver: handOverFromFleet(callToXHandOver({ queue: handoverQueue, ringTimeoutSeconds: config.callbacks.ringTimeoutBSeconds }), fleet),
    durable: durableCallsToX({ owners: callsToXOwners, switchOf: (session) => switchOfSession(fleet, session) ?? null, logger }),
    logger,
  };
  outbound.on('session', (session: OutboundSession) => {
    const ended = metrics?.callStarted(callToXId(session.uuid), 'call_to_x');
    const call: Promise<unknown> = handleCallToX(callToX, session, { handover: callsToXHandover })
      .catch((err: unknown) => logger.error({ err }, 'call to X failed'))
      .finally(() => {
        ended?.();
        callsToX.delete(call);
      });
    callsToX.add(call);
  });
  const outboundAddress = await outbound.listen();

  const webhookStore = new WebhookStore(pool);
  const webhookEndpoints = new CachedWebhookEndpoints(webhookStore, 5000);
  const webhookQueue = new WebhookQueue({ connection: queueRedis, prefix: config.redisPrefix });
  const queueWebhook = webhookQueuer({ store: webhookEndpoints, queue: webhookQueue });
  const queueWebhooks = webhookBulkQueuer({ store: webhookEndpoints, queue: webhookQueue });
  announceFlag = queueWebhook;
  // The completion webhooks, and the progress ones the CDR implies, are queued again from the durable CDR job: if an
  // instance dies between an event and its webhook being queued, whichever instance writes the CDR queues it (same event id, sent once).
  const cdrWriter = workers
    ? startCdrWriter({
        connection: queueRedis,
        prefix: config.redisPrefix,
        pool,
        logger,
        attribute: refusalAttribution(pool),
        afterWrite: async (outcomes) => {
          await queueWebhooks(outcomes.flatMap((o) => [...progressEvents(o.cdr), ...completionEvents(o.cdr)].map((e) => withId(e))));
          await abuse.watch.observeCalls(outcomes.map((o) => o.cdr));
        },
      })
    : null;
  const webhookWorker = workers
    ? startWebhookWorker({
        connection: queueRedis,
        prefix: config.redisPrefix,
        store: webhookStore,
        endpoints: webhookEndpoints,
        logger,
        timeoutMs: config.webhooks.timeoutMs,
        retryUnitMs: config.webhooks.retryUnitMs,
        onFailedAttempt: (status) => metrics?.webhookFailure(status),
        allowPrivateUrls: config.webhooks.allowPrivateUrls,
        tenantConcurrency: config.webhooks.tenantConcurrency,
        // A killed controller's deliveries are taken over as fast as its calls are.
        lockDurationMs: options.lockDurationMs ?? config.callbacks.lockSeconds * 1000,
        stalledIntervalMs: options.stalledIntervalMs ?? config.callbacks.lockSeconds * 500,
      })
    : null;
  const messaging = await startMessaging({
    config: config.messages,
    redis,
    queueRedis,
    prefix: config.redisPrefix,
    pool,
    routes: routing,
    hash: numberHash,
    esl: fleetMessaging(fleet),
    queueWebhook,
    logger,
    workers,
  });
  if (workers) {
    scheduler.add({
      name: 'message body retention',
      everyMs: 3_600_000,
      runAtStart: true,
      run: async () => {
        const cleared = await messaging.pruneBodies();
        if (cleared > 0) logger.info({ cleared }, 'message bodies past their retention cleared');
      },
    });
  }
  const pruneDeliveryLog = async (): Promise<void> => {
    const deleted = await webhookStore.pruneDeliveries(Date.now() - config.webhooks.logRetentionDays * 86_400_000);
    if (deleted > 0) logger.info({ deleted, retentionDays: config.webhooks.logRetentionDays }, 'webhook delivery log pruned');
  };
  // The instance that delivers webhooks also keeps their log to its retention.
  if (workers) scheduler.add({ name: 'webhook delivery log prune', everyMs: 3_600_000, run: pruneDeliveryLog, runAtStart: true });
  cdrWriter?.worker.on('completed', (job) => queuedCdrs.written(job.id ?? ''));
  // What the switches kept of legs whose settling controller died before deleting it.
  if (workers) {
    scheduler.add({
      name: 'stale switch figures',
      everyMs: STALE_FIGURES_SWEEP.everyMs,
      run: async () => {
        for (const sw of fleet.list().filter((n) => n.connected)) {
          const deleted = await sweepStaleFigures(sw, STALE_FIGURES_SWEEP);
          if (deleted > 0) logger.info({ switch: sw.name, deleted }, 'stale figures kept on the switch deleted');
        }
      },
    });
  }
  // Calls to X handed over by a controller that stopped are settled by whichever runs workers.
  const settler = workers
    ? startCallToXSettler({
        connection: queueRedis,
        prefix: config.redisPrefix,
        switch: fleet.primary,
        switchOf: (name) => (name === undefined ? fleet.primary : (fleet.get(name) ?? fleet.primary)),
        finished,
        logger,
        inFlight: settlerJobs,
      })
    : null;
  const stopWebhookDispatch = startWebhookDispatch({ events, store: webhookEndpoints, queue: webhookQueue, logger });
  // A tenant's call policy as the worker and the API read it on every call: the same 5 s cache for both.
  const tenantPolicy = cachedTenantLookup(tenants, TENANT_POLICY_CACHE_MS);
  const callbackWorker = startCallbackWorker({
    connection: queueRedis,
    prefix: config.redisPrefix,
    gateway: config.dial.gateway,
    concurrency: config.callbacks.concurrency,
    callsPerSecond: config.callbacks.callsPerSecond,
    flow,
    finished: async (call) => {
      if (handedOver.has(call.cdr.callId)) return; // its new owner writes the CDR
      await finished(call);
    },
    tenants: tenantPolicy,
    keys: cachedSigningKeys(tenants, apiKeyCacheMs),
    calls,
    defaults,
    numbers: bindings,
    admission: abuse,
    inFlight: callbackJobs,
    callbackBindingTtlSeconds: config.callbacks.callbackBindingTtlSeconds,
    routes,
    logger,
    // Short locks: a controller that dies has its calls taken over by another within about twice this.
    lockDurationMs: options.lockDurationMs ?? config.callbacks.lockSeconds * 1000,
    stalledIntervalMs: options.stalledIntervalMs ?? config.callbacks.lockSeconds * 500,
    // Started below, once its id is recorded: a job it takes is then one the next run can find.
    autorun: false,
    capacity: { holdMs: () => capacity.holdMs(), hold: (ms) => callbackQueue.queue.rateLimit(ms) },
    pace: paceRecorder,
    placement: fleetPlacement(fleet, () => capacity.holdMs()),
  });
  if (ownCallbackJobs) {
    await ownCallbackJobs
      .recordWorker(callbackWorker.id)
      .catch((err: unknown) => logger.warn({ err }, 'worker not recorded: after a restart its jobs wait for stall detection'));
  }
  if (workers) callbackWorker.run().catch((err: unknown) => callbackWorker.emit('error', err instanceof Error ? err : new Error(String(err))));

  const resumingOwnJobs = ownCallbackJobs
    ? resumeOwnJobs({
        queue: callbackQueue.queue,
        redis: queueRedis,
        lastRunWorker,
        lastRunStopped: () => lastRunStopped(ownCallbackJobs),
        ready: () => fleet.whenConnected(config.callbacks.lockSeconds * 1000),
        logger,
      })
        .catch((err: unknown) => logger.warn({ err }, 'jobs of the last run not resumed: they wait for stall detection'))
        .finally(() => {
          // Beats only once the last run's have been read: the next run tells from them whether this one stopped.
          const runId = randomUUID();
          scheduler.add({ name: 'controller heartbeat', everyMs: NODE_BEAT_MS, run: () => ownCallbackJobs.beat(runId, 3 * NODE_BEAT_MS), runAtStart: true });
        })
    : Promise.resolve();

  const service = new DefaultClickToDialService({
    tenants: tenantPolicy,
    calls,
    cdrs,
    live,
    queue: callbackQueue,
    switchApi: (cmd, switchName) => switchCommand(fleet, cmd, switchName),
    finished,
    defaults,
    numbers: bindings,
    admission: abuse,
    capacity: {
      admitNewCall: async () => {
        loopPressure.admit();
        await capacity.admit({ backlog: () => callbackBacklog(callbackQueue.queue), pace: () => dispatchPace.pace() });
      },
    },
    logger,
  });

  const queues = [
    { name: 'click-to-dial', queue: callbackQueue.queue },
    { name: 'cdr', queue: cdrQueue.queue },
    { name: 'webhooks', queue: webhookQueue.queue },
    { name: 'messages', queue: messaging.queue.queue },
  ] as const;
  const consoleHub = new ConsoleHub(events, createRedis(redisTarget));
  const agentTokens = new AgentTokenStore(pool);
  // Longer than any call can last: ringing A and B, then the talk-time cap, and a margin.
  const longestCallMs =
    (config.callbacks.ringTimeoutASeconds + config.callbacks.ringTimeoutBSeconds + config.callbacks.maxDurationSeconds) * 1000 + 600_000;
  metrics = new PlatformMetrics({
    events,
    queues,
    pool,
    eslConnected: () => fleet.anyConnected,
    switches: () =>
      fleet.list().map((n) => {
        const h = n.health();
        return { name: n.name, connected: h.connected, draining: h.state === 'draining', sessions: h.sessions, sessionsPerSecond: h.sessionsPerSecond, idleCpu: h.idleCpu, calls: h.calls, placedTotal: n.callsPlacedTotal };
      }),
    redisReady: () => redis.status === 'ready',
    loopDelay: () => loopPressure.reading(),
    dialPace: () => dispatchPace.pace(),
    staleCallMs: longestCallMs,
  });
  const auditFailed = (err: unknown): void => {
    logger.error({ err }, 'audit entry not written');
    metrics.auditFailure();
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
    audit: auditWrites,
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
    audit: auditWrites,
    onAuditError: auditFailed,
    authThrottle: new RedisAuthThrottle(redis, config.redisPrefix, config.authFailuresPerMinute),
    readiness: createReadinessProbe({
      esl: { get state() { return fleet.anyConnected ? 'ready' : 'disconnected'; } },
      switches: () => fleet.states(),
      redis,
      pool,
      routeIndex: routeLookup,
      draining: () => draining,
    }),
    routes: [(api) => registerOpsRoutes(api, { metrics, adminToken: config.adminToken, queues }), (api) => registerConsoleRoutes(api, consoleDeps)],
    // Abuse control first: the tenant's request rate is counted before any other route runs.
    v1Routes: [
      (v1) => registerAbuseRoutes(v1, abuse, new NumberTraceReader(pool)),
      (v1) => registerAuditRoutes(v1, audit),
      (v1) => registerCallRoutes(v1, { calls: service, cdrs }),
      (v1) => registerBindingRoutes(v1, { registry: bindings }),
      (v1) => registerMediaRoutes(v1, media),
      (v1) => registerWebhookRoutes(v1, webhookRoutes),
      (v1) => registerMessageRoutes(v1, { store: messaging.store }),
    ],
  });
  await http.listen({ host: config.http.host, port: config.http.port });
  const metricsListener = config.metricsListen ? await startMetricsListener(metrics, config.metricsListen, logger) : null;

  let draining = false;
  let drained: Promise<void> | undefined;
  let deadlineAt = Infinity;
  let deadlineTimer: NodeJS.Timeout | undefined;
  let deadlineReached = (): void => undefined;
  const deadline = new Promise<'deadline'>((resolve) => (deadlineReached = () => resolve('deadline')));
  const setDeadline = (timeoutMs: number): void => {
    const at = Date.now() + Math.max(0, timeoutMs);
    if (at >= deadlineAt) return;
    deadlineAt = at;
    clearTimeout(deadlineTimer);
    deadlineTimer = setTimeout(deadlineReached, Math.max(0, timeoutMs));
  };
  const allSettled = async (calls: Set<Promise<unknown>>): Promise<void> => {
    while (calls.size > 0) await Promise.allSettled([...calls]);
  };
  const liveCounts = () => ({ callsToX: callsToX.size, clickToDial: callbackJobs.size, settling: settlerJobs.size });
  const drain = (timeoutMs: number): Promise<void> => {
    setDeadline(timeoutMs);
    drained ??= (async () => {
      draining = true;
      logger.info({ timeoutMs, ...liveCounts() }, 'draining: no new calls taken; live calls may finish here');
      outbound.stopAccepting();
      callbackJobs.refuseNew();
      settlerJobs.refuseNew();
      await Promise.all([callbackWorker.pause(true), settler?.pause(true)]);
      const idle = Promise.all([allSettled(callsToX), callbackJobs.whenIdle(), settlerJobs.whenIdle()]).then(() => 'idle' as const);
      if ((await Promise.race([idle, deadline])) === 'deadline') {
        logger.warn(liveCounts(), 'drain deadline: handing the live calls over');
        handOverCallsToX();
        const jobs = await callbackJobs.handBack((job) => {
          const data = job.data as { tenantId?: unknown; requestId?: unknown } | undefined;
          if (typeof data?.tenantId === 'string' && typeof data.requestId === 'string') handedOver.add(callIdFor(data.tenantId, data.requestId));
        });
        const settling = await settlerJobs.handBack();
        if (jobs.length > 0 || settling.length > 0) {
          logger.warn({ clickToDial: jobs.length, settling: settling.length }, 'jobs given back to the queue for another controller');
        }
        // Handed over, a call to X ends here at once; one that could not be (its channel was just ending) finishes.
        await Promise.race([allSettled(callsToX), new Promise((r) => setTimeout(r, 15_000).unref())]);
      }
      clearTimeout(deadlineTimer);
      if (cdrWriter) {
        const left = await queuedCdrs.flush(cdrQueue.queue, 10_000);
        if (left > 0) logger.warn({ cdrs: left }, 'CDRs still queued at shutdown; another controller writes them');
      }
      logger.info('drained');
    })();
    return drained;
  };

  return {
    http,
    bindings,
    routes,
    outboundAddress,
    fleet,
    esl,
    pool,
    service,
    callbackWorker,
    events,
    abuse,
    messaging,
    metricsAddress: metricsListener?.address ?? null,
    drain,
    async stop() {
      // Nothing live is dropped: without a drain first, live calls are handed over now.
      await drain(0);
      await resumingOwnJobs;
      await scheduler.stop();
      await outbound.close();
      await http.close();
      await auditWrites.flush();
      await metricsListener?.close();
      // Forced: what still runs here was given back to the queue at the drain deadline.
      await callbackWorker.close(true);
      await settler?.close(true);
      await cdrWriter?.close();
      await messaging.stop();
      stopWebhookDispatch();
      metrics.stop();
      loopPressure.stop();
      await consoleHub.close();
      await webhookWorker?.close();
      await webhookQueue.close();
      await callbackQueue.close();
      await handoverQueue.close();
      await cdrQueue.close();
      await fleet.stop();
      await stopRouteCache();
      await routeWriteBarrier?.stop();
      await redis.quit();
      await queueRedis.quit();
      await flowRedis.quit();
      await pool.end();
    },
  };
}

/** A command for a call's switch; a call not placed yet may be on none, so every connected switch is asked (the first +OK wins). */
async function switchCommand(fleet: SwitchFleet, command: string, switchName: string | null): Promise<string> {
  const target = switchName === null ? undefined : fleet.get(switchName);
  if (target) return target.api(command);
  const replies = await Promise.allSettled(fleet.list().filter((n) => n.connected).map((n) => n.api(command)));
  const ok = replies.find((r): r is PromiseFulfilledResult<string> => r.status === 'fulfilled' && r.value.startsWith('+OK'));
  const any = replies.find((r): r is PromiseFulfilledResult<string> => r.status === 'fulfilled');
  if (ok ?? any) return (ok ?? any)?.value ?? '';
  throw new Error('no switch connected');
}

/** Text messages over a fleet: MESSAGE events from every switch; a text goes out through a connected one. */
function fleetMessaging(fleet: SwitchFleet): Parameters<typeof startMessaging>[0]['esl'] {
  return {
    sendEvent: (name, headers, body) => {
      const up = fleet.list().filter((n) => n.connected);
      const node = up.sort((x, y) => x.load() - y.load())[0] ?? fleet.primary;
      return node.client.sendEvent(name, headers, body);
    },
    on: (_event, listener) => fleet.on('event', listener),
    off: (_event, listener) => fleet.off('event', listener),
  };
}

/** The fleet switch that opened an outbound-socket session (by its Core-UUID). */
function switchOfSession(fleet: SwitchFleet, session: OutboundSession): SwitchNode | undefined {
  return fleet.byIdentity(session.channelData.header('Core-UUID'));
}

/** A call to X handed over records which switch carries it, so the controller that settles it asks that one. */
function handOverFromFleet(handOver: NonNullable<CallToXDeps['handOver']>, fleet: SwitchFleet): NonNullable<CallToXDeps['handOver']> {
  return (session, call, hungUp) => {
    const node = switchOfSession(fleet, session);
    return handOver(session, node ? { ...call, switchName: node.name } : call, hungUp);
  };
}
