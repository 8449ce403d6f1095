import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { ClickToDialService } from '../../src/calls/types';
import { NotFoundError } from '../../src/domain/errors';
import { buildHttpServer } from '../../src/http/server';
import { registerCallRoutes } from '../../src/calls/call-routes';
import { createLogger } from '../../src/logger';
import { createReadinessProbe } from '../../src/monitoring/readiness';
import { createMysqlPool, type Pool } from '../../src/stores/mysql';
import { createRedis } from '../../src/stores/redis';
import { createTestDatabase, type TestDatabase } from '../support/mysql';
import { TEST_REDIS_URL } from '../support/redis';
import { TcpProxy } from './tcp-proxy';

/** The HTTP layer needs a call service; readiness never touches it. */
const noCalls: ClickToDialService = {
  create: async () => {
    throw new NotFoundError('call');
  },
  get: async () => {
    throw new NotFoundError('call');
  },
  cancel: async () => {
    throw new NotFoundError('call');
  },
};

/**
 * /readyz with the production probe against the real Redis and MariaDB, each reached through a
 * proxy that can take it away (connections refused, or accepted and never answered) and give it back.
 */
describe('readiness: Redis and MySQL going away and coming back', () => {
  const PROBE_TIMEOUT_MS = 300;
  let db: TestDatabase;
  let redisProxy: TcpProxy;
  let mysqlProxy: TcpProxy;
  let redis: Redis;
  let pool: Pool;
  let mysqlUrl: string;
  let http: FastifyInstance;
  const esl = { state: 'ready' };

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    const redisUrl = new URL(TEST_REDIS_URL);
    redisProxy = new TcpProxy({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    const direct = new URL(db.url);
    mysqlProxy = new TcpProxy({ host: direct.hostname, port: Number(direct.port || 3306) });
    const redisPort = await redisProxy.start();
    const mysqlPort = await mysqlProxy.start();
    redis = createRedis(`redis://127.0.0.1:${redisPort}`);
    direct.port = String(mysqlPort);
    mysqlUrl = direct.toString();
    pool = createMysqlPool(mysqlUrl);
    http = buildHttpServer({
      logger: createLogger('silent'),
      auth: { authenticate: async () => null },
      v1Routes: [(v1) => registerCallRoutes(v1, { calls: noCalls, cdrs: { list: async () => ({ items: [], nextCursor: null }) } })],
      readiness: createReadinessProbe({ esl, redis, pool, timeoutMs: PROBE_TIMEOUT_MS }),
    });
    await http.ready();
  });
  afterAll(async () => {
    await http?.close();
    redis?.disconnect();
    await pool?.end().catch(() => undefined);
    await redisProxy?.stop();
    await mysqlProxy?.stop();
    await db?.drop();
  });

  const readyz = async () => {
    const res = await http.inject({ method: 'GET', url: '/readyz' });
    return { status: res.statusCode, body: res.json<{ ready: boolean; checks: Record<string, boolean> }>() };
  };

  /** Reconnects take their own time: ask again until the answer changes (or give up after 10 s). */
  const readyzOnce = async (status: number) => {
    const deadline = Date.now() + 10_000;
    let res = await readyz();
    while (res.status !== status && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      res = await readyz();
    }
    return res;
  };

  it('is ready while everything answers', async () => {
    expect(await readyzOnce(200)).toEqual({ status: 200, body: { ready: true, checks: { esl: true, redis: true, mysql: true } } });
  });

  it('is not ready while Redis refuses connections, and ready again once it is back', async () => {
    redisProxy.setMode('refuse');
    expect(await readyzOnce(503)).toEqual({ status: 503, body: { ready: false, checks: { esl: true, redis: false, mysql: true } } });
    redisProxy.setMode('forward');
    expect((await readyzOnce(200)).body.checks).toEqual({ esl: true, redis: true, mysql: true });
  });

  it('is not ready while MySQL refuses connections, and ready again once it is back', async () => {
    mysqlProxy.setMode('refuse');
    expect(await readyzOnce(503)).toEqual({ status: 503, body: { ready: false, checks: { esl: true, redis: true, mysql: false } } });
    mysqlProxy.setMode('forward');
    expect((await readyzOnce(200)).body.checks).toEqual({ esl: true, redis: true, mysql: true });
  });

  it('answers "not ready" instead of hanging when MySQL accepts connections and never replies', async () => {
    mysqlProxy.setMode('blackhole');
    // A pool with no connection yet: its first one meets the black hole. mysql2 alone would wait
    // 10 s for the handshake (past this test's time limit); the probe gives up after its timeout.
    const hanging = createMysqlPool(mysqlUrl);
    try {
      const probe = createReadinessProbe({ esl, redis, pool: hanging, timeoutMs: PROBE_TIMEOUT_MS });
      expect(await probe.check()).toEqual({ esl: true, redis: true, mysql: false });
    } finally {
      mysqlProxy.setMode('refuse'); // lets the pending handshake fail, so the pool can end
      await hanging.end().catch(() => undefined);
      mysqlProxy.setMode('forward');
    }
    expect((await readyzOnce(200)).status).toBe(200);
  });

  it('is not ready while the switch connection is down; liveness stays up', async () => {
    esl.state = 'reconnecting';
    expect(await readyz()).toEqual({ status: 503, body: { ready: false, checks: { esl: false, redis: true, mysql: true } } });
    expect((await http.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    esl.state = 'ready';
    expect((await readyz()).status).toBe(200);
  });
});
