import { Queue, Worker } from 'bullmq';
import type { RowDataPacket } from 'mysql2/promise';
import { callToXId } from '../../src/flows/call-to-x';
import { maskPhone } from '../../src/domain/phone-number';
import { callbackQueueName } from '../../src/calls/callback-queue';
import { createRedis } from '../../src/stores/redis';
import { FreeSwitchSimulator } from '../simulator';
import { TEST_REDIS_URL } from '../support/redis';
import { startTestSystem, type TestSystem } from '../support/system';

const ADMIN_TOKEN = 'admin-token-0123456789';

/** One sample of a Prometheus text exposition, e.g. value(text, 'numguard_calls_total{kind="click_to_dial",result="connected"}'). */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('operations: metrics, liveness, readiness, queue dashboard', () => {
  let sys: TestSystem;
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

  beforeAll(async () => {
    // B rings for 120 s (6 s at the simulator's time scale) unless the caller gives up first.
    sys = await startTestSystem({ env: { ADMIN_TOKEN, RING_TIMEOUT_B_SECONDS: '120' } });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const scrape = async (): Promise<string> => {
    const res = await sys.app.http.inject({ method: 'GET', url: '/metrics', headers: admin });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    return res.body;
  };

  it('counts calls by kind and result, and none stays active once they end', async () => {
    sys.sim.setPhone('13800040001', { answer: 'answer' });
    sys.sim.setPhone('13900040001', { answer: 'answer', hangupAfterMs: 300 });
    sys.sim.setPhone('13800040002', { answer: 'busy' });
    const connected = await sys.placeCall({ requestId: 'm-1', a: '13800040001', b: '13900040001' });
    const busy = await sys.placeCall({ requestId: 'm-2', a: '13800040002', b: '13900040002' });
    await sys.waitForCall(connected.id);
    await sys.waitForCall(busy.id);
    const text = await scrape();
    expect(value(text, 'numguard_calls_total{kind="click_to_dial",result="connected"}')).toBe(1);
    expect(value(text, 'numguard_calls_total{kind="click_to_dial",result="a_busy"}')).toBe(1);
    expect(value(text, 'numguard_active_calls{kind="click_to_dial"}')).toBe(0);
    expect(value(text, 'numguard_call_events_total{type="call.bridged"}')).toBe(1);
    expect(value(text, 'numguard_esl_connected')).toBe(1);
  });

  it('counts a call to X as active while B is still ringing, and by its result once it ends', async () => {
    const caller = '13800040010';
    const b = '13900040010';
    const x = '700600000000010';
    await sys.app.bindings.importNumbers(sys.tenantId, [{ x, area: '0756' }]);
    expect((await sys.api('POST', '/v1/bindings', { mode: 'axb', a: caller, b, x })).status).toBe(201);
    sys.sim.setPhone(b, { answer: 'no-answer' });
    expect(value(await scrape(), 'numguard_active_calls{kind="call_to_x"}')).toBe(0);

    const uuid = await sys.sim.connectOutbound(sys.app.outboundAddress, { callerNumber: caller, destinationNumber: x });
    const deadline = Date.now() + 5000;
    while (sys.sim.invitesTo(b).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(sys.sim.invitesTo(b)).toHaveLength(1);
    const ringing = await scrape();
    expect(value(ringing, 'numguard_active_calls{kind="call_to_x"}')).toBe(1);
    expect(value(ringing, 'numguard_active_calls{kind="click_to_dial"}')).toBe(0);

    await sys.app.esl.api(`uuid_kill ${uuid}`); // the caller gives up
    const callId = callToXId(uuid);
    let cdr: RowDataPacket | undefined;
    while (!cdr && Date.now() < deadline + 10_000) {
      [[cdr]] = await sys.app.pool.query<RowDataPacket[]>('SELECT result FROM cdrs WHERE call_id = ?', [callId]);
      if (!cdr) await new Promise((r) => setTimeout(r, 50));
    }
    expect(cdr).toBeDefined();
    const ended = await scrape();
    expect(value(ended, 'numguard_active_calls{kind="call_to_x"}')).toBe(0);
    expect(value(ended, `numguard_calls_total{kind="call_to_x",result="${String(cdr!.result)}"}`)).toBe(1);
  });

  it('lists the last failed jobs on the dashboard with phone numbers masked', async () => {
    const connection = createRedis(TEST_REDIS_URL);
    const queueName = callbackQueueName('carrier');
    const queue = new Queue(queueName, { connection, prefix: sys.env.REDIS_PREFIX });
    // The controller's own worker steps aside; this one fails the job with a number in its error.
    // Nothing else may be in line, or this worker could take a real call instead.
    await sys.app.callbackWorker.pause();
    try {
      expect(await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).toEqual({ waiting: 0, active: 0, delayed: 0, prioritized: 0 });
      const failed = new Promise<void>((resolve) => {
        const worker = new Worker(
          queueName,
          async () => {
            throw new Error('carrier refused 13800040009');
          },
          { connection, prefix: sys.env.REDIS_PREFIX },
        );
        worker.on('failed', () => void worker.close().then(resolve));
      });
      await queue.add('click-to-dial', {}, { jobId: 'dashboard-failure' });
      await failed;
    } finally {
      void sys.app.callbackWorker.resume();
      await queue.close();
      connection.disconnect();
    }
    const page = await sys.app.http.inject({ method: 'GET', url: '/admin/queues', headers: admin });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('dashboard-failure');
    expect(page.body).toContain(`carrier refused ${maskPhone('13800040009')}`);
    expect(page.body).not.toContain('13800040009');
    expect(value(await scrape(), 'numguard_queue_jobs{queue="click-to-dial",state="failed"}')).toBe(1);
  });

  it('shows queue depth and the age of the oldest waiting job', async () => {
    await sys.app.callbackWorker.pause();
    try {
      await sys.placeCall({ requestId: 'm-3', a: '13800040003', b: '13900040003' });
      await sys.placeCall({ requestId: 'm-4', a: '13800040004', b: '13900040004' });
      // Real time must pass: the oldest waiting job has to be at least a second old (its age is now minus its queue timestamp).
      await new Promise((r) => setTimeout(r, 1100));
      const text = await scrape();
      expect(value(text, 'numguard_queue_jobs{queue="click-to-dial",state="waiting"}')).toBe(2);
      expect(value(text, 'numguard_queue_oldest_waiting_seconds{queue="click-to-dial"}')).toBeGreaterThanOrEqual(1);
      expect(value(text, 'numguard_queue_jobs{queue="cdr",state="failed"}')).toBe(0);
    } finally {
      void sys.app.callbackWorker.resume();
    }
  });

  it('reports pool numbers and active bindings per area', async () => {
    await sys.app.bindings.importNumbers(sys.tenantId, [{ x: '700600000000001', area: '0755' }, { x: '700600000000002', area: '0755' }]);
    await sys.api('PATCH', '/v1/pool/numbers/700600000000002', { state: 'quarantined' });
    expect((await sys.api('POST', '/v1/bindings', { mode: 'axb', a: '13800040005', b: '13900040005', area: '0755' })).status).toBe(201);
    await new Promise((r) => setTimeout(r, 5100)); // pool figures are cached for 5 s between scrapes
    const text = await scrape();
    expect(value(text, 'numguard_pool_numbers{area="0755",state="enabled"}')).toBe(1);
    expect(value(text, 'numguard_pool_numbers{area="0755",state="quarantined"}')).toBe(1);
    expect(value(text, 'numguard_pool_numbers_in_use{area="0755"}')).toBe(1);
    expect(value(text, 'numguard_bindings_active{area="0755"}')).toBe(1);
  });

  it('guards /metrics and the dashboard with the admin token; liveness needs nothing', async () => {
    expect(sys.app.metricsAddress).toBeNull();
    expect((await sys.app.http.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    expect((await sys.app.http.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer wrong-token-0123456789' } })).statusCode).toBe(401);
    const noCreds = await sys.app.http.inject({ method: 'GET', url: '/admin/queues' });
    expect(noCreds.statusCode).toBe(401);
    expect(noCreds.headers['www-authenticate']).toContain('Basic');
    const basic = `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`;
    const page = await sys.app.http.inject({ method: 'GET', url: '/admin/queues', headers: { authorization: basic } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('click-to-dial');
    expect(page.body).toContain('webhooks');
    expect((await sys.app.http.inject({ method: 'GET', url: '/livez' })).json()).toEqual({ status: 'ok' });
  });

  it('readiness drops while the switch is gone and returns when it is back', async () => {
    const port = Number(sys.env.ESL_PORT);
    await sys.sim.stop();
    const deadline = Date.now() + 5000;
    let down = await sys.app.http.inject({ method: 'GET', url: '/readyz' });
    while (down.statusCode !== 503 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      down = await sys.app.http.inject({ method: 'GET', url: '/readyz' });
    }
    expect(down.statusCode).toBe(503);
    expect(down.json()).toEqual({ ready: false, checks: { esl: false, redis: true, mysql: true, routes: true, switches: { default: false } } });
    expect(value(await scrape(), 'numguard_esl_connected')).toBe(0);

    const again = new FreeSwitchSimulator({ port, timeScale: 0.05 });
    await again.start();
    try {
      let up = await sys.app.http.inject({ method: 'GET', url: '/readyz' });
      const until = Date.now() + 10_000;
      while (up.statusCode !== 200 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 50));
        up = await sys.app.http.inject({ method: 'GET', url: '/readyz' });
      }
      expect(up.statusCode).toBe(200);
    } finally {
      await again.stop();
    }
  });
});

describe('operations without an admin token', () => {
  let sys: TestSystem;
  beforeAll(async () => {
    // The scrape address of its own: only there is /metrics served without credentials.
    sys = await startTestSystem({ env: { METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' } });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('has no queue dashboard and no /metrics on the API port, with or without a token', async () => {
    expect((await sys.app.http.inject({ method: 'GET', url: '/admin/queues' })).statusCode).toBe(404);
    for (const headers of [{}, { authorization: 'Bearer anything-at-all-0123456789' }]) {
      const res = await sys.app.http.inject({ method: 'GET', url: '/metrics', headers });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({ error: { code: 'metrics_disabled', message: expect.any(String) } });
    }
  });

  it('serves /metrics without credentials on the separate metrics listener, and nothing else there', async () => {
    expect(sys.app.metricsAddress).toEqual({ host: '127.0.0.1', port: expect.any(Number) });
    const base = `http://127.0.0.1:${sys.app.metricsAddress!.port}`;
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(await res.text()).toContain('numguard_esl_connected');
    const other = await fetch(`${base}/v1/cdrs`);
    expect(other.status).toBe(404);
    expect(await other.json()).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
    const post = await fetch(`${base}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(((await post.json()) as { error: { code: string } }).error.code).toBe('method_not_allowed');
  });

  it('refuses a short ADMIN_TOKEN at start, naming the variable', async () => {
    const { loadConfig } = await import('../../src/config');
    expect(() => loadConfig({ ESL_PASSWORD: 'x', ADMIN_TOKEN: 'short' })).toThrow(/ADMIN_TOKEN/);
  });

  it('checks METRICS_HOST and METRICS_PORT at start, naming the variable', async () => {
    const { loadConfig } = await import('../../src/config');
    expect(loadConfig({ ESL_PASSWORD: 'x' }).metricsListen).toBeNull();
    expect(loadConfig({ ESL_PASSWORD: 'x', METRICS_PORT: '9100' }).metricsListen).toEqual({ host: '127.0.0.1', port: 9100 });
    expect(loadConfig({ ESL_PASSWORD: 'x', METRICS_PORT: '9100', METRICS_HOST: '10.0.0.5' }).metricsListen).toEqual({ host: '10.0.0.5', port: 9100 });
    expect(() => loadConfig({ ESL_PASSWORD: 'x', METRICS_HOST: '10.0.0.5' })).toThrow(/METRICS_PORT/);
    expect(() => loadConfig({ ESL_PASSWORD: 'x', METRICS_PORT: 'nine' })).toThrow(/METRICS_PORT/);
    expect(() => loadConfig({ ESL_PASSWORD: 'x', METRICS_PORT: '70000' })).toThrow(/METRICS_PORT/);
    expect(() => loadConfig({ ESL_PASSWORD: 'x', METRICS_PORT: '8080' })).toThrow(/METRICS_PORT.*HTTP_PORT/);
    expect(() => loadConfig({ ESL_PASSWORD: 'x', METRICS_PORT: '9100', METRICS_HOST: 'a b' })).toThrow(/METRICS_HOST/);
  });
});
