import { isIP } from 'node:net';
import path from 'node:path';
import { isInertSwitchArgument, isSafeAbsoluteDir } from './domain/media';
import { MESSAGE_TRANSPORTS, type MessageTransport } from './domain/message';

/**
 * All configuration comes from the environment, is read once at start, validated, and frozen.
 * A bad or missing variable stops the process with a message naming it.
 */
export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`config: ${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** One switch of the fleet: its name (in logs, metrics, the call's state) and its event socket. */
export interface SwitchAddress {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export interface AppConfig {
  readonly nodeId: string;
  /**
   * NODE_ID was given: a restart of this controller under the same id takes back at once the
   * click-to-dial jobs its previous run left running (instead of waiting for their locks to expire).
   * Two controllers running at the same time must never share a NODE_ID.
   */
  readonly resumeOwnJobs: boolean;
  readonly logLevel: string;
  readonly http: { readonly host: string; readonly port: number };
  /**
   * Keys the hash under which real numbers appear in Redis key names and abuse flags. null: the
   * platform makes one on its first start and keeps it in MySQL.
   */
  readonly numberHashKey: string | null;
  /** Guards /metrics and the queue dashboard; null: no dashboard, and /metrics only on metricsListen. */
  readonly adminToken: string | null;
  /** METRICS_HOST/METRICS_PORT: a second listener serving only GET /metrics, without credentials; null: none. */
  readonly metricsListen: { readonly host: string; readonly port: number } | null;
  /** AUTH_FAILURES_PER_MINUTE: failed authentications per client address per minute before 429 (0: unlimited). */
  readonly authFailuresPerMinute: number;
  /**
   * DRAIN_TIMEOUT_SECONDS: on SIGTERM, how long live calls may go on finishing here; the ones still
   * live then are handed over to be settled from the switch by another controller (0: at once).
   */
  readonly drainTimeoutSeconds: number;
  readonly mysqlUrl: string;
  readonly redisUrl: string;
  /**
   * REDIS_CLUSTER_NODES: `host:port,…`, seed nodes of a Redis Cluster. Empty (the default): the one
   * Redis of REDIS_URL. When set, REDIS_URL gives only the credentials and TLS (rediss:).
   */
  readonly redisClusterNodes: readonly { readonly host: string; readonly port: number }[];
  /** Prefix for every Redis key and BullMQ queue, so several deployments (or test runs) can share a Redis. */
  readonly redisPrefix: string;
  /**
   * How long routing and the API wait on Redis (BullMQ keeps its own connections, which wait for a
   * reconnect). REDIS_COMMAND_TIMEOUT_MS bounds one command, and a call to X's whole routing
   * decision; REDIS_MAX_RETRIES_PER_REQUEST is how often a command cut off by a lost connection is
   * sent again within that bound.
   */
  readonly redisRequests: {
    readonly commandTimeoutMs: number;
    readonly maxRetriesPerRequest: number;
  };
  readonly esl: {
    /** The default switch (ESL_HOST/ESL_PORT): the fleet when SWITCHES is not set. */
    readonly host: string;
    readonly port: number;
    readonly password: string;
    readonly commandTimeoutMs: number;
    readonly reconnectMinMs: number;
    readonly reconnectMaxMs: number;
  };
  /**
   * The switch fleet: every switch the controller drives, each over its own event socket. SWITCHES
   * (`name@host:port,...`) or, without it, the one switch at ESL_HOST/ESL_PORT named `default`; the
   * `switches` table (CLI `switch add|drain|resume|remove`) adds to it and may drain any of them.
   */
  readonly fleet: {
    readonly switches: ReadonlyArray<SwitchAddress>;
    /** SWITCH_LOST_SECONDS: a switch unreachable this long has lost its calls: they are settled failed. */
    readonly lostAfterSeconds: number;
    /** How often the `switches` table is read again (SWITCHES_REFRESH_SECONDS). */
    readonly refreshSeconds: number;
  };
  readonly outboundSocket: {
    readonly host: string;
    readonly port: number;
    /** Addresses (IPs or CIDRs) of the switches that may connect; every other peer is dropped unread. */
    readonly allowedPeers: readonly string[];
  };
  readonly dial: {
    /** FreeSWITCH dial string for a real number; `{number}` is replaced. */
    readonly template: string;
    /** Lab/testing routes: exact number -> dial string, taking precedence over the template. */
    readonly overrides: Readonly<Record<string, string>>;
    /** Gateway name: the unit the calls-per-second limit applies to. */
    readonly gateway: string;
  };
  readonly callbacks: {
    /** The gateway's (carrier's) calls per second; the switch's sessions-per-second may lower the queue's rate (switchSharePercent). */
    readonly callsPerSecond: number;
    /** % of the switch's sessions-per-second click-to-dial may use (two per call); 0: ignore the switch's limit. */
    readonly switchSharePercent: number;
    /** A new call that would wait longer than this for its turn is refused (429/503 + Retry-After); 0: no bound. */
    readonly maxWaitSeconds: number;
    /** CONTROLLER_MAX_LOOP_DELAY_MS: new calls are refused (503 controller_overloaded) while this controller's event loop runs later than this (mean over the last second); 0: never. */
    readonly maxLoopDelayMs: number;
    readonly concurrency: number;
    /**
     * CALLBACK_LOCK_SECONDS: a controller's hold on a running click-to-dial job (BullMQ lock, renewed
     * at half of it); stalled jobs are looked for at half of it too, so another controller takes over
     * the calls of one that died within about twice this. It is also how long a controller counts as
     * alive after its last heartbeat for the calls to X it carries (beating every third of it): the
     * calls to X of one that stopped beating are settled by another within about 1.3 times this.
     */
    readonly lockSeconds: number;
    /**
     * CDR_GROUP_WINDOW_MS: the outcomes of calls that end within this many ms of each other go into one CDR job
     * (at most 50), so the queue's per-job work is shared; 0: one job per call. A call's end waits at most this long more.
     */
    readonly cdrGroupWindowMs: number;
    readonly ringTimeoutASeconds: number;
    readonly ringTimeoutBSeconds: number;
    readonly maxDurationSeconds: number;
    readonly passthroughAllowed: boolean;
    readonly callbackBindingTtlSeconds: number;
    readonly ringbackTone: string;
    readonly bFailedPrompt: string;
    /** Where the switch writes call recordings (a path on the FreeSWITCH host). */
    readonly recordingsDir: string;
  };
  /**
   * The warning before a call's maximum duration ends it: both parties hear `tone` this many seconds
   * before (0: none). Bindings and click-to-dial requests may set their own seconds; the tone is the operator's only.
   */
  readonly endWarning: {
    readonly seconds: number;
    readonly tone: string;
  };
  /** Calls to a privacy number X (SPEC §5). */
  readonly callsToX: {
    /** What a caller without a binding (or past expiry, or restricted) hears before the hangup. */
    readonly notInServicePrompt: string;
    /** What a caller hears when the route could not be looked up in time (Redis did not answer) before the hangup. */
    readonly unavailablePrompt: string;
    /** The switch's sounds directory: media catalogue files are played from under it. */
    readonly soundsDir: string;
    /**
     * AXE: EXTENSION_PROMPT (what a caller hears before keying the extension: a tone_stream or a file of
     * the operator's), EXTENSION_TIMEOUT_MS (to start keying), EXTENSION_DIGIT_TIMEOUT_MS (between digits).
     */
    readonly extensions: { readonly prompt: string; readonly timeoutMs: number; readonly digitTimeoutMs: number };
  };
  /** How binding changes reach the Redis route index (src/bindings/route-outbox.ts). */
  readonly routeIndexWrites: {
    /** How long a bind, update or unbind waits for Redis before answering 503 route_index_unavailable. */
    readonly timeoutMs: number;
    /** How often the route index is compared with MySQL and its drift repaired. */
    readonly reconcileIntervalSeconds: number;
  };
  /**
   * The routing path's local cache of route-index reads (src/stores/route-cache.ts), invalidated by
   * every index write, and coherent across controllers: a write answers only once every cache
   * holding a lease has acknowledged it, or has been evicted and its lease has ended.
   * ROUTE_CACHE_MS: how long a read is served at most (0: no cache; default 10 s).
   * ROUTE_CACHE_MAX_ENTRIES. ROUTE_CACHE_LEASE_MS: a cache's lease (default 1 s), the longest a
   * write waits for a silent cache after ROUTE_CACHE_ACK_TIMEOUT_MS (default 200 ms) without its
   * acknowledgement; keep their sum below ROUTE_WRITE_TIMEOUT_MS, or such a write answers 503
   * route_index_unavailable (its retry finds the silent cache evicted).
   */
  readonly routeCache: { readonly ttlMs: number; readonly maxEntries: number; readonly leaseMs: number; readonly ackTimeoutMs: number };
  /** Group commit of binds (src/bindings/bind-batcher.ts): most binds in one transaction (1: each its own), batches written at once. */
  readonly bindBatch: { readonly maxBatch: number; readonly maxInFlight: number };
  /** Abuse control (SPEC §7): limits counted per tenant; 0 turns a limit off. */
  readonly abuse: {
    /** Click-to-dial calls involving a number (as A or B) and calls to X by a caller, per minute. */
    readonly callsPerCallerPerMinute: number;
    /** Bindings created with a number as A or B, per hour. */
    readonly bindingsPerNumberPerHour: number;
    /** Requests to /v1 per tenant per second. */
    readonly tenantRequestsPerSecond: number;
    /** A number reaching more distinct parties than this within the window raises a flag. */
    readonly fanoutDistinctParties: number;
    readonly fanoutWindowSeconds: number;
    /** The same A–B pair bound more often than this within an hour is refused. */
    readonly pairBindingsPerHour: number;
    /** Anomaly watch: more calls than this from one caller, or to one X, within burstWindowSeconds raises a flag. */
    readonly callerBurstCalls: number;
    readonly xBurstCalls: number;
    readonly burstWindowSeconds: number;
    /** Robocall pattern: of a caller's connected calls in the window (at least shortCallMinCalls), this share or more talked under shortCallSeconds. */
    readonly shortCallSeconds: number;
    readonly shortCallSharePercent: number;
    readonly shortCallMinCalls: number;
    readonly shortCallWindowSeconds: number;
    /** Bulk binding: a tenant's bindings in one minute above this many times its usual rate (and at least the minimum) raise a flag. */
    readonly bulkBindingFactor: number;
    readonly bulkBindingMinPerMinute: number;
    /** How long the usual rate remembers (the EWMA of bindings per minute spans about this many minutes). */
    readonly bulkBindingBaselineMinutes: number;
    /** How long the disposal policy `block` keeps a number on the blacklist. */
    readonly blockSeconds: number;
  };
  /** Webhook delivery (SPEC §6). */
  readonly webhooks: {
    /** How long one POST may take before it counts as a failed attempt. */
    readonly timeoutMs: number;
    /** The length of one "minute" of the retry schedule (1, 4, 9, 106, 203, 300); tests shorten it. */
    readonly retryUnitMs: number;
    /** Let webhook URLs point at private, loopback or link-local addresses (tests, closed networks). */
    readonly allowPrivateUrls: boolean;
    /** Delivery attempts older than this many days leave the delivery log (pruned hourly). */
    readonly logRetentionDays: number;
    /** Deliveries of one tenant in flight at once (of the worker's 20), across controllers. */
    readonly tenantConcurrency: number;
  };
  /** Text messages relayed through X (README "Text messages"). */
  readonly messages: {
    /** MESSAGE_TRANSPORT: the carrier path of a tenant that chose none. */
    readonly transport: MessageTransport;
    /** SIP MESSAGE through the switch: the sofia profile, the carrier's URI for a number ({number}), the host in From. */
    readonly sip: { readonly profile: string; readonly uriTemplate: string; readonly fromHost: string };
    /** SMPP 3.4 to an SMS centre; null: no SMPP link. */
    readonly smpp: {
      readonly host: string;
      readonly port: number;
      readonly systemId: string;
      readonly password: string;
      readonly systemType: string;
      readonly enquireLinkSeconds: number;
      readonly reconnectMinMs: number;
      readonly reconnectMaxMs: number;
      /** How long a submit_sm may wait for its response. */
      readonly responseTimeoutMs: number;
    } | null;
    /** Messages a sender may send through X, and an X may carry, per minute (0: no limit). */
    readonly perSenderPerMinute: number;
    readonly perXPerMinute: number;
    /** Tries to hand a message to the carrier before it is reported failed, and the first wait (doubling). */
    readonly sendAttempts: number;
    readonly retryDelayMs: number;
    /** The same text from the same sender to the same X within this window is one message (a carrier's redelivery). */
    readonly dedupWindowSeconds: number;
    /** Parts of a concatenated message wait this long for the rest. */
    readonly partsWaitSeconds: number;
    /**
     * SIP texts the switch acknowledged but the queue did not take within `enqueueTimeoutMs` are kept
     * in MESSAGE_SPOOL_DIR and offered again every `retryMs` (README "Text messages").
     */
    readonly spool: { readonly dir: string; readonly enqueueTimeoutMs: number; readonly retryMs: number };
  };
  /** Agent-console sign-in sessions and their cookie (README "Agent console"). */
  readonly agentConsole: {
    /** A session ends this long after sign-in, used or not. */
    readonly sessionHours: number;
    /** A session without a request for this long ends (at most sessionHours). */
    readonly idleMinutes: number;
    /** Believe `X-Forwarded-Proto: https` from the reverse proxy in front (the cookie is then Secure). */
    readonly trustProxy: boolean;
    /** Mark the session cookie Secure on every response, however the request came. */
    readonly cookieSecure: boolean;
  };
}

type Env = Readonly<Record<string, string | undefined>>;

function read(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function str(env: Env, name: string, fallback?: string): string {
  const v = read(env, name) ?? fallback;
  if (v === undefined) throw new ConfigError(name, 'is required');
  return v;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function adminToken(env: Env): string | null {
  const v = read(env, 'ADMIN_TOKEN');
  if (v === undefined) return null;
  if (v.length < 16) throw new ConfigError('ADMIN_TOKEN', 'must be at least 16 characters');
  return v;
}

function metricsListen(env: Env): { host: string; port: number } | null {
  const host = read(env, 'METRICS_HOST');
  if (read(env, 'METRICS_PORT') === undefined) {
    if (host !== undefined) throw new ConfigError('METRICS_PORT', 'is required when METRICS_HOST is set');
    return null;
  }
  const port = int(env, 'METRICS_PORT', 0, 0, 65535);
  if (port !== 0 && port === int(env, 'HTTP_PORT', 8080, 0, 65535)) throw new ConfigError('METRICS_PORT', 'must differ from HTTP_PORT');
  if (host !== undefined && !/^[A-Za-z0-9.:%-]+$/.test(host)) throw new ConfigError('METRICS_HOST', 'must be a host name or IP address');
  return { host: host ?? '127.0.0.1', port };
}

function secretOrNull(env: Env, name: string, minLength: number): string | null {
  const v = read(env, name);
  if (v === undefined) return null;
  if (v.length < minLength) throw new ConfigError(name, `must be at least ${minLength} characters`);
  return v;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function url(env: Env, name: string, fallback: string, protocols: string[]): string {
  const v = str(env, name, fallback);
  let parsed: URL;
  try {
    parsed = new URL(v);
  } catch {
    throw new ConfigError(name, 'must be a URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}`);
  }
  return v;
}

/** `host:port,…` (IPv6 in brackets: `[::1]:7000`). */
function clusterNodes(env: Env, name: string): { host: string; port: number }[] {
  const raw = read(env, name);
  if (raw === undefined) return [];
  return raw
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(entry);
      const port = Number(m?.[3]);
      const host = m?.[1] ?? m?.[2];
      if (!m || host === undefined || port < 1 || port > 65535) throw new ConfigError(name, `"${entry}" is not host:port`);
      return { host, port };
    });
}

/** Braces would become a Redis Cluster hash tag of their own and break the slot layout of keys.ts. */
function redisPrefix(env: Env, name: string): string {
  const v = str(env, name, 'ng');
  if (/[{}\s]/.test(v)) throw new ConfigError(name, 'must not contain {, } or spaces');
  return v;
}

/**
 * IPs and CIDRs, comma-separated. Default: loopback, and each fleet switch's ESL address that is an IP
 * (the switch connects to the outbound socket from the address it serves ESL on, as a rule).
 */
function peerList(env: Env, name: string, switchHosts: readonly string[]): string[] {
  const raw = read(env, name);
  const list = raw === undefined ? ['127.0.0.0/8', '::1', ...new Set(switchHosts.filter((h) => isIP(h) !== 0))] : raw.split(',').map((p) => p.trim()).filter(Boolean);
  for (const entry of list) {
    const [address, bits, extra] = entry.split('/');
    const family = isIP(address ?? '');
    const max = family === 4 ? 32 : 128;
    const okBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max);
    if (family === 0 || !okBits || extra !== undefined) throw new ConfigError(name, `"${entry}" is not an IP address or CIDR`);
  }
  if (list.length === 0) throw new ConfigError(name, 'must name at least one address');
  return list;
}

const SWITCH_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

/** A switch name: letters, digits, `_ . -`, at most 32. */
export function isSwitchName(name: string): boolean {
  return SWITCH_NAME.test(name);
}

/** SWITCHES=`name@host:port,...` (port 8021 when left out); unset: the one switch of ESL_HOST/ESL_PORT, named `default`. */
function switchList(env: Env, name: string, fallback: SwitchAddress): SwitchAddress[] {
  const raw = read(env, name);
  if (raw === undefined) return [fallback];
  const list: SwitchAddress[] = [];
  for (const entry of raw.split(',').map((e) => e.trim()).filter(Boolean)) {
    const m = /^([^@]+)@(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(entry);
    const port = m?.[3] === undefined ? 8021 : Number(m[3]);
    if (!m?.[1] || !m[2] || !isSwitchName(m[1]) || port < 1 || port > 65535) {
      throw new ConfigError(name, `"${entry}" is not name@host:port (a name of letters, digits, _ . -)`);
    }
    if (list.some((s) => s.name === m[1])) throw new ConfigError(name, `switch ${m[1]} is named twice`);
    list.push({ name: m[1], host: m[2].replace(/^\[|\]$/g, ''), port });
  }
  if (list.length === 0) throw new ConfigError(name, 'must name at least one switch');
  return list;
}

/** A prompt, tone or path the switch receives as an application argument: nothing in it may expand. */
function switchArgument(env: Env, name: string, fallback: string): string {
  const v = str(env, name, fallback);
  if (!isInertSwitchArgument(v)) throw new ConfigError(name, 'must not contain $, {, } or a line break (the switch would expand them)');
  return v;
}

/** An argument that goes into a space-separated argument list (play_and_get_digits). */
function oneWordSwitchArgument(env: Env, name: string, fallback: string): string {
  const v = switchArgument(env, name, fallback);
  if (/\s/.test(v)) throw new ConfigError(name, 'must not contain a space (it is one argument of play_and_get_digits)');
  return v;
}

/** Click-to-dial sends the dial strings and the ringback in one `originate` line (its arguments split on spaces, the inline dialplan on ^). */
const ORIGINATE_LINE_RULE = "must not contain a space, a quote (') or ^ (it goes into the originate command line)";
function fitsOriginateLine(value: string): boolean {
  return !/[\s'^]/.test(value);
}

function originateArgument(env: Env, name: string, fallback: string): string {
  const v = switchArgument(env, name, fallback);
  if (!fitsOriginateLine(v)) throw new ConfigError(name, ORIGINATE_LINE_RULE);
  return v;
}

function switchDir(env: Env, name: string, fallback: string): string {
  const v = str(env, name, fallback).replace(/\/+$/, '');
  if (!isSafeAbsoluteDir(v)) throw new ConfigError(name, 'must be an absolute path of letters, digits, _ - . and /');
  return v;
}

function dialOverrides(env: Env, name: string): Record<string, string> {
  const raw = read(env, name);
  if (raw === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(name, 'must be a JSON object of number -> dial string');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(name, 'must be a JSON object of number -> dial string');
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v !== 'string' || v === '') throw new ConfigError(name, `entry for ${k} must be a non-empty string`);
    if (!fitsOriginateLine(v)) throw new ConfigError(name, `entry for ${k} ${ORIGINATE_LINE_RULE}`);
    out[k] = v;
  }
  return out;
}

function messageTransport(env: Env, name: string): MessageTransport {
  const v = str(env, name, 'sip');
  const found = MESSAGE_TRANSPORTS.find((t) => t === v);
  if (!found) throw new ConfigError(name, `must be one of ${MESSAGE_TRANSPORTS.join(', ')}`);
  return found;
}

function smppLink(env: Env): AppConfig['messages']['smpp'] {
  const host = read(env, 'SMPP_HOST');
  if (host === undefined) return null;
  const reconnectMinMs = int(env, 'SMPP_RECONNECT_MIN_MS', 1000, 10, 60_000);
  return {
    host,
    port: int(env, 'SMPP_PORT', 2775, 1, 65535),
    systemId: str(env, 'SMPP_SYSTEM_ID'),
    password: str(env, 'SMPP_PASSWORD'),
    systemType: str(env, 'SMPP_SYSTEM_TYPE', ''),
    enquireLinkSeconds: int(env, 'SMPP_ENQUIRE_LINK_SECONDS', 30, 1, 3600),
    reconnectMinMs,
    reconnectMaxMs: int(env, 'SMPP_RECONNECT_MAX_MS', 30_000, reconnectMinMs, 600_000),
    responseTimeoutMs: int(env, 'SMPP_RESPONSE_TIMEOUT_MS', 10_000, 100, 120_000),
  };
}

/** A name or address that goes into a switch event header as it is. */
function hostLike(env: Env, name: string, fallback: string): string {
  const v = str(env, name, fallback);
  if (!/^[A-Za-z0-9_.:-]+$/.test(v)) throw new ConfigError(name, 'must be letters, digits, _ . : or -');
  return v;
}

function sipUriTemplate(env: Env, name: string): string {
  const v = str(env, name, 'sip:{number}@127.0.0.1:5060');
  if (!/^sips?:[^\s$<>"|]*\{number\}[^\s$<>"|]*$/.test(v)) throw new ConfigError(name, 'must be a sip: URI containing {number}, without spaces, $, <, >, " or |');
  return v;
}

/** The platform's abuse limits and anomaly thresholds (also read alone by the CLI, which has no switch to talk to). */
export function abuseConfig(env: Env = process.env): AppConfig['abuse'] {
  return {
    callsPerCallerPerMinute: int(env, 'CALLS_PER_CALLER_PER_MINUTE', 10, 0, 100_000),
    bindingsPerNumberPerHour: int(env, 'BINDINGS_PER_NUMBER_PER_HOUR', 20, 0, 100_000),
    tenantRequestsPerSecond: int(env, 'TENANT_REQUESTS_PER_SECOND', 200, 0, 1_000_000),
    fanoutDistinctParties: int(env, 'FANOUT_DISTINCT_PARTIES', 20, 1, 100_000),
    fanoutWindowSeconds: int(env, 'FANOUT_WINDOW_SECONDS', 600, 1, 86_400),
    pairBindingsPerHour: int(env, 'PAIR_BINDINGS_PER_HOUR', 30, 0, 100_000),
    callerBurstCalls: int(env, 'CALLER_BURST_CALLS', 30, 0, 1_000_000),
    xBurstCalls: int(env, 'X_BURST_CALLS', 100, 0, 1_000_000),
    burstWindowSeconds: int(env, 'BURST_WINDOW_SECONDS', 300, 1, 86_400),
    shortCallSeconds: int(env, 'SHORT_CALL_SECONDS', 10, 1, 3600),
    shortCallSharePercent: int(env, 'SHORT_CALL_SHARE_PERCENT', 80, 1, 100),
    shortCallMinCalls: int(env, 'SHORT_CALL_MIN_CALLS', 20, 0, 1_000_000),
    shortCallWindowSeconds: int(env, 'SHORT_CALL_WINDOW_SECONDS', 3600, 1, 86_400),
    bulkBindingFactor: int(env, 'BULK_BINDING_FACTOR', 10, 1, 10_000),
    bulkBindingMinPerMinute: int(env, 'BULK_BINDING_MIN_PER_MINUTE', 100, 0, 10_000_000),
    bulkBindingBaselineMinutes: int(env, 'BULK_BINDING_BASELINE_MINUTES', 60, 1, 100_000),
    blockSeconds: int(env, 'ABUSE_BLOCK_SECONDS', 86_400, 60, 31_536_000),
  };
}

export function loadConfig(env: Env = process.env): AppConfig {
  const template = str(env, 'DIAL_STRING_TEMPLATE', 'sofia/gateway/carrier/{number}');
  if (!template.includes('{number}')) throw new ConfigError('DIAL_STRING_TEMPLATE', 'must contain {number}');
  if (!fitsOriginateLine(template)) throw new ConfigError('DIAL_STRING_TEMPLATE', ORIGINATE_LINE_RULE);
  const reconnectMinMs = int(env, 'ESL_RECONNECT_MIN_MS', 500, 10, 60_000);
  const eslHost = str(env, 'ESL_HOST', '127.0.0.1');
  const eslPort = int(env, 'ESL_PORT', 8021, 1, 65535);
  const switches = switchList(env, 'SWITCHES', { name: 'default', host: eslHost, port: eslPort });
  const consoleSessionHours = int(env, 'CONSOLE_SESSION_HOURS', 12, 1, 168);
  const config: AppConfig = {
    nodeId: str(env, 'NODE_ID', `controller-${process.pid}`),
    resumeOwnJobs: read(env, 'NODE_ID') !== undefined,
    logLevel: str(env, 'LOG_LEVEL', 'info'),
    http: { host: str(env, 'HTTP_HOST', '0.0.0.0'), port: int(env, 'HTTP_PORT', 8080, 0, 65535) },
    adminToken: adminToken(env),
    numberHashKey: secretOrNull(env, 'NUMBER_HASH_KEY', 32),
    metricsListen: metricsListen(env),
    authFailuresPerMinute: int(env, 'AUTH_FAILURES_PER_MINUTE', 20, 0, 100_000),
    drainTimeoutSeconds: int(env, 'DRAIN_TIMEOUT_SECONDS', 20, 0, 86_400),
    mysqlUrl: url(env, 'MYSQL_URL', 'mysql://root@127.0.0.1:3306/numguard', ['mysql:']),
    redisUrl: url(env, 'REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    redisClusterNodes: clusterNodes(env, 'REDIS_CLUSTER_NODES'),
    redisPrefix: redisPrefix(env, 'REDIS_PREFIX'),
    redisRequests: {
      commandTimeoutMs: int(env, 'REDIS_COMMAND_TIMEOUT_MS', 3000, 50, 60_000),
      maxRetriesPerRequest: int(env, 'REDIS_MAX_RETRIES_PER_REQUEST', 1, 0, 10),
    },
    esl: {
      host: eslHost,
      port: eslPort,
      password: str(env, 'ESL_PASSWORD'),
      commandTimeoutMs: int(env, 'ESL_COMMAND_TIMEOUT_MS', 5000, 100, 120_000),
      reconnectMinMs,
      reconnectMaxMs: int(env, 'ESL_RECONNECT_MAX_MS', 15_000, reconnectMinMs, 600_000),
    },
    fleet: {
      switches,
      lostAfterSeconds: int(env, 'SWITCH_LOST_SECONDS', 10, 1, 3600),
      refreshSeconds: int(env, 'SWITCHES_REFRESH_SECONDS', 5, 1, 3600),
    },
    outboundSocket: {
      host: str(env, 'OUTBOUND_SOCKET_HOST', '127.0.0.1'),
      port: int(env, 'OUTBOUND_SOCKET_PORT', 8084, 0, 65535),
      allowedPeers: peerList(env, 'OUTBOUND_SOCKET_ALLOW', switches.map((s) => s.host)),
    },
    dial: {
      template,
      overrides: dialOverrides(env, 'DIAL_STRING_OVERRIDES'),
      gateway: str(env, 'CARRIER_GATEWAY', 'carrier'),
    },
    callbacks: {
      callsPerSecond: int(env, 'CALLBACK_CALLS_PER_SECOND', 20, 1, 100_000),
      switchSharePercent: int(env, 'CALLBACK_SWITCH_SHARE', 85, 0, 100),
      maxWaitSeconds: int(env, 'CALLBACK_MAX_WAIT_SECONDS', 5, 0, 3600),
      maxLoopDelayMs: int(env, 'CONTROLLER_MAX_LOOP_DELAY_MS', 0, 0, 60_000),
      concurrency: int(env, 'CALLBACK_CONCURRENCY', 200, 1, 100_000),
      lockSeconds: int(env, 'CALLBACK_LOCK_SECONDS', 6, 2, 300),
      cdrGroupWindowMs: int(env, 'CDR_GROUP_WINDOW_MS', 200, 0, 1000),
      ringTimeoutASeconds: int(env, 'RING_TIMEOUT_A_SECONDS', 30, 5, 120),
      ringTimeoutBSeconds: int(env, 'RING_TIMEOUT_B_SECONDS', 30, 5, 120),
      maxDurationSeconds: int(env, 'MAX_CALL_DURATION_SECONDS', 1800, 10, 86_400),
      passthroughAllowed: bool(env, 'PASSTHROUGH_ALLOWED', false),
      callbackBindingTtlSeconds: int(env, 'CALLBACK_BINDING_TTL_SECONDS', 86_400, 60, 604_800),
      ringbackTone: originateArgument(env, 'RINGBACK_TONE', '%(2000,4000,440,480)'),
      bFailedPrompt: switchArgument(env, 'B_FAILED_PROMPT', 'tone_stream://%(500,500,480,620);loops=2'),
      recordingsDir: switchDir(env, 'RECORDINGS_DIR', '/var/lib/freeswitch/recordings'),
    },
    endWarning: {
      seconds: int(env, 'CALL_END_WARNING_SECONDS', 60, 0, 3600),
      // Scheduled on the switch as `sched_broadcast +N <uuid> <tone> both`, also from B's originate variables (quoted).
      tone: originateArgument(env, 'CALL_END_WARNING_TONE', 'tone_stream://%(300,200,880);loops=2'),
    },
    callsToX: {
      notInServicePrompt: switchArgument(env, 'NOT_IN_SERVICE_PROMPT', 'tone_stream://%(500,500,480,620);loops=2'),
      unavailablePrompt: switchArgument(env, 'ROUTING_UNAVAILABLE_PROMPT', 'tone_stream://%(250,250,480,620);loops=4'),
      soundsDir: switchDir(env, 'SWITCH_SOUNDS_DIR', '/usr/share/freeswitch/sounds'),
      extensions: {
        prompt: oneWordSwitchArgument(env, 'EXTENSION_PROMPT', 'tone_stream://%(400,200,440);loops=2'),
        timeoutMs: int(env, 'EXTENSION_TIMEOUT_MS', 5000, 1000, 60_000),
        digitTimeoutMs: int(env, 'EXTENSION_DIGIT_TIMEOUT_MS', 3000, 500, 30_000),
      },
    },
    routeIndexWrites: {
      timeoutMs: int(env, 'ROUTE_WRITE_TIMEOUT_MS', 2000, 50, 60_000),
      reconcileIntervalSeconds: int(env, 'ROUTE_RECONCILE_INTERVAL_SECONDS', 60, 1, 86_400),
    },
    routeCache: {
      ttlMs: int(env, 'ROUTE_CACHE_MS', 10_000, 0, 300_000),
      maxEntries: int(env, 'ROUTE_CACHE_MAX_ENTRIES', 100_000, 1, 10_000_000),
      leaseMs: int(env, 'ROUTE_CACHE_LEASE_MS', 1000, 30, 60_000),
      ackTimeoutMs: int(env, 'ROUTE_CACHE_ACK_TIMEOUT_MS', 200, 10, 10_000),
    },
    bindBatch: {
      maxBatch: int(env, 'BIND_BATCH_MAX', 200, 1, 1000),
      maxInFlight: int(env, 'BIND_BATCH_IN_FLIGHT', 4, 1, 16),
    },
    abuse: abuseConfig(env),
    webhooks: {
      timeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 5000, 100, 60_000),
      retryUnitMs: int(env, 'WEBHOOK_RETRY_UNIT_MS', 60_000, 1, 3_600_000),
      allowPrivateUrls: bool(env, 'WEBHOOK_ALLOW_PRIVATE_URLS', false),
      logRetentionDays: int(env, 'WEBHOOK_LOG_RETENTION_DAYS', 30, 1, 3650),
      tenantConcurrency: int(env, 'WEBHOOK_TENANT_CONCURRENCY', 5, 1, 20),
    },
    messages: {
      transport: messageTransport(env, 'MESSAGE_TRANSPORT'),
      sip: {
        profile: hostLike(env, 'MESSAGE_SIP_PROFILE', 'external'),
        uriTemplate: sipUriTemplate(env, 'MESSAGE_SIP_URI_TEMPLATE'),
        fromHost: hostLike(env, 'MESSAGE_SIP_FROM_HOST', '127.0.0.1'),
      },
      smpp: smppLink(env),
      perSenderPerMinute: int(env, 'MESSAGES_PER_SENDER_PER_MINUTE', 10, 0, 100_000),
      perXPerMinute: int(env, 'MESSAGES_PER_X_PER_MINUTE', 120, 0, 1_000_000),
      sendAttempts: int(env, 'MESSAGE_SEND_ATTEMPTS', 5, 1, 100),
      retryDelayMs: int(env, 'MESSAGE_RETRY_DELAY_MS', 2000, 1, 3_600_000),
      dedupWindowSeconds: int(env, 'MESSAGE_DEDUP_WINDOW_SECONDS', 600, 1, 86_400),
      partsWaitSeconds: int(env, 'MESSAGE_PARTS_WAIT_SECONDS', 300, 1, 86_400),
      spool: {
        dir: path.resolve(str(env, 'MESSAGE_SPOOL_DIR', 'var/message-spool')),
        enqueueTimeoutMs: int(env, 'MESSAGE_SPOOL_ENQUEUE_TIMEOUT_MS', 2000, 10, 60_000),
        retryMs: int(env, 'MESSAGE_SPOOL_RETRY_MS', 2000, 10, 600_000),
      },
    },
    agentConsole: {
      sessionHours: consoleSessionHours,
      idleMinutes: int(env, 'CONSOLE_IDLE_MINUTES', 30, 1, consoleSessionHours * 60),
      trustProxy: bool(env, 'CONSOLE_TRUST_PROXY', false),
      cookieSecure: bool(env, 'CONSOLE_COOKIE_SECURE', false),
    },
  };
  return Object.freeze(config);
}
