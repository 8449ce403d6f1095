/**
 * The switch fleet end to end: two real FreeSWITCH processes (same freeswitch-conf/, own addresses),
 * two controllers (startApp twice, sharing MariaDB and Redis), sipp phones. Click-to-dials spread over
 * both switches, nobody INVITEd twice; one switch killed (SIGKILL) mid-call: its call is settled
 * failed once (SWITCH_LOST), and the next calls connect on the other switch.
 *
 * Skipped unless E2E_FLEET_SWITCHES is set (`fs4@127.0.0.4:8021,fs5@127.0.0.5:8021`); the kill case
 * also needs E2E_FLEET_PID_FILES (each switch's freeswitch.pid, same order). See test/e2e/README.md.
 */
import { readFileSync } from 'node:fs';
import { startApp, type App } from '../../src/app';
import type { CallView } from '../../src/calls/types';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createRedis } from '../../src/stores/redis';
import { LiveCallStore } from '../../src/stores/live-calls';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase } from '../support/mysql';
import { testRedisPrefix } from '../support/redis';
import { BindingService } from '../../src/bindings/binding-service';
import { startControllerProcess, type ControllerProcess } from '../support/controller-process';
import { sippHostFromEnv, sippPortBaseFromEnv, startPhone, type Phone } from './support/sipp';

const X = '700100000000001';
const fleet = process.env.E2E_FLEET_SWITCHES?.trim();
if (!fleet) console.warn('E2E fleet skipped: set E2E_FLEET_SWITCHES (name@host:port,name@host:port) to run test/e2e/fleet.e2e.test.ts.');
const describeFleet = fleet ? describe : describe.skip;
const pidFiles = process.env.E2E_FLEET_PID_FILES?.split(',').map((f) => f.trim()).filter(Boolean) ?? [];
const itKill = pidFiles.length > 0 ? it : it.skip;

const switches = (fleet ?? '').split(',').filter(Boolean).map((entry) => {
  const [name, address] = entry.trim().split('@') as [string, string];
  return { name, host: address.split(':')[0] as string };
});

const SPREAD_CALLS = 8;
const base = sippPortBaseFromEnv();
/** Phones for call i: A on base + 2i, B on base + 2i + 1. */
const numbers = (i: number) => ({
  a: { number: `1380008${String(1000 + i)}`, port: base + 2 * i },
  b: { number: `1390008${String(1000 + i)}`, port: base + 2 * i + 1 },
});
const ALL = SPREAD_CALLS + 4;
/** The controller-kill case's phones, after every other case's. */
const KILL_CALL = ALL;

describeFleet('a fleet of two real switches and two controllers', () => {
  const apps: App[] = [];
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let key: string;
  let prefix: string;
  let baseUrl: string;
  const phones: Phone[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testRedisPrefix();
    const host = sippHostFromEnv();
    const overrides: Record<string, string> = {};
    for (let i = 0; i < ALL; i++) for (const p of Object.values(numbers(i))) overrides[p.number] = `sofia/internal/${p.number}@${host}:${String(p.port)}`;
    for (const nodeId of ['e2e-c1', 'e2e-c2']) {
      const config = loadConfig({
        SWITCHES: fleet,
        ESL_PASSWORD: process.env.E2E_ESL_PASSWORD ?? 'ClueCon',
        SWITCH_LOST_SECONDS: '3',
        NODE_ID: nodeId,
        MYSQL_URL: db.url,
        REDIS_PREFIX: prefix,
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: '0',
        OUTBOUND_SOCKET_PORT: '0',
        DIAL_STRING_OVERRIDES: JSON.stringify(overrides),
        CALLBACK_SWITCH_SHARE: '0',
        CALLBACK_MAX_WAIT_SECONDS: '0',
        CALLS_PER_CALLER_PER_MINUTE: '0',
        LOG_LEVEL: 'warn',
      });
      const app = await startApp(config, createLogger('warn'));
      apps.push(app);
      if (!(await app.fleet.whenConnected(15_000))) throw new Error('the controller did not connect to both switches');
    }
    const tenants = new TenantStore(db.pool);
    const tenant = await tenants.create({ name: 'e2e-fleet', defaultX: X });
    await apps[0]!.bindings.importNumbers(tenant.id, [{ x: X, area: '010' }]);
    key = (await tenants.createApiKey(tenant.id, 'e2e')).key;
    const addr = apps[0]!.http.server.address();
    baseUrl = `http://127.0.0.1:${String(typeof addr === 'object' && addr ? addr.port : 0)}`;
  }, 90_000);

  afterEach(async () => {
    await Promise.all(phones.splice(0).map((p) => p.stop()));
  });

  afterAll(async () => {
    for (const app of apps) await app.stop();
    await db?.drop();
  });

  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: CallView }> {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as CallView };
  }

  async function waitForCall(id: string, until: (c: CallView) => boolean = (c) => c.cdr !== null, timeoutMs = 40_000): Promise<CallView> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { body } = await api('GET', `/v1/calls/${id}`);
      if (until(body)) return body;
      if (Date.now() > deadline) throw new Error(`call did not get there: ${JSON.stringify(body)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async function cdrCount(callId: string): Promise<number> {
    const [rows] = await db.pool.query('SELECT COUNT(*) AS n FROM cdrs WHERE call_id = ?', [callId]);
    return (rows as Array<{ n: number }>)[0]!.n;
  }

  /** The switch that sent a phone its INVITE (the Via's address). */
  function switchThatRang(raw: string): string {
    const via = /^Via:\s*SIP\/2\.0\/UDP\s+([^:;\s]+)/im.exec(raw)?.[1];
    const sw = switches.find((s) => s.host === via);
    if (!sw) throw new Error(`INVITE from an unknown switch ${String(via)}`);
    return sw.name;
  }

  const invites = (p: Phone): number => (p.log().match(/^INVITE sip:/gm) ?? []).length;

  async function placedOn(callId: string): Promise<string | null> {
    const redis = createRedis('redis://127.0.0.1:6379');
    try {
      return await new LiveCallStore(redis, prefix).placementOf(callId, 1);
    } finally {
      await redis.quit();
    }
  }

  it('click-to-dials spread over both switches, each on the switch its call records, nobody INVITEd twice', async () => {
    const calls: Array<{ id: string; a: Phone; b: Phone }> = [];
    for (let i = 0; i < SPREAD_CALLS; i++) {
      const { a, b } = numbers(i);
      const phoneA = await startPhone({ ...a, behaviour: 'answer', ringMs: 200 });
      const phoneB = await startPhone({ ...b, behaviour: 'answer-then-bye', ringMs: 200, talkMs: 1000 });
      phones.push(phoneA, phoneB);
      const res = await api('POST', '/v1/calls', { requestId: `fleet-${String(i)}`, a: a.number, b: b.number });
      expect(res.status).toBe(202);
      calls.push({ id: res.body.id, a: phoneA, b: phoneB });
    }
    const perSwitch = new Map<string, number>();
    for (const c of calls) {
      const done = await waitForCall(c.id);
      expect(done.result).toBe('connected');
      const rangA = switchThatRang((await c.a.receivedInvite()).raw);
      expect(switchThatRang((await c.b.receivedInvite()).raw)).toBe(rangA);
      expect(await placedOn(c.id)).toBe(rangA);
      expect(invites(c.a)).toBe(1);
      expect(invites(c.b)).toBe(1);
      expect(await cdrCount(c.id)).toBe(1);
      perSwitch.set(rangA, (perSwitch.get(rangA) ?? 0) + 1);
    }
    expect([...perSwitch.keys()].sort()).toEqual(switches.map((s) => s.name).sort());
  }, 120_000);

  itKill('a switch killed mid-call: its call settled failed once; the next calls connect on the other switch', async () => {
    const { a, b } = numbers(SPREAD_CALLS);
    const phoneA = await startPhone({ ...a, behaviour: 'answer', ringMs: 200 });
    const phoneB = await startPhone({ ...b, behaviour: 'answer', ringMs: 200 });
    phones.push(phoneA, phoneB);
    const res = await api('POST', '/v1/calls', { requestId: 'fleet-kill', a: a.number, b: b.number });
    await waitForCall(res.body.id, (c) => c.state === 'bridged');
    const dead = switchThatRang((await phoneA.receivedInvite()).raw);
    const pidFile = pidFiles[switches.findIndex((s) => s.name === dead)];
    process.kill(Number(readFileSync(pidFile as string, 'utf8').trim()), 'SIGKILL');
    const killedAt = Date.now();

    const settled = await waitForCall(res.body.id, (c) => c.cdr !== null, 30_000);
    expect(settled.result).toBe('failed');
    expect(settled.cdr?.hangupCause).toBe('SWITCH_LOST');
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await cdrCount(res.body.id)).toBe(1);
    expect(invites(phoneA)).toBe(1);

    for (let i = SPREAD_CALLS + 1; i < SPREAD_CALLS + 3; i++) {
      const n = numbers(i);
      const pa = await startPhone({ ...n.a, behaviour: 'answer', ringMs: 200 });
      const pb = await startPhone({ ...n.b, behaviour: 'answer-then-bye', ringMs: 200, talkMs: 500 });
      phones.push(pa, pb);
      const next = await api('POST', '/v1/calls', { requestId: `fleet-after-${String(i)}`, a: n.a.number, b: n.b.number });
      expect(next.status).toBe(202);
      expect((await waitForCall(next.body.id)).result).toBe('connected');
      expect(switchThatRang((await pa.receivedInvite()).raw)).not.toBe(dead);
    }
  }, 120_000);
});

describeFleet('a controller killed mid-call on a fleet of real switches', () => {
  const controllers: ControllerProcess[] = [];
  const phones: Phone[] = [];
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let key: string;

  afterAll(async () => {
    await Promise.all(phones.map((p) => p.stop()));
    await Promise.all(controllers.map((c) => c.kill()));
    await db?.drop();
  });

  it('the other controller writes its one CDR within 15 s of the kill, from the switch the call is on', async () => {
    db = await createTestDatabase();
    const host = sippHostFromEnv();
    const { a, b } = { a: { number: '13800089001', port: base + 2 * KILL_CALL }, b: { number: '13900089001', port: base + 2 * KILL_CALL + 1 } };
    const overrides = { [a.number]: `sofia/internal/${a.number}@${host}:${String(a.port)}`, [b.number]: `sofia/internal/${b.number}@${host}:${String(b.port)}` };
    const env: Record<string, string> = {
      SWITCHES: fleet ?? '',
      ESL_PASSWORD: process.env.E2E_ESL_PASSWORD ?? 'ClueCon',
      MYSQL_URL: db.url,
      REDIS_PREFIX: testRedisPrefix(),
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      OUTBOUND_SOCKET_PORT: '0',
      DIAL_STRING_OVERRIDES: JSON.stringify(overrides),
      CALLBACK_SWITCH_SHARE: '0',
      CALLBACK_MAX_WAIT_SECONDS: '0',
      CALLS_PER_CALLER_PER_MINUTE: '0',
    };
    // CALLBACK_LOCK_SECONDS as shipped.
    for (const id of ['e2e-k1', 'e2e-k2']) controllers.push(await startControllerProcess({ ...env, NODE_ID: id }, 60_000));
    const tenants = new TenantStore(db.pool);
    const tenant = await tenants.create({ name: 'e2e-kill', defaultX: X });
    await new BindingService(db.pool).importNumbers(tenant.id, [{ x: X, area: '010' }]);
    key = (await tenants.createApiKey(tenant.id, 'e2e')).key;
    const url = `http://127.0.0.1:${String(controllers[0]!.httpPort)}`;

    const phoneA = await startPhone({ ...a, behaviour: 'answer', ringMs: 200 });
    const phoneB = await startPhone({ ...b, behaviour: 'answer-then-bye', ringMs: 200, talkMs: 4000 });
    phones.push(phoneA, phoneB);
    const res = await fetch(`${url}/v1/calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ requestId: 'kill-controller', a: a.number, b: b.number }),
    });
    const call = (await res.json()) as CallView;
    const deadline = Date.now() + 30_000;
    let owner: ControllerProcess | undefined;
    while (!owner && Date.now() < deadline) {
      owner = controllers.find((c) => c.logs.some((l) => l.callId === call.id && l.msg === 'bridged'));
      if (!owner) await new Promise((r) => setTimeout(r, 100));
    }
    if (!owner) throw new Error('no controller bridged the call');
    const survivor = controllers.find((c) => c !== owner)!;
    const killedAt = Date.now();
    await owner.kill();

    const surviving = `http://127.0.0.1:${String(survivor.httpPort)}`;
    let done: CallView | undefined;
    while (Date.now() < killedAt + 30_000) {
      const view = (await (await fetch(`${surviving}/v1/calls/${call.id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as CallView;
      if (view.cdr) {
        done = view;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const tookMs = Date.now() - killedAt;
    console.info(`takeover: the CDR of a call whose controller was SIGKILLed was written ${String(tookMs)} ms after the kill`);
    expect(done?.result).toBe('connected');
    expect(tookMs).toBeLessThan(15_000);
    expect(survivor.logs.some((l) => l.callId === call.id && l.msg === 'resuming an attempt that was already started')).toBe(true);
    expect((phoneA.log().match(/^INVITE sip:/gm) ?? []).length).toBe(1);
    expect((phoneB.log().match(/^INVITE sip:/gm) ?? []).length).toBe(1);
    const [rows] = await db.pool.query('SELECT COUNT(*) AS n FROM cdrs WHERE call_id = ?', [call.id]);
    expect((rows as Array<{ n: number }>)[0]!.n).toBe(1);
  }, 150_000);
});
