/**
 * Calls to X end to end: a sipp phone dials the privacy number on the switch's external
 * profile; the dialplan hands the call to the controller's outbound socket (127.0.0.1:8084, as
 * freeswitch-conf/ sets it); the controller routes it by (caller, X) from Redis.
 *
 * Skipped (with a warning) unless E2E_ESL_HOST is set; see test/e2e/README.md.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { startApp, type App } from '../../src/app';
import type { EslEvent } from '../../src/esl/event';
import { EslOutboundServer, type OutboundSession } from '../../src/esl/outbound-server';
import { CALL_TO_X_EVENTS } from '../../src/flows/call-to-x';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { MediaCatalogue } from '../../src/stores/media-catalogue';
import { CdrStore } from '../../src/stores/cdr-store';
import { TenantStore } from '../../src/stores/tenant-store';
import { RawEsl } from './support/raw-esl';
import { createTestDatabase } from '../support/mysql';
import { deletePrefixKeys, testRedisPrefix } from '../support/redis';
import { redisKeys } from '../../src/stores/keys';
import { createRedis } from '../../src/stores/redis';
import { SCENARIO_DIR, eslAddressFromEnv, sippHostFromEnv, sippPortBaseFromEnv, startPhone, type Phone } from './support/sipp';
import { e2eControllerEnv, phoneDialStrings } from './support/controller-env';

const X = '700100000000001';
const esl = eslAddressFromEnv();
if (!esl) console.warn('E2E skipped: set E2E_ESL_HOST (and E2E_ESL_PORT, E2E_ESL_PASSWORD) to run test/e2e (see test/e2e/README.md).');
const describeE2e = esl ? describe : describe.skip;

const base = sippPortBaseFromEnv() + 40;
const host = sippHostFromEnv();
const A = { number: '13800009001', port: base };
const recordingsDir = mkdtempSync(path.join(tmpdir(), 'e2e-recordings-'));
const B = { number: '13900009001', port: base + 1 };
/** B of the binding-options case: a phone that answers and never hangs up. */
const B2 = { number: '13900009006', port: base + 2 };
/** The agent and the customer of the callback case, and the click-to-dial X their tenant shows. */
const AGENT = { number: '13800009007', port: base + 3 };
const CUSTOMER = { number: '13900009007', port: base + 4 };
const CALLBACK_X = '700100000000002';
/** The parties of the Redis-loss case. */
const LOSS_A = '13800009012';
const LOSS_B = { number: '13900009012', port: base + 5 };
/** This controller's Redis prefix: the Redis-loss case deletes its keys, and no one else's. */
const redisPrefix = testRedisPrefix();

/** A phone that calls X; resolves when the call is over with sipp's exit code and what it saw. */
function dialX(caller: string, port: number, x = X): Promise<{ code: number | null; log: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'uac-'));
  const messageFile = path.join(dir, 'messages.log');
  const switchSip = process.env.E2E_SWITCH_SIP ?? `${esl!.host}:5080`;
  const child = spawn(
    process.env.E2E_SIPP_BIN ?? 'sipp',
    [switchSip, '-sf', path.join(SCENARIO_DIR, 'uac-call-x.xml'), '-s', x, '-key', 'caller', caller, '-i', host, '-p', String(port),
      '-m', '1', '-nostdin', '-timeout', '40', '-trace_msg', '-message_file', messageFile],
    { cwd: dir, stdio: 'ignore' },
  );
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      let log = '';
      try {
        log = readFileSync(messageFile, 'utf8');
      } catch {
        /* no messages */
      }
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, log });
    });
  });
}

describeE2e('calls to X against a real FreeSWITCH with sipp phones', () => {
  let app: App;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let tenantId: string;
  const phones: Phone[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startApp(
      loadConfig(e2eControllerEnv(esl!, db.url, phoneDialStrings(host, [A, B, B2, AGENT, CUSTOMER, LOSS_B]), {
        REDIS_PREFIX: redisPrefix,
        OUTBOUND_SOCKET_HOST: '127.0.0.1',
        OUTBOUND_SOCKET_PORT: process.env.E2E_OUTBOUND_SOCKET_PORT ?? '8084',
        NOT_IN_SERVICE_PROMPT: 'tone_stream://%(500,500,480,620);loops=1',
        RECORDINGS_DIR: recordingsDir,
      })),
      createLogger('warn'),
    );
    tenantId = (await new TenantStore(db.pool).create({ name: 'e2e-x' })).id;
    await app.bindings.importNumbers(tenantId, [{ x: X, area: '010' }]);
    await new MediaCatalogue(db.pool).add({ id: 'e2e-beep', kind: 'tone', source: '%(300,0,440);loops=1', description: 'e2e announcement' });
  }, 60_000);

  afterEach(async () => {
    await Promise.all(phones.splice(0).map((p) => p.stop()));
  });
  afterAll(async () => {
    await app?.stop();
    await db?.drop();
  });

  async function lastCdr(caller: string): Promise<RowDataPacket> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const [rows] = await db.pool.query<RowDataPacket[]>('SELECT * FROM cdrs WHERE a = ? ORDER BY id DESC LIMIT 1', [caller]);
      if (rows[0]) return rows[0];
      if (Date.now() > deadline) throw new Error(`no CDR for a call from ${caller}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  const responses = (log: string) => log.split(/\n(?=SIP\/2\.0 |INVITE |ACK |BYE )/).filter((m) => m.startsWith('SIP/2.0'));

  it('A dials X: B is called from X only, A never sees B’s number, one CDR', async () => {
    const bindingB = await app.bindings.bind({ tenantId, mode: 'axb', a: A.number, b: B.number, x: X });
    const phoneB = await startPhone({ ...B, behaviour: 'answer-then-bye', ringMs: 500, talkMs: 2000 });
    phones.push(phoneB);
    // What the switch sends on the call's socket: only what the call reads (CALL_TO_X_EVENTS), not all of myevents.
    const socketEvents: string[] = [];
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the server as `this`
    const emit = EslOutboundServer.prototype.emit;
    const spy = jest.spyOn(EslOutboundServer.prototype, 'emit').mockImplementation(function (this: EslOutboundServer, name: string | symbol, ...args: unknown[]) {
      if (name === 'session') (args[0] as OutboundSession).on('event', (e: EslEvent) => socketEvents.push(e.name));
      return emit.call(this, name, ...args);
    });
    const call = await dialX(A.number, base + 10).finally(() => spy.mockRestore());
    expect(call.code).toBe(0);
    const invite = await phoneB.receivedInvite(1000);
    expect(invite.from).toContain(`"${X}" <sip:${X}@`);
    expect(`${invite.from} ${invite.remotePartyId ?? ''} ${invite.pAssertedIdentity ?? ''}`).not.toContain(A.number);
    const toA = responses(call.log);
    expect(toA.some((r) => r.startsWith('SIP/2.0 200'))).toBe(true);
    for (const r of toA) expect(r).not.toContain(B.number);
    const cdr = await lastCdr(A.number);
    expect(cdr).toMatchObject({ result: 'connected', kind: 'axb', x: X, b: B.number, binding_id: bindingB.binding.id });
    expect(Math.abs(Number(cdr.talk_seconds) - 2)).toBeLessThanOrEqual(1);
    expect(socketEvents).toEqual(expect.arrayContaining(['CHANNEL_BRIDGE', 'CHANNEL_HANGUP', 'CHANNEL_HANGUP_COMPLETE']));
    // The socket app may park the call before the switch has read `nixevent` (sent with `myevents`): CHANNEL_PARK may come.
    expect(socketEvents.filter((name) => !CALL_TO_X_EVENTS.includes(name) && name !== 'CHANNEL_PARK')).toEqual([]);
  }, 60_000);

  it('B dials X and reaches A, who sees X', async () => {
    const phoneA = await startPhone({ ...A, behaviour: 'answer-then-bye', talkMs: 1000 });
    phones.push(phoneA);
    const call = await dialX(B.number, base + 11);
    expect(call.code).toBe(0);
    const invite = await phoneA.receivedInvite(1000);
    expect(invite.from).toContain(`"${X}" <sip:${X}@`);
    expect(invite.from).not.toContain(B.number);
    expect(await lastCdr(B.number)).toMatchObject({ result: 'connected', b: A.number });
  }, 60_000);

  it('an unbound caller hears the prompt as early media and gets 404 UNALLOCATED_NUMBER; nobody is called', async () => {
    const stranger = '13700009003';
    const call = await dialX(stranger, base + 12);
    expect(call.code).toBe(0);
    const toCaller = responses(call.log);
    expect(toCaller.some((r) => r.startsWith('SIP/2.0 183'))).toBe(true);
    expect(toCaller.some((r) => r.startsWith('SIP/2.0 200'))).toBe(false);
    const final = toCaller.find((r) => r.startsWith('SIP/2.0 404'));
    expect(final).toContain('UNALLOCATED_NUMBER');
    const cdr = await lastCdr(stranger);
    // reported to X's tenant (through the pool: there is no binding), listed with its result
    expect(cdr).toMatchObject({ result: 'unbound', talk_seconds: 0, tenant_id: tenantId, binding_id: null });
    const listed = await new CdrStore(db.pool).list(tenantId, { result: 'unbound' });
    expect(listed.items.map((c) => c.callId)).toContain(String(cdr.call_id));
  }, 60_000);

  it('a restricted direction and an expired binding are refused the same way', async () => {
    await app.bindings.bind({ tenantId, mode: 'axb', a: '13800009004', b: '13900009004', x: X, restriction: 'a_to_b' });
    const restricted = await dialX('13900009004', base + 13);
    expect(responses(restricted.log).some((r) => r.startsWith('SIP/2.0 404'))).toBe(true);
    expect(await lastCdr('13900009004')).toMatchObject({ result: 'restricted' });

    const { binding } = await app.bindings.bind({ tenantId, mode: 'axb', a: '13800009005', b: '13900009005', x: X, ttlSeconds: 60 }, Date.now() - 61_000);
    const expired = await dialX('13800009005', base + 14);
    expect(responses(expired.log).some((r) => r.startsWith('SIP/2.0 404'))).toBe(true);
    expect(await lastCdr('13800009005')).toMatchObject({ result: 'expired', tenant_id: tenantId, binding_id: binding.id });
  }, 60_000);

  it('after a click-to-dial call, the customer redials X from the call log and reaches the agent (callback binding)', async () => {
    const tenant = await new TenantStore(db.pool).create({ name: 'e2e-callback', defaultX: CALLBACK_X });
    await app.bindings.importNumbers(tenant.id, [{ x: CALLBACK_X, area: '010' }]);
    const agentAnswers = await startPhone({ ...AGENT, behaviour: 'answer' });
    const customerAnswers = await startPhone({ ...CUSTOMER, behaviour: 'answer-then-bye', talkMs: 1000 });
    phones.push(agentAnswers, customerAnswers);
    const { call } = await app.service.create({ tenantId: tenant.id, actor: 'e2e' }, { requestId: 'e2e-callback', a: AGENT.number, b: CUSTOMER.number });
    expect((await customerAnswers.receivedInvite(15_000)).from).toContain(`"${CALLBACK_X}" <sip:${CALLBACK_X}@`);
    const deadline = Date.now() + 30_000;
    while (!('route' in (await app.routes.lookup(CALLBACK_X, CUSTOMER.number)))) {
      if (Date.now() > deadline) throw new Error('no callback route after the click-to-dial call');
      await new Promise((r) => setTimeout(r, 200));
    }
    await Promise.all(phones.splice(0).map((p) => p.stop()));

    const agentAgain = await startPhone({ ...AGENT, behaviour: 'answer-then-bye', talkMs: 1000 });
    phones.push(agentAgain);
    const redial = await dialX(CUSTOMER.number, base + 16, CALLBACK_X);
    expect(redial.code).toBe(0);
    const invite = await agentAgain.receivedInvite(1000);
    expect(invite.from).toContain(`"${CALLBACK_X}" <sip:${CALLBACK_X}@`);
    expect(invite.from).not.toContain(CUSTOMER.number);
    for (const r of responses(redial.log)) expect(r).not.toContain(AGENT.number);
    expect(await lastCdr(CUSTOMER.number)).toMatchObject({ result: 'connected', kind: 'callback', b: AGENT.number, x: CALLBACK_X });
    const [bindings] = await db.pool.query<RowDataPacket[]>("SELECT kind, state FROM bindings WHERE call_id = ?", [call.id]);
    expect(bindings).toEqual([expect.objectContaining({ kind: 'callback', state: 'active' })]);
  }, 90_000);

  it('binding options on the real switch: announcement, recording, and the maximum duration it enforces', async () => {
    const a = '13800009006';
    const b = B2;
    await app.bindings.bind({
      tenantId, mode: 'axb', a, b: b.number, x: X, record: true, maxDurationSeconds: 3,
      announcement: 'e2e-beep',
    });
    const phoneB = await startPhone({ ...b, behaviour: 'answer' }); // B would stay: the switch ends the call
    phones.push(phoneB);
    const started = Date.now();
    const call = await dialX(a, base + 15);
    expect(call.code).toBe(0);
    const toA = responses(call.log);
    // the announcement is early media before B is called: 183 first
    expect(toA.some((r) => r.startsWith('SIP/2.0 183'))).toBe(true);
    const cdr = await lastCdr(a);
    expect(cdr).toMatchObject({ result: 'connected', hangup_cause: 'ALLOTTED_TIMEOUT', hangup_side: 'platform' });
    expect(Number(cdr.talk_seconds)).toBeGreaterThanOrEqual(2);
    expect(Number(cdr.talk_seconds)).toBeLessThanOrEqual(4);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(String(cdr.recording_ref)).toContain(recordingsDir);
    expect(readFileSync(String(cdr.recording_ref)).length).toBeGreaterThan(44); // a WAV header and more
  }, 60_000);

  it('a hostile announcement runs nothing on the switch and plays nothing the operator did not register', async () => {
    const marker = path.join(mkdtempSync(path.join(tmpdir(), 'e2e-rce-')), 'marker');
    const hostile = `\${system(touch ${marker})}`;
    // Through the API: refused with a code, nothing stored.
    await expect(app.bindings.bind({ tenantId, mode: 'axb', a: '13800009010', b: B2.number, x: X, announcement: hostile })).rejects.toMatchObject({
      code: 'invalid_media_id',
    });
    // Planted straight into the route index (whoever can write Redis): the controller plays nothing of it.
    const caller = '13800009011';
    await app.routes.put({
      id: '00000000-0000-4000-8000-00000000e2e1', tenantId, kind: 'axb', x: X, a: caller, b: B2.number, expiresAt: Date.now() + 60_000,
      restriction: 'both', record: false, maxDurationSeconds: 3, announcement: hostile, allowList: [], userData: null,
    });
    const phoneB = await startPhone({ ...B2, behaviour: 'answer' });
    phones.push(phoneB);
    const call = await dialX(caller, base + 17);
    expect(call.code).toBe(0);
    expect(await lastCdr(caller)).toMatchObject({ result: 'connected' });
    // And the switch itself no longer runs API calls from inside variables (api-expansion off).
    const raw = await RawEsl.connect(esl!);
    try {
      await raw.api(`eval ${hostile}`);
    } finally {
      raw.close();
    }
    // Proving that no file appears takes time: a command run by the expansion would have written it by now.
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(marker)).toBe(false);
  }, 60_000);

  it('Redis lost every key of this controller (as in a restart without its data): a bound caller still reaches B, and /readyz is true again', async () => {
    await app.bindings.bind({ tenantId, mode: 'axb', a: LOSS_A, b: LOSS_B.number, x: X });
    const phoneB = await startPhone({ ...LOSS_B, behaviour: 'answer-then-bye', talkMs: 1000 });
    phones.push(phoneB);
    // The shared Redis is not flushed: only this controller's keys go (route index, its marker, queues).
    const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    try {
      expect(await deletePrefixKeys(redis, redisPrefix)).toBeGreaterThan(0);
      expect(await redis.exists(redisKeys(redisPrefix).routeIndexReady)).toBe(0);
    } finally {
      redis.disconnect();
    }
    const call = await dialX(LOSS_A, base + 18);
    expect(call.code).toBe(0);
    const invite = await phoneB.receivedInvite(1000);
    expect(invite.from).toContain(`"${X}" <sip:${X}@`);
    expect(await lastCdr(LOSS_A)).toMatchObject({ result: 'connected', b: LOSS_B.number });
    const deadline = Date.now() + 10_000;
    while ((await app.http.inject({ method: 'GET', url: '/readyz' })).statusCode !== 200) {
      if (Date.now() > deadline) throw new Error('/readyz not true after the route index was lost');
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 60_000);

  it("a click-to-dial presenting another tenant's X is refused before the switch is asked for anything", async () => {
    const other = await new TenantStore(db.pool).create({ name: 'e2e-other' });
    const phoneA = await startPhone({ ...AGENT, behaviour: 'answer' });
    phones.push(phoneA);
    await expect(
      app.service.create({ tenantId: other.id, actor: 'e2e' }, { requestId: 'e2e-foreign-x', a: AGENT.number, b: CUSTOMER.number, x: X }),
    ).rejects.toMatchObject({ code: 'x_not_in_pool', field: 'x' });
    await expect(phoneA.receivedInvite(3000)).rejects.toThrow();
    const [calls] = await db.pool.query<RowDataPacket[]>('SELECT id FROM calls WHERE tenant_id = ?', [other.id]);
    expect(calls).toHaveLength(0);
  }, 30_000);
});
