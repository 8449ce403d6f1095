/**
 * Every Redis key and BullMQ queue name the platform uses, in one place. Everything lives under
 * REDIS_PREFIX (several deployments or test runs can share a Redis); BullMQ's own key prefix is the
 * same, so its keys are `<prefix>:<queue name>:…`. Real numbers never appear in a key: callers and
 * counted numbers come in already hashed (domain/number-hash.ts).
 */
export type AnomalyWindow = 'caller-calls' | 'caller-calls-flag' | 'x-calls' | 'x-calls-flag' | 'connected' | 'short' | 'short-flag';

export function redisKeys(prefix: string) {
  return {
    /** Where a call to X goes, by (X, hash of the caller, or `*` for an XB binding). */
    route: (x: string, callerHash: string) => `${prefix}:route:${x}:${callerHash}`,
    /** Where a call to X goes once the caller has keyed an AXE binding's extension. */
    routeByExtension: (x: string, extension: string) => `${prefix}:route:${x}:#${extension}`,
    /** That X takes AXE extensions: their length and X's tenant (kept until the last of its AXE bindings expires). */
    extensionNumber: (x: string) => `${prefix}:axe:${x}`,
    /** Set once the route index is complete (built from MySQL, and not lost since). */
    routeIndexReady: `${prefix}:route:ready`,
    /** A click-to-dial call in progress (hash). */
    liveCall: (callId: string) => `${prefix}:call:${callId}`,
    /** A leg of a call, claimed before it is dialled (never ring twice). */
    legClaim: (callId: string, step: string) => `${prefix}:claim:${callId}:${step}`,
    /** Abuse control: a number's calls, bindings or fan-out (and its flag marker), by its tenant-scoped hash. */
    abuseCounter: (counter: 'calls' | 'bindings' | 'fanout' | 'fanout-flag', numberHash: string) => `${prefix}:abuse:${counter}:${numberHash}`,
    /** Anomaly watch: a caller's or an X's recent calls, a caller's connected and short calls, and each one's flag marker. */
    anomalyWindow: (window: AnomalyWindow, numberHash: string) => `${prefix}:abuse:${window}:${numberHash}`,
    /** Anomaly watch: a tenant's bindings this minute and their usual rate, and the flag marker. */
    bindingRate: (tenantId: string) => `${prefix}:abuse:binding-rate:${tenantId}`,
    bindingRateFlag: (tenantId: string) => `${prefix}:abuse:binding-rate-flag:${tenantId}`,
    /** Abuse limits: a tenant's /v1 requests in one second. */
    tenantRequests: (tenantId: string, second: number) => `${prefix}:abuse:tenant:${tenantId}:${second}`,
    /** Call and binding events of a tenant (pub/sub channel). */
    tenantEvents: (tenantId: string) => `${prefix}:events:${tenantId}`,
    /** Agent console: which agent placed a call, and an agent's recent calls. */
    consoleCallOwner: (callId: string) => `${prefix}:console:call:${callId}`,
    consoleRecentCalls: (agentId: string) => `${prefix}:console:agent:${agentId}:recent`,
    /** Failed authentications of one client address (or IPv6 /64). */
    authFailures: (client: string) => `${prefix}:authfail:${client}`,
    /** Webhook deliveries of a tenant in flight (leases). */
    webhookTenantSlots: (tenantId: string) => `${prefix}:webhooks:tenant-slots:${tenantId}`,
    /** The switch's capacity as last seen for a gateway's queue (back-pressure). */
    switchCapacity: (gateway: string) => `${prefix}:capacity:${gateway}`,
    /** Text messages: the parts of a concatenated message received so far (hash: sequence -> text), by carrier, sender hash, X and reference. */
    messageParts: (transport: string, senderHash: string, x: string, reference: number) => `${prefix}:sms:parts:${transport}:${senderHash}:${x}:${reference}`,
    /** Text messages: a sender's (tenant-scoped hash) or an X's messages in the last minute. */
    messageRate: (counter: 'sender' | 'x', id: string) => `${prefix}:sms:rate:${counter}:${id}`,
  };
}

/** Pub/sub channel: each message is the key of a route the index just changed or removed (caches of routes drop it). */
export function routeChangesChannel(prefix: string): string {
  return `${prefix}:route-changes`;
}

/** BullMQ queue names (under BullMQ's prefix, which is REDIS_PREFIX). */
export const queueNames = {
  /** Click-to-dial, one queue per carrier gateway: its limiter is the gateway's calls per second. */
  clickToDial: (gateway: string) => `click-to-dial.${gateway}`,
  cdr: (prefix: string) => `${prefix}-cdr`,
  webhooks: 'webhooks',
  callToXHandover: (prefix: string) => `${prefix}-call-to-x-handover`,
  /** Text messages to relay through X. */
  messages: (prefix: string) => `${prefix}-messages`,
} as const;
