/**
 * The switch fleet end to end: two real FreeSWITCH processes (same freeswitch-conf/, own addresses),
 * Kamailio in front of them (kamailio-conf/, started here with a dispatcher list of the switches'
 * external profiles), two controllers sharing MariaDB and Redis, sipp phones and sipp as the carrier.
 *
 * - a controller SIGKILLed mid-call: the other writes its one CDR within 15 s;
 * - click-to-dials spread over both switches, nobody INVITEd twice;
 * - calls to X sent by the carrier to Kamailio land on both switches, and B sees only X;
 * - a switch SIGKILLed with click-to-dials live on it: each of them is settled `failed` once (cause
 *   recorded) within 15 s, nobody is dialled again; new click-to-dials connect on the other switch and
 *   Kamailio stops sending calls to X to the dead one.
 *
 * Skipped unless E2E_FLEET_SWITCHES is set (`fs4@127.0.0.4:8021,fs5@127.0.0.5:8021`) and kamailio and
 * sipp are installed; the switch-kill case also needs E2E_FLEET_PID_FILES (each switch's
 * freeswitch.pid, same order). Each switch's CONTROLLER_SOCKET_ADDRESS must be `<its address>:8084`
 * (E2E_FLEET_OUTBOUND_SOCKET_PORT): the first controller listens there on the first switch's address,
 * the second on the second's. See test/e2e/README.md.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { startApp, type App } from '../../src/app';
import type { CallView } from '../../src/calls/types';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createRedis } from '../../src/stores/redis';
import { LiveCallStore } from '../../src/stores/live-calls';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase } from '../support/mysql';
import { testRedisPrefix } from '../support/redis';
import { waitUntil } from '../support/wait';
import { BindingService } from '../../src/bindings/binding-service';
import { startControllerProcess, type ControllerProcess } from '../support/controller-process';
import { SCENARIO_DIR, sippHostFromEnv, sippPortBaseFromEnv, startPhone, type Phone } from './support/sipp';

const X = '700100000000001';
const fleet = process.env.E2E_FLEET_SWITCHES?.trim();
const installed = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const missing = ['kamailio', process.env.E2E_SIPP_BIN ?? 'sipp'].filter((bin) => !installed(bin));
if (!fleet) console.warn('E2E fleet skipped: set E2E_FLEET_SWITCHES (name@host:port,name@host:port) to run test/e2e/fleet.e2e.test.ts.');
else if (missing.length > 0) console.warn(`E2E fleet skipped: ${missing.join(' and ')} not installed (Debian packages kamailio, sip-tester).`);
const describeFleet = fleet && missing.length === 0 ? describe : describe.skip;
const pidFiles = process.env.E2E_FLEET_PID_FILES?.split(',').map((f) => f.trim()).filter(Boolean) ?? [];
const itKill = pidFiles.length > 0 ? it : it.skip;

const switches = (fleet ?? '').split(',').filter(Boolean).map((entry) => {
  const [name, address] = entry.trim().split('@') as [string, string];
  return { name, host: address.split(':')[0] as string };
});
/** Where each switch's CONTROLLER_SOCKET_ADDRESS points: port on the switch's own address. */
const OUTBOUND_SOCKET_PORT = process.env.E2E_FLEET_OUTBOUND_SOCKET_PORT ?? '8084';
/** Each switch's external (carrier) profile, FS_EXTERNAL_SIP_PORT. */
const EXTERNAL_SIP_PORT = Number(process.env.E2E_FLEET_EXTERNAL_SIP_PORT ?? '5080');
/** Kamailio's address (the carrier sends calls to X there). */
const [FRONT_HOST, FRONT_PORT] = (process.env.E2E_FLEET_FRONT ?? '127.0.0.7:5060').split(':') as [string, string];
const PROBE_INTERVAL_S = 1;
const PROBE_FAILURES = 2;
const SWITCH_SILENCE_MS = 1000;

const base = sippPortBaseFromEnv();
const host = sippHostFromEnv();
/** One party of a call, on its own sipp port: base + slot. */
const party = (prefix: string, slot: number) => ({ number: `${prefix}${String(1000 + slot)}`, port: base + slot });
/** The phones of a click-to-dial in slot pair (n, n + 1). */
const clickToDial = (slot: number) => ({ a: party('1380008', slot), b: party('1390008', slot + 1) });
/** A carrier's caller (sipp UAC on its own port) and the B its binding with X reaches. */
const callToX = (slot: number) => ({ caller: party('1380007', slot), b: party('1390007', slot + 1) });

// Port slots (base + n), every case its own: 110 ports from E2E_SIPP_PORT_BASE are enough.
const CONTROLLER_KILL_SLOT = 0;
const SPREAD_CALLS = 8;
const SPREAD_SLOT = 2;
const X_CALLS = 6;
const X_SLOT = SPREAD_SLOT + 2 * SPREAD_CALLS;
const LIVE_ON_KILL = 4;
const LIVE_SLOT = X_SLOT + 2 * X_CALLS;
const AFTER_KILL_CALLS = 2;
const AFTER_SLOT = LIVE_SLOT + 2 * LIVE_ON_KILL;
const X_AFTER_KILL = 3;
const X_AFTER_SLOT = AFTER_SLOT + 2 * AFTER_KILL_CALLS;
const SLOTS = X_AFTER_SLOT + 2 * X_AFTER_KILL;

const clickToDialSlots = [
  ...Array.from({ length: SPREAD_CALLS }, (_, i) => SPREAD_SLOT + 2 * i),
  ...Array.from({ length: LIVE_ON_KILL + AFTER_KILL_CALLS }, (_, i) => LIVE_SLOT + 2 * i),
];
const xSlots = [...Array.from({ length: X_CALLS }, (_, i) => X_SLOT + 2 * i), ...Array.from({ length: X_AFTER_KILL }, (_, i) => X_AFTER_SLOT + 2 * i)];

/** The switch that sent a phone its INVITE (the Via's address). */
function switchThatRang(raw: string): string {
  const via = /^Via:\s*SIP\/2\.0\/UDP\s+([^:;\s]+)/im.exec(raw)?.[1];
  const sw = switches.find((s) => s.host === via);
  if (!sw) throw new Error(`INVITE from an unknown switch ${String(via)}`);
  return sw.name;
}

/** A UDP socket on host:port once the process that held it (a switch just killed) has let it go. */
function bindWhenFree(address: string, port: number): Promise<Socket> {
  return waitUntil(`${address}:${String(port)} to be free`, () => new Promise<Socket | undefined>((done) => {
    const socket = createSocket('udp4');
    socket.once('error', () => socket.close(() => done(undefined)));
    socket.bind(port, address, () => done(socket));
  }), 10_000, 100);
}

const invites = (p: Phone): number => (p.log().match(/^INVITE sip:/gm) ?? []).length;

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
    const a = party('1380008', CONTROLLER_KILL_SLOT);
    const b = party('1390008', CONTROLLER_KILL_SLOT + 1);
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
      CONTROLLER_MAX_LOOP_DELAY_MS: '0',
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
    const owner = await waitUntil('a controller bridging the call', () =>
      controllers.find((c) => c.logs.some((l) => l.callId === call.id && l.msg === 'bridged')), 30_000, 100);
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
    expect(invites(phoneA)).toBe(1);
    expect(invites(phoneB)).toBe(1);
    const [rows] = await db.pool.query('SELECT COUNT(*) AS n FROM cdrs WHERE call_id = ?', [call.id]);
    expect((rows as Array<{ n: number }>)[0]!.n).toBe(1);
  }, 150_000);
});

describeFleet('a fleet of two real switches behind Kamailio, with two controllers', () => {
  const apps: App[] = [];
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let tenantId: string;
  let key: string;
  let prefix: string;
  let baseUrl: string;
  const phones: Phone[] = [];
  let kamailio: ChildProcess | undefined;
  const kamailioLog: string[] = [];
  let frontDir = '';

  beforeAll(async () => {
    if (SLOTS > 110) throw new Error(`the fleet e2e needs ${String(SLOTS)} sipp ports`);
    db = await createTestDatabase();
    prefix = testRedisPrefix();
    const overrides: Record<string, string> = {};
    const dialled = [...clickToDialSlots.flatMap((s) => Object.values(clickToDial(s))), ...xSlots.map((s) => callToX(s).b)];
    for (const p of dialled) overrides[p.number] = `sofia/internal/${p.number}@${host}:${String(p.port)}`;
    for (const [i, nodeId] of ['e2e-c1', 'e2e-c2'].entries()) {
      const config = loadConfig({
        SWITCHES: fleet,
        ESL_PASSWORD: process.env.E2E_ESL_PASSWORD ?? 'ClueCon',
        SWITCH_LOST_SECONDS: '3',
        NODE_ID: nodeId,
        MYSQL_URL: db.url,
        REDIS_PREFIX: prefix,
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: '0',
        // Switch i hands its calls to X to controller i (its CONTROLLER_SOCKET_ADDRESS).
        OUTBOUND_SOCKET_HOST: switches[i]!.host,
        OUTBOUND_SOCKET_PORT,
        DIAL_STRING_OVERRIDES: JSON.stringify(overrides),
        CALLBACK_SWITCH_SHARE: '0',
        CALLBACK_MAX_WAIT_SECONDS: '0',
        CONTROLLER_MAX_LOOP_DELAY_MS: '0',
        CALLS_PER_CALLER_PER_MINUTE: '0',
        LOG_LEVEL: 'warn',
      });
      const app = await startApp(config, createLogger('warn'));
      apps.push(app);
      if (!(await app.fleet.whenConnected(15_000))) throw new Error('the controller did not connect to both switches');
    }
    const tenants = new TenantStore(db.pool);
    tenantId = (await tenants.create({ name: 'e2e-fleet', defaultX: X })).id;
    await apps[0]!.bindings.importNumbers(tenantId, [{ x: X, area: '010' }]);
    for (const s of xSlots) {
      const { caller, b } = callToX(s);
      await apps[0]!.bindings.bind({ tenantId, mode: 'axb', a: caller.number, b: b.number, x: X });
    }
    key = (await tenants.createApiKey(tenantId, 'e2e')).key;
    const addr = apps[0]!.http.server.address();
    baseUrl = `http://127.0.0.1:${String(typeof addr === 'object' && addr ? addr.port : 0)}`;

    frontDir = mkdtempSync(join(tmpdir(), 'e2e-front-'));
    const list = join(frontDir, 'dispatcher.list');
    writeFileSync(list, switches.map((s) => `1 sip:${s.host}:${String(EXTERNAL_SIP_PORT)} 0 0 name=${s.name}\n`).join(''));
    kamailio = spawn('kamailio', ['-DD', '-E', '-f', resolve(__dirname, '../../kamailio-conf/kamailio.cfg'), '-Y', frontDir,
      '-A', `LISTEN=udp:${FRONT_HOST}:${FRONT_PORT}`,
      '-A', `DISPATCHER_LIST="${list}"`,
      '-A', 'CARRIER_NET="127.0.0.0/8"',
      '-A', `PROBE_INTERVAL=${String(PROBE_INTERVAL_S)}`,
      '-A', `PROBE_FAILURES=${String(PROBE_FAILURES)}`,
      '-A', `SWITCH_SILENCE_MS=${String(SWITCH_SILENCE_MS)}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    kamailio.stderr?.on('data', (d: Buffer) => kamailioLog.push(d.toString()));
    // Both switches answer the probes a moment after Kamailio starts.
    await new Promise((r) => setTimeout(r, 3 * PROBE_INTERVAL_S * 1000));
    if (kamailio.exitCode !== null) throw new Error(`kamailio exited: ${kamailioLog.join('').slice(-3000)}`);
  }, 120_000);

  afterEach(async () => {
    await Promise.all(phones.splice(0).map((p) => p.stop()));
    if (expect.getState().assertionCalls === 0) console.log(kamailioLog.join('').slice(-3000));
  });

  afterAll(async () => {
    kamailio?.kill('SIGTERM');
    for (const app of apps) await app.stop();
    await db?.drop();
    if (frontDir) rmSync(frontDir, { recursive: true, force: true });
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
    return waitUntil(`call ${id} to get there`, async () => {
      const { body } = await api('GET', `/v1/calls/${id}`);
      return until(body) ? body : undefined;
    }, timeoutMs, 200);
  }

  async function cdrCount(callId: string): Promise<number> {
    const [rows] = await db.pool.query('SELECT COUNT(*) AS n FROM cdrs WHERE call_id = ?', [callId]);
    return (rows as Array<{ n: number }>)[0]!.n;
  }

  async function placedOn(callId: string): Promise<string | null> {
    const redis = createRedis('redis://127.0.0.1:6379');
    try {
      return await new LiveCallStore(redis, prefix).placementOf(callId, 1);
    } finally {
      await redis.quit();
    }
  }

  /** Starts click-to-dial `slot`'s phones and places the call. */
  async function placeClickToDial(slot: number, b: { behaviour: 'answer' | 'answer-then-bye'; talkMs?: number }) {
    const n = clickToDial(slot);
    const phoneA = await startPhone({ ...n.a, behaviour: 'answer', ringMs: 200 });
    const phoneB = await startPhone({ ...n.b, ...b, ringMs: 200 });
    phones.push(phoneA, phoneB);
    const res = await api('POST', '/v1/calls', { requestId: `fleet-${String(slot)}`, a: n.a.number, b: n.b.number });
    expect(res.status).toBe(202);
    return { id: res.body.id, a: phoneA, b: phoneB };
  }

  /**
   * The carrier's caller of slot `slot` dials X at Kamailio and hangs up after a second of talk; resolves
   * once that call is over, with sipp's exit code, B's phone (which answered) and the caller's CDR.
   */
  async function callXThroughFront(slot: number): Promise<{ code: number | null; callerLog: string; b: Phone; cdr: RowDataPacket }> {
    const { caller, b } = callToX(slot);
    const phoneB = await startPhone({ ...b, behaviour: 'answer', ringMs: 200 });
    phones.push(phoneB);
    const dir = mkdtempSync(join(tmpdir(), 'e2e-carrier-'));
    const messages = join(dir, 'messages.log');
    const child = spawn(process.env.E2E_SIPP_BIN ?? 'sipp', [`${FRONT_HOST}:${FRONT_PORT}`, '-sf', join(SCENARIO_DIR, 'uac-call-x-via-front.xml'),
      '-s', X, '-key', 'caller', caller.number, '-i', host, '-p', String(caller.port), '-m', '1', '-d', '1000',
      '-nostdin', '-timeout', '40s', '-timeout_error', '-trace_msg', '-message_file', messages], { cwd: dir, stdio: 'ignore' });
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    const callerLog = existsSync(messages) ? readFileSync(messages, 'utf8') : '';
    rmSync(dir, { recursive: true, force: true });
    const cdr = await waitUntil(`the CDR of ${caller.number}'s call to X`, async () => {
      const [rows] = await db.pool.query<RowDataPacket[]>('SELECT * FROM cdrs WHERE a = ? ORDER BY id DESC LIMIT 1', [caller.number]);
      return rows[0];
    }, 20_000, 200);
    return { code, callerLog, b: phoneB, cdr };
  }

  /** A call to X went through: the caller got 200 OK, B was called showing X only, one connected CDR. */
  async function expectConnectedCallToX(slot: number, call: Awaited<ReturnType<typeof callXThroughFront>>): Promise<string> {
    const { caller, b } = callToX(slot);
    expect({ code: call.code, log: call.code === 0 ? '' : call.callerLog }).toEqual({ code: 0, log: '' });
    const invite = await call.b.receivedInvite(1000);
    expect(invite.from).toContain(`"${X}" <sip:${X}@`);
    expect(`${invite.from} ${invite.remotePartyId ?? ''} ${invite.pAssertedIdentity ?? ''}`).not.toContain(caller.number);
    expect(invites(call.b)).toBe(1);
    expect(call.cdr).toMatchObject({ result: 'connected', kind: 'axb', x: X, b: b.number });
    return switchThatRang(invite.raw);
  }

  it('click-to-dials spread over both switches, each on the switch its call records, nobody INVITEd twice', async () => {
    const calls = [];
    for (let i = 0; i < SPREAD_CALLS; i++) calls.push(await placeClickToDial(SPREAD_SLOT + 2 * i, { behaviour: 'answer-then-bye', talkMs: 1000 }));
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

  it('calls to X sent to Kamailio land on both switches; each reaches B showing X, one connected CDR', async () => {
    const perSwitch = new Map<string, number>();
    for (let i = 0; i < X_CALLS; i++) {
      const slot = X_SLOT + 2 * i;
      const sw = await expectConnectedCallToX(slot, await callXThroughFront(slot));
      perSwitch.set(sw, (perSwitch.get(sw) ?? 0) + 1);
    }
    console.info(`calls to X through Kamailio per switch: ${JSON.stringify(Object.fromEntries(perSwitch))}`);
    expect([...perSwitch.keys()].sort()).toEqual(switches.map((s) => s.name).sort());
  }, 180_000);

  itKill('a switch killed with click-to-dials live on it: each settled failed once within 15 s, nobody dialled again; new calls go to the other switch, Kamailio stops sending it calls to X', async () => {
    // B hangs up long after the kill: the calls on the surviving switch must end connected, untouched.
    const live = [];
    for (let i = 0; i < LIVE_ON_KILL; i++) live.push(await placeClickToDial(LIVE_SLOT + 2 * i, { behaviour: 'answer-then-bye', talkMs: 15_000 }));
    for (const c of live) await waitForCall(c.id, (v) => v.state === 'bridged');
    const on = await Promise.all(live.map(async (c) => ({ ...c, sw: switchThatRang((await c.a.receivedInvite()).raw) })));
    const count = (name: string) => on.filter((c) => c.sw === name).length;
    const dead = [...switches].sort((p, q) => count(q.name) - count(p.name))[0]!;
    const deadCalls = on.filter((c) => c.sw === dead.name);
    const otherCalls = on.filter((c) => c.sw !== dead.name);
    console.info(`live click-to-dials when ${dead.name} was killed: ${String(deadCalls.length)} on it, ${String(otherCalls.length)} on the other`);
    const pidFile = pidFiles[switches.indexOf(dead)];
    process.kill(Number(readFileSync(pidFile as string, 'utf8').trim()), 'SIGKILL');
    const killedAt = Date.now();

    // Whatever reaches the dead switch's SIP address from now on is seen here, and never answered.
    const deadSip = await bindWhenFree(dead.host, EXTERNAL_SIP_PORT);
    const reached = { invites: 0, options: 0 };
    deadSip.on('message', (msg) => {
      if (msg.toString().startsWith('INVITE ')) reached.invites++;
      if (msg.toString().startsWith('OPTIONS ')) reached.options++;
    });
    try {
      const settledMs: number[] = [];
      for (const c of deadCalls) {
        const settled = await waitForCall(c.id, (v) => v.cdr !== null, 30_000);
        settledMs.push(Date.now() - killedAt);
        expect(settled.result).toBe('failed');
        expect(settled.cdr?.hangupCause).toBe('SWITCH_LOST');
      }
      console.info(`switch kill: its calls were settled ${settledMs.join(', ')} ms after the kill`);
      for (const ms of settledMs) expect(ms).toBeLessThan(15_000);
      await new Promise((r) => setTimeout(r, 2000));
      for (const c of deadCalls) {
        expect(await cdrCount(c.id)).toBe(1);
        expect(invites(c.a)).toBe(1);
        expect(invites(c.b)).toBe(1);
      }

      for (let i = 0; i < AFTER_KILL_CALLS; i++) {
        const next = await placeClickToDial(AFTER_SLOT + 2 * i, { behaviour: 'answer-then-bye', talkMs: 500 });
        expect((await waitForCall(next.id)).result).toBe('connected');
        expect(switchThatRang((await next.a.receivedInvite()).raw)).not.toBe(dead.name);
      }

      // Once the probes of the dead switch have gone unanswered (each waits SWITCH_SILENCE_MS), Kamailio
      // sends it nothing but probes.
      await waitUntil('the dead switch left unanswered probes', () => reached.options > PROBE_FAILURES, 15_000, 100);
      await new Promise((r) => setTimeout(r, SWITCH_SILENCE_MS + 500));
      for (let i = 0; i < X_AFTER_KILL; i++) {
        const slot = X_AFTER_SLOT + 2 * i;
        expect(await expectConnectedCallToX(slot, await callXThroughFront(slot))).not.toBe(dead.name);
      }
      expect(reached.invites).toBe(0);

      for (const c of otherCalls) {
        const done = await waitForCall(c.id, (v) => v.cdr !== null, 30_000);
        expect(done.result).toBe('connected');
        expect(await cdrCount(c.id)).toBe(1);
      }
    } finally {
      await new Promise<void>((r) => deadSip.close(() => r()));
    }
  }, 180_000);
});
