import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';

export type { Redis } from 'ioredis';

/**
 * A Redis connection for BullMQ and the live call state. `maxRetriesPerRequest: null`
 * is what BullMQ workers require (commands wait for a reconnect instead of failing).
 */
export function createRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true });
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
