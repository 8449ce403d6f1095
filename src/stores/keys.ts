/**
 * Every Redis key and BullMQ queue name the platform uses, in one place. Everything lives under
 * REDIS_PREFIX (several deployments or test runs can share a Redis); BullMQ's own key prefix is the
 * same, so its keys are `<prefix>:<queue name>:…`. Real numbers never appear in a key: callers and
 * counted numbers come in already hashed (domain/number-hash.ts).
 *
 * Redis Cluster: a script, MULTI or MGET may only touch keys of one hash slot, and a key's slot is
 * that of its hash tag (the part between the first `{` and the next `}`) when it has one. So every
 * key that is ever read or written together with another carries the tag of what they share:
 * a route its X, a live call and its leg claims the call id, a number's counter and its flag
 * marker the number, counters taken together in one admission their tenant, a console's call
 * owners and recent list the agent, and a queue's BullMQ keys the queue name. A single Redis
 * treats the braces as ordinary characters. test/stores/key-slots.test.ts holds every group to one slot.
 */
export type AnomalyWindow = 'caller-calls' | 'caller-calls-flag' | 'x-calls' | 'x-calls-flag' | 'connected' | 'short' | 'short-flag';

/** `{value}`: the hash tag that puts every key containing it (first) in the same cluster slot. */
const tag = (value: string): string => `{${value}}`;

const keysByPrefix = new Map<string, RedisKeys>();

/** The keys under one prefix (built once per prefix: every request names several keys). */
export function redisKeys(prefix: string): RedisKeys {
  let keys = keysByPrefix.get(prefix);
  if (keys === undefined) keysByPrefix.set(prefix, (keys = keysUnder(prefix)));
  return keys;
}

export type RedisKeys = ReturnType<typeof keysUnder>;

function keysUnder(prefix: string) {
  return {
    /** Where a call to X goes, by (X, hash of the caller, or `*` for an XB binding); X's routes share a slot (one MGET per lookup). */
    route: (x: string, callerHash: string) => `${prefix}:route:${tag(x)}:${callerHash}`,
    /** Where a call to X goes once the caller has keyed an AXE binding's extension (X's slot, like its other routes). */
    routeByExtension: (x: string, extension: string) => `${prefix}:route:${tag(x)}:#${extension}`,
    /** That X takes AXE extensions: their length and X's tenant (kept until the last of its AXE bindings expires); X's slot, read with its routes. */
    extensionNumber: (x: string) => `${prefix}:axe:${tag(x)}`,
    /** What SCAN matches to find every route (the ready marker among them is skipped by name). */
    routePattern: `${prefix}:route:*`,
    /**
     * Set once the route index is complete (built from MySQL, and not lost since). Named apart from
     * the routes of before the hash tags (`<prefix>:route:ready`), so an upgraded deployment finds it
     * absent and rebuilds the routes under their tagged names.
     */
    routeIndexReady: `${prefix}:route-index:ready`,
    /** A click-to-dial call in progress (hash); its leg claims share its slot (one script starts an attempt). */
    liveCall: (callId: string) => `${prefix}:call:${tag(callId)}`,
    /** A leg of a call, claimed before it is dialled (never ring twice). */
    legClaim: (callId: string, step: string) => `${prefix}:claim:${tag(callId)}:${step}`,
    /**
     * Abuse control: a number's calls, bindings or fan-out (and its flag marker), by its tenant-scoped
     * hash. Tagged by tenant: one admission takes A's and B's counters (or every member's) at once.
     */
    abuseCounter: (counter: 'calls' | 'bindings' | 'fanout' | 'fanout-flag', tenantId: string, numberHash: string) =>
      `${prefix}:abuse:${counter}:${tag(tenantId)}:${numberHash}`,
    /** Anomaly watch: a caller's or an X's recent calls, a caller's connected and short calls, and each one's flag marker (tagged by the number). */
    anomalyWindow: (window: AnomalyWindow, numberHash: string) => `${prefix}:abuse:${window}:${tag(numberHash)}`,
    /** Anomaly watch: a tenant's bindings this minute and their usual rate, and the flag marker. */
    bindingRate: (tenantId: string) => `${prefix}:abuse:binding-rate:${tag(tenantId)}`,
    bindingRateFlag: (tenantId: string) => `${prefix}:abuse:binding-rate-flag:${tag(tenantId)}`,
    /** Abuse limits: a tenant's /v1 requests in one second. */
    tenantRequests: (tenantId: string, second: number) => `${prefix}:abuse:tenant:${tenantId}:${second}`,
    /** Call and binding events of a tenant (pub/sub channel). */
    tenantEvents: (tenantId: string) => `${prefix}:events:${tenantId}`,
    /** Agent console: that an agent placed a call, and the agent's recent calls (written together: tagged by agent). */
    consoleCallOwner: (agentId: string, callId: string) => `${prefix}:console:call:${tag(agentId)}:${callId}`,
    consoleRecentCalls: (agentId: string) => `${prefix}:console:agent:${tag(agentId)}:recent`,
    /** Controllers that carry calls to X (set of instance ids), so every controller can look for one that died. */
    callsToXOwners: `${prefix}:calls-to-x:owners`,
    /** A controller instance is alive while this key is (refreshed well within its TTL). */
    callsToXOwnerAlive: (instanceId: string) => `${prefix}:calls-to-x:alive:${tag(instanceId)}`,
    /** The calls to X an instance carries and has not yet queued a CDR for (hash: call id -> what it knew of the call). */
    callsToXOwnerCalls: (instanceId: string) => `${prefix}:calls-to-x:calls:${tag(instanceId)}`,
    /** Failed authentications of one client address (or IPv6 /64). */
    authFailures: (client: string) => `${prefix}:authfail:${client}`,
    /** Webhook deliveries of a tenant in flight (leases). */
    webhookTenantSlots: (tenantId: string) => `${prefix}:webhooks:tenant-slots:${tenantId}`,
    /** The BullMQ worker one controller (NODE_ID) runs on a queue (its id, the prefix of its lock tokens). */
    nodeJobs: (nodeId: string, queueName: string) => `${prefix}:node-jobs:${nodeId}:${queueName}`,
    /** A controller's heartbeat under its NODE_ID (its run's id and the time, refreshed while it runs). */
    nodeAlive: (nodeId: string) => `${prefix}:node-alive:${nodeId}`,
    /** The switch's capacity as last seen for a gateway's queue (back-pressure). */
    switchCapacity: (gateway: string) => `${prefix}:capacity:${gateway}`,
    /** Click-to-dial calls a gateway's queue started in one second, by every controller, and their summed wait (hash). */
    dispatchPace: (gateway: string, second: number) => `${prefix}:dispatch-pace:${gateway}:${second}`,
    /** Text messages: the parts of a concatenated message received so far (hash: sequence -> text), by carrier, sender hash, X and reference. */
    messageParts: (transport: string, senderHash: string, x: string, reference: number) => `${prefix}:sms:parts:${transport}:${senderHash}:${x}:${reference}`,
    /** Text messages: a sender's (tenant-scoped hash) or an X's messages in the last minute; taken together, so tagged by tenant. */
    messageRate: (counter: 'sender' | 'x', tenantId: string, id: string) => `${prefix}:sms:rate:${counter}:${tag(tenantId)}:${id}`,
  };
}

/** Pub/sub channel: each message is the key of a route the index just changed or removed (caches of routes drop it). */
export function routeChangesChannel(prefix: string): string {
  return `${prefix}:route-changes`;
}

/** The route caches holding a lease (member id -> lease end): every route write waits for them (route-cache.ts). */
export function routeCacheMembersKey(prefix: string): string {
  return `${prefix}:route-cache:members`;
}

/** Where route caches acknowledge a writer's sync message. */
export function routeCacheAckChannel(prefix: string, writerId: string): string {
  return `${routeChangesChannel(prefix)}:ack:${writerId}`;
}

/**
 * BullMQ queue names (under BullMQ's prefix, which is REDIS_PREFIX). Each name is its own hash
 * tag: BullMQ's scripts touch many keys of one queue, which must share a slot, while different
 * queues may live on different cluster nodes.
 */
export const queueNames = {
  /** Click-to-dial, one queue per carrier gateway: its limiter is the gateway's calls per second. */
  clickToDial: (gateway: string) => tag(`click-to-dial.${gateway}`),
  /** The gateway of a click-to-dial queue, from its name (null for another queue). */
  gatewayOfClickToDial: (queueName: string): string | null => /^\{click-to-dial\.(.+)\}$/.exec(queueName)?.[1] ?? null,
  cdr: (prefix: string) => tag(`${prefix}-cdr`),
  webhooks: tag('webhooks'),
  callToXHandover: (prefix: string) => tag(`${prefix}-call-to-x-handover`),
  /** Text messages to relay through X. */
  messages: (prefix: string) => tag(`${prefix}-messages`),
} as const;
