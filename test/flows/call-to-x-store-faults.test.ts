import type { RowDataPacket } from 'mysql2/promise';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';

const xs = (i: number) => `7001000${String(950 + i).padStart(8, '0')}`;
/** Shorter than the 3 s default, to keep the suite short; long enough that a prompt after it is not mistaken for ringing. */
const BOUND_MS = 2000;

/**
 * Calls to X and the API while Redis misbehaves: the controller under test uses a redis-server of
 * this suite's own (paused, restarted empty), so the Redis other suites share is never touched.
 */
describe('calls to X when Redis is paused or loses its keys (simulator, real MariaDB, private Redis)', () => {
  let redis: PrivateRedis;
  let sys: TestSystem;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    try {
      // The tenant request limit on (as deployed): every /v1 request counts in Redis before anything else.
      sys = await startTestSystem({ env: { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: String(BOUND_MS), TENANT_REQUESTS_PER_SECOND: '100000' } });
      await sys.app.bindings.importNumbers(sys.tenantId, Array.from({ length: 4 }, (_, i) => ({ x: xs(i), area: '010' })));
    } catch (err) {
      await redis.stop();
      throw err;
    }
  });
  afterAll(async () => {
    try {
      await sys?.stop();
    } finally {
      await redis?.stop();
    }
  });

  const cdrOf = (uuid: string): Promise<RowDataPacket> => sys.cdrOfCallToX(uuid);

  /** Pauses every client of the private Redis for ms; resolves once the pause is in force. */
  async function pauseRedis(ms: number): Promise<void> {
    await redis.admin.call('CLIENT', 'PAUSE', String(ms), 'ALL');
  }

  it('Redis paused: the caller hears ringing at once, then the "temporarily unavailable" prompt and 503; the CDR says failed; routing resumes', async () => {
    const a = '13800009501';
    const b = '13900009501';
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a, b, x: xs(0) });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 300 });

    await pauseRedis(BOUND_MS + 2000);
    const calledAt = Date.now();
    const uuid = await sys.sim.connectOutbound(sys.app.outboundAddress, { callerNumber: a, destinationNumber: xs(0) });
    const seen = () => sys.sim.seenByCaller(a).filter((m) => m.uuid === uuid);
    const refusal = await waitUntil('the caller refused', () => seen().find((m) => m.message.startsWith('503')), BOUND_MS + 10_000);

    const messages = seen().map((m) => m.message);
    expect(messages).toEqual(['100 Trying', '180 Ringing', '183 Session Progress', '503 Service Unavailable']);
    // Ringing came before the bound on the lookup had passed: while the route was still being looked up.
    expect(seen()[1]!.at - calledAt).toBeLessThan(1000);
    expect(refusal.at - calledAt).toBeGreaterThanOrEqual(BOUND_MS - 50);
    expect(refusal.reason).toContain('NORMAL_TEMPORARY_FAILURE');
    expect(sys.sim.invitesTo(b)).toHaveLength(0);

    // The CDR goes through BullMQ, which waits for Redis: written once the pause is over, nothing lost.
    expect(await cdrOf(uuid)).toMatchObject({ result: 'failed', hangup_cause: 'NORMAL_TEMPORARY_FAILURE', hangup_side: 'platform', a, b: '', talk_seconds: 0 });
    expect(sys.logLines.join('')).not.toContain(a);

    await redis.admin.ping(); // answers once the pause is over
    const again = await sys.sim.connectOutbound(sys.app.outboundAddress, { callerNumber: a, destinationNumber: xs(0) });
    expect(await cdrOf(again)).toMatchObject({ result: 'connected', b });
  });

  it('Redis paused: the API answers 503 store_unavailable within the bound, and serves again after', async () => {
    await pauseRedis(BOUND_MS + 4000);
    const askedAt = Date.now();
    const res = await sys.api<{ error: { code: string } }>('GET', '/v1/bindings?limit=1');
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('store_unavailable');
    // Bounded: the failed-authentication throttle's own 1 s guard (it lets the request through), then the tenant's request count (BOUND_MS).
    expect(Date.now() - askedAt).toBeLessThan(1000 + BOUND_MS + 1000);
    await redis.admin.ping();
    expect((await sys.api('GET', '/v1/bindings?limit=1')).status).toBe(200);
  });

  it('Redis restarted with every key lost: a bound caller still reaches B at once, the index is rebuilt and /readyz is true again', async () => {
    const a = '13800009503';
    const b = '13900009503';
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a, b, x: xs(1) });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 300 });
    const rebuiltBefore = sys.logLines.filter((l) => l.includes('routing index rebuilt from MySQL')).length;

    await redis.restartEmpty();
    const restartedAt = Date.now();
    const uuid = await sys.sim.connectOutbound(sys.app.outboundAddress, { callerNumber: a, destinationNumber: xs(1) });
    expect(await cdrOf(uuid)).toMatchObject({ result: 'connected', a, b });

    // Rebuilt well within the periodic check's 10 s, by the loss being noticed (reconnect, lookup, probe).
    await waitUntil('the index rebuilt', () => sys.logLines.filter((l) => l.includes('routing index rebuilt from MySQL')).length > rebuiltBefore, 5000);
    const ready = await waitUntil('/readyz true', async () => {
      const r = await sys.app.http.inject({ method: 'GET', url: '/readyz' });
      return r.statusCode === 200 ? r.json<{ checks: Record<string, boolean> }>() : null;
    }, 5000);
    expect(ready.checks.routes).toBe(true);
    expect(Date.now() - restartedAt).toBeLessThan(10_000);
  });
});
