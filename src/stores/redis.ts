import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';

export type { Redis } from 'ioredis';

/**
 * A Redis connection for BullMQ (its queues, workers and the jobs' own state). `maxRetriesPerRequest: null`
 * is what BullMQ workers require (commands wait for a reconnect instead of failing).
 */
export function createRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true });
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
export function createRequestRedis(url: string, bounds: RequestRedisBounds): Redis {
  return new Redis(url, {
    commandTimeout: bounds.commandTimeoutMs,
    maxRetriesPerRequest: bounds.maxRetriesPerRequest,
    enableOfflineQueue: true,
    enableReadyCheck: true,
  });
}

/**
 * Whether an error means Redis could not be reached in time (timed out, connection lost or
 * refused), as opposed to a command Redis refused: the former is `store_unavailable`.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EPIPE') return true;
  return (
    err.message === 'Command timed out' ||
    err.message === 'Connection is closed.' ||
    err.message.startsWith("Stream isn't writeable") ||
    err.message.startsWith('LOADING')
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

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
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
