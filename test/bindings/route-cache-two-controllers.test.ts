import { startApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config';
import type { Binding } from '../../src/domain/binding-rules';
import { deterministicUuid } from '../../src/domain/ids';
import { createLogger } from '../../src/logger';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { startTestSystem, type TestSystem } from '../support/system';

const xs = (i: number): string => `7001000${String(700 + i).padStart(8, '0')}`;

/**
 * Two whole controllers (HTTP API, outbound socket, route cache on as shipped) sharing one Redis and
 * one MySQL, as in a deployment: bindings change through the first one's API while calls to X reach
 * the second one, whose cache has just served the route. This checks the wiring of the full
 * applications (a cache that missed the other controller's writes fails it); the narrower races,
 * a message still in flight or a stalled subscriber when the unbind answers, are
 * route-cache.test.ts's.
 */
describe('calls to X at one controller while another controller binds and unbinds', () => {
  jest.setTimeout(90_000);
  let redis: PrivateRedis;
  let sys: TestSystem;
  let second: App;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    sys = await startTestSystem({ timeScale: 0.05, env: { REDIS_URL: redis.url, ROUTE_CACHE_MS: '60000' } });
    second = await startApp(loadConfig({ ...sys.env, HTTP_PORT: '0', OUTBOUND_SOCKET_PORT: '0' }), createLogger('silent'));
    if (!(await second.fleet.whenConnected(30_000))) throw new Error('the second controller did not connect to the switch simulator');
    await sys.app.bindings.importNumbers(sys.tenantId, Array.from({ length: 11 }, (_, i) => ({ x: xs(i), area: '010' })));
  });
  afterAll(async () => {
    await second?.stop();
    await sys?.stop();
    await redis?.stop();
  });

  /** Lookups in Redis so far: a call the cache answers adds none. */
  const routeReads = async (): Promise<number> => {
    const stats = await redis.admin.info('commandstats');
    return Number(/cmdstat_mget:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  };

  const callXAtSecond = async (caller: string, x: string): Promise<string> => {
    const uuid = await sys.sim.connectOutbound(second.outboundAddress, { callerNumber: caller, destinationNumber: x });
    const cdr = await sys.cdrOfCallToX(uuid);
    expect(cdr.call_id).toBe(deterministicUuid('call-to-x', uuid));
    return String(cdr.result);
  };

  it('the second controller serves a bound route from its cache, and refuses it as soon as the first one’s unbind has answered', async () => {
    for (let i = 0; i < 10; i++) {
      const a = `1380000${String(7100 + i)}`;
      const b = `1390000${String(7100 + i)}`;
      sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 100 });
      const x = xs(i);
      const bound = await sys.api<Binding>('POST', '/v1/bindings', { mode: 'axb', a, b, x });
      expect(bound.status).toBe(201);

      expect(await callXAtSecond(a, x)).toBe('connected');
      const readsBefore = await routeReads();
      expect(await callXAtSecond(a, x)).toBe('connected');
      expect(await routeReads()).toBe(readsBefore);

      expect((await sys.api('DELETE', `/v1/bindings/${bound.body.id}`)).status).toBe(200);
      // No wait: the unbind answered only once the second controller's cache had let the route go.
      expect(await callXAtSecond(a, x)).toBe('unbound');
    }
    expect(sys.sim.invitesTo('13900007100')).toHaveLength(2);
  });

  it('a miss the second controller has just answered does not outlive a bind through the first', async () => {
    const a = '13800007200';
    const b = '13900007200';
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 100 });
    const x = xs(10);
    const bound = await sys.api<Binding>('POST', '/v1/bindings', { mode: 'axb', a, b, x });
    expect(bound.status).toBe(201);
    expect((await sys.api('DELETE', `/v1/bindings/${bound.body.id}`)).status).toBe(200);
    expect(await callXAtSecond(a, x)).toBe('unbound');

    const again = await sys.api<Binding>('POST', '/v1/bindings', { mode: 'axb', a, b, x });
    expect(again.status).toBe(201);
    expect(await callXAtSecond(a, x)).toBe('connected');
  });
});
