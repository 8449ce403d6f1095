import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Cluster, Redis, type RedisOptions } from 'ioredis';

export type { Redis, Cluster } from 'ioredis';

/** A connection to a single Redis or to a Redis Cluster: the stores use either alike (see keys.ts for the slots). */
export type RedisClient = Redis | Cluster;

/** Where Redis is: a URL, and for a Redis Cluster its seed nodes (the URL then gives only credentials and TLS). */
export interface RedisTarget {
  readonly url: string;
  readonly clusterNodes?: readonly { readonly host: string; readonly port: number }[];
}

function connect(target: string, options: RedisOptions): Redis;
function connect(target: string | RedisTarget, options: RedisOptions): RedisClient;
function connect(target: string | RedisTarget, options: RedisOptions): RedisClient {
  const { url, clusterNodes = [] } = typeof target === 'string' ? { url: target } : target;
  if (clusterNodes.length === 0) return new Redis(url, options);
  const parsed = new URL(url);
  const { enableAutoPipelining, ...nodeOptions } = options;
  const redisOptions: RedisOptions = {
    ...nodeOptions,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  return new Cluster(
    clusterNodes.map((n) => ({ host: n.host, port: n.port })),
    {
      redisOptions,
      enableReadyCheck: options.enableReadyCheck ?? true,
      enableOfflineQueue: options.enableOfflineQueue ?? true,
      // the cluster pipelines per node itself
      enableAutoPipelining: enableAutoPipelining ?? false,
      maxRedirections: 16,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
    },
  );
}

/** Whether this is a Redis Cluster client (SCAN and multi-slot reads then go node by node, slot by slot). */
export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster;
}

/**
 * A Redis connection for BullMQ (its queues, workers and the jobs' own state). `maxRetriesPerRequest: null`
 * is what BullMQ workers require (commands wait for a reconnect instead of failing).
 */
export function createRedis(url: string): Redis;
export function createRedis(target: string | RedisTarget): RedisClient;
export function createRedis(target: string | RedisTarget): RedisClient {
  return connect(target, { maxRetriesPerRequest: null, enableReadyCheck: true });
}

/**
 * A connection for the call flows' own state (live calls, leg claims), never handed to BullMQ: the
 * commands of all calls issued in one tick leave in one write (ioredis auto-pipelining), so hundreds of
 * calls in progress cost a few system calls per tick instead of one per command. Otherwise as createRedis.
 */
export function createPipelinedRedis(target: string | RedisTarget): RedisClient {
  return connect(target, { maxRetriesPerRequest: null, enableReadyCheck: true, enableAutoPipelining: true });
}

export interface RequestRedisBounds {
  /** The longest any one command waits for its answer, including a wait for a reconnect. */
  readonly commandTimeoutMs: number;
  /** How often a command cut off by a lost connection is sent again (within commandTimeoutMs). */
  readonly maxRetriesPerRequest: number;
}

/**
 * A Redis connection for request paths (routing a call to X, the API): every command answers or
 * fails within commandTimeoutMs, so a Redis that is paused, restarting or unreachable costs a
 * caller or a client a bounded wait and a clear refusal, never a hang. Commands issued while it
 * reconnects wait in the offline queue, under the same timeout.
 */
export function createRequestRedis(url: string, bounds: RequestRedisBounds): Redis;
export function createRequestRedis(target: string | RedisTarget, bounds: RequestRedisBounds): RedisClient;
export function createRequestRedis(target: string | RedisTarget, bounds: RequestRedisBounds): RedisClient {
  return connect(target, {
    commandTimeout: bounds.commandTimeoutMs,
    maxRetriesPerRequest: bounds.maxRetriesPerRequest,
    enableOfflineQueue: true,
    enableReadyCheck: true,
    // No auto-pipelining: ioredis sends a connection's next automatic pipeline only once the one in
    // flight has answered, so a command would wait behind a stalled one beyond its own bound.
    // Batches pipeline explicitly (LuaScript.runMany).
  });
}

/**
 * Whether an error means Redis could not be reached in time (timed out, connection lost or
 * refused), as opposed to a command Redis refused: the former is `store_unavailable`.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'ClusterAllFailedError') return true;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EPIPE') return true;
  return (
    err.message === 'Command timed out' ||
    err.message === 'Connection is closed.' ||
    err.message.startsWith("Stream isn't writeable") ||
    err.message.startsWith('LOADING') ||
    err.message.startsWith('CLUSTERDOWN') ||
    err.message.startsWith('TRYAGAIN') ||
    err.message === 'Failed to refresh slots cache.' ||
    err.message === 'None of startup nodes is available'
  );
}

/**
 * A Lua script run by its SHA1 (EVALSHA), so each call sends a digest instead of the script and
 * Redis skips hashing it; a Redis that has not seen it yet (NOSCRIPT, e.g. after a restart) gets the source once.
 */
export class LuaScript {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** A script of src/stores/lua/, read once, when the module that names it is loaded. */
  static load(name: string): LuaScript {
    return new LuaScript(readFileSync(path.join(luaDir(), `${name}.lua`), 'utf8'));
  }

  /**
   * Several calls of this script in one round trip (a pipeline on a single Redis; sent together on
   * a cluster, whose keys may live on several nodes), executed in the order given. Each call's
   * reply or error, in that order; calls refused with NOSCRIPT are sent again with the source.
   */
  async runMany(redis: RedisClient, calls: ReadonlyArray<{ keys: readonly string[]; args: readonly (string | number)[] }>): Promise<ScriptReply[]> {
    if (calls.length === 0) return [];
    if (isCluster(redis)) return Promise.all(calls.map((c) => this.run(redis, c.keys, c.args).then(ok, failed)));
    const pipeline = redis.pipeline();
    for (const c of calls) pipeline.evalsha(this.sha, c.keys.length, ...c.keys, ...c.args);
    const replies = (await pipeline.exec()) ?? [];
    const out: ScriptReply[] = [];
    for (const [i, c] of calls.entries()) {
      const [err, value] = replies[i] ?? [new Error('no reply in the pipeline'), null];
      // Redis had not seen the script (a restart): nothing of it ran; run it now, in order.
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) out.push(await this.run(redis, c.keys, c.args).then(ok, failed));
      else out.push(err ? { error: err } : { value });
    }
    return out;
  }

  /**
   * Many items through a script that takes several at once (its KEYS and ARGV the items' in turn,
   * its reply an array with one entry per item): one call for all of them on a single Redis, one
   * call per hash slot on a cluster (sent together). Each item's reply or its call's error, in order.
   */
  async runGrouped<T>(
    redis: RedisClient,
    items: readonly T[],
    slotKey: (item: T) => string,
    call: (group: readonly T[]) => { keys: readonly string[]; args: readonly (string | number)[] },
  ): Promise<ScriptReply[]> {
    if (items.length === 0) return [];
    const groups = new Map<number, number[]>();
    items.forEach((item, i) => {
      const slot = isCluster(redis) ? keySlot(slotKey(item)) : 0;
      const group = groups.get(slot);
      if (group) group.push(i);
      else groups.set(slot, [i]);
    });
    const indexes = [...groups.values()];
    const replies = await this.runMany(redis, indexes.map((group) => call(group.map((i) => items[i] as T))));
    const out = new Array<ScriptReply>(items.length);
    indexes.forEach((group, g) => {
      const reply = replies[g] ?? failed(new Error('no reply'));
      const values = reply.error === undefined && Array.isArray(reply.value) ? (reply.value as unknown[]) : null;
      group.forEach((itemIndex, j) =>
        (out[itemIndex] = reply.error !== undefined ? reply : values && j < values.length ? ok(values[j]) : failed(new Error('short reply from a grouped script'))),
      );
    });
    return out;
  }

  async run(redis: RedisClient, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/** One call's outcome in LuaScript.runMany. */
export type ScriptReply = { readonly value: unknown; readonly error?: undefined } | { readonly error: Error; readonly value?: undefined };

const ok = (value: unknown): ScriptReply => ({ value });
const failed = (err: unknown): ScriptReply => ({ error: err instanceof Error ? err : new Error(String(err)) });

/**
 * Every key matching a SCAN pattern, a page at a time: over every master of a cluster, or the one Redis.
 */
export async function* scanKeys(redis: RedisClient, pattern: string, count = 1000): AsyncGenerator<string[]> {
  const nodes: Redis[] = isCluster(redis) ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== '0');
  }
}

/**
 * GET of many keys in as few round trips as the deployment allows: one MGET on a single Redis,
 * one MGET per hash slot on a cluster (sent together). Values in the order of the keys.
 */
export async function getMany(redis: RedisClient, keys: readonly string[]): Promise<(string | null)[]> {
  if (keys.length === 0) return [];
  if (!isCluster(redis)) return redis.mget(...keys);
  const bySlot = new Map<number, number[]>();
  keys.forEach((key, i) => {
    const slot = keySlot(key);
    bySlot.set(slot, [...(bySlot.get(slot) ?? []), i]);
  });
  const values = new Array<string | null>(keys.length).fill(null);
  await Promise.all(
    [...bySlot.values()].map(async (indexes) => {
      const got = await redis.mget(...indexes.map((i) => keys[i] ?? ''));
      indexes.forEach((i, j) => (values[i] = got[j] ?? null));
    }),
  );
  return values;
}

/** The Redis Cluster hash slot of a key (CRC16/XMODEM of its hash tag, or of the whole key, mod 16384). */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  let hashed = key;
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) hashed = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(hashed, 'utf8')) % 16384;
}

function crc16(bytes: Buffer): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/**
 * Where the .lua files are: next to this module in src/; `tsc` does not copy them, so from
 * dist/stores/ the source tree is the fallback (the Docker image copies them next to it).
 */
function luaDir(): string {
  const candidates = [path.join(__dirname, 'lua'), path.resolve(__dirname, '../../src/stores/lua')];
  const found = candidates.find((dir) => existsSync(path.join(dir, 'remove-own-route.lua')));
  if (!found) throw new Error(`no Lua scripts found (looked in ${candidates.join(', ')})`);
  return found;
}
