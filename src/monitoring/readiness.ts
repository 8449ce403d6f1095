import type { RedisClient } from '../stores/redis';
import type { ReadinessProbe } from '../http/server';
import type { Pool } from '../stores/mysql';

/**
 * What /readyz checks: the event socket to the switch, Redis, MySQL and, when given, that the route
 * index in Redis is complete (false from the moment Redis is found to have lost it until it is
 * rebuilt from MySQL: calls still route meanwhile, but this instance is not at full health). Each answer is bounded by
 * a timeout, so a dependency that hangs (a black-holed host, a saturated pool) reads as down
 * instead of holding the probe open until the orchestrator gives up on it.
 */
export interface ReadinessSources {
  /** The event socket: `ready` when (with a fleet: at least one switch) is connected. */
  readonly esl: { readonly state: string };
  /** With a fleet: each switch, connected or not (shown in `checks.switches`; one switch up is enough). */
  readonly switches?: () => ReadonlyArray<{ readonly name: string; readonly connected: boolean }>;
  readonly redis: Pick<RedisClient, 'status' | 'ping'>;
  readonly pool: Pick<Pool, 'query'>;
  /** The calls-to-X route index: complete, or being rebuilt (isComplete() starts the rebuild when it finds it lost). */
  readonly routeIndex?: { isComplete(): Promise<boolean> };
  /** Longest wait for Redis or MySQL to answer (default 2000 ms). */
  readonly timeoutMs?: number;
  /**
   * true while the controller drains for a shutdown (SIGTERM): /readyz then answers 503 with
   * `checks.accepting: false` (a key only present then), so the load balancer sends no new calls
   * (reads may still be served).
   */
  readonly draining?: () => boolean;
}

export const DEFAULT_READINESS_TIMEOUT_MS = 2000;

async function answersWithin(timeoutMs: number, check: () => Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([
      check().then(
        () => true,
        () => false,
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function createReadinessProbe(sources: ReadinessSources): ReadinessProbe {
  const timeoutMs = sources.timeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS;
  return {
    async check() {
      const redisConnected = sources.redis.status === 'ready';
      const routeIndex = sources.routeIndex;
      const [redis, mysql, routes] = await Promise.all([
        // Not connected: no ping (ioredis would queue it until a reconnect).
        redisConnected ? answersWithin(timeoutMs, () => sources.redis.ping()) : Promise.resolve(false),
        answersWithin(timeoutMs, () => sources.pool.query('SELECT 1')),
        routeIndex && redisConnected ? answersWithin(timeoutMs, () => routeIndex.isComplete().then((ok) => ok || Promise.reject(new Error('incomplete')))) : Promise.resolve(false),
      ]);
      const fleet = sources.switches?.();
      const base = { esl: sources.esl.state === 'ready', redis, mysql };
      const withRoutes = routeIndex ? { ...base, routes } : base;
      const checks = fleet ? { ...withRoutes, switches: Object.fromEntries(fleet.map((s) => [s.name, s.connected])) } : withRoutes;
      return sources.draining?.() ? { ...checks, accepting: false } : checks;
    },
  };
}
