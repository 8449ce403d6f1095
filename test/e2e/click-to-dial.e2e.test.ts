/**
 * Click-to-dial end to end: the app's HTTP API → BullMQ → ESL → a real FreeSWITCH → sipp
 * phones, with real MariaDB and Redis. Checks what each phone really received on the wire.
 *
 * Skipped (with a warning) unless E2E_ESL_HOST is set; see test/e2e/README.md.
 */
import { startApp, type App } from '../../src/app';
import type { CallView } from '../../src/calls/types';
import { loadConfig } from '../../src/config';
import type { EslEvent } from '../../src/esl/event';
import { legUuid } from '../../src/flows/click-to-dial';
import { createLogger } from '../../src/logger';
import { TenantStore } from '../../src/stores/tenant-store';
import { callIdFor } from '../../src/calls/click-to-dial-request';
import { createTestDatabase } from '../support/mysql';
import { eslAddressFromEnv, sippHostFromEnv, sippPortBaseFromEnv, startPhone, type Phone, type PhoneOptions } from './support/sipp';
import { e2eControllerEnv, phoneDialStrings } from './support/controller-env';

const X = '700100000000001';
const WARNING_TONE = 'tone_stream://%(300,200,880);loops=2';
const esl = eslAddressFromEnv();
if (!esl) console.warn('E2E skipped: set E2E_ESL_HOST (and E2E_ESL_PORT, E2E_ESL_PASSWORD) to run test/e2e (see test/e2e/README.md).');
const describeE2e = esl ? describe : describe.skip;

/** Each case has its own A and B, each on its own sipp port (offset from the harness's ports). */
const CASES = ['fixed', 'passthrough', 'aBusy', 'bNoAnswer', 'cancel', 'bRefused', 'endWarning'] as const;
type Case = (typeof CASES)[number];
const base = sippPortBaseFromEnv() + 20;
const numbers = (c: Case) => {
  const i = CASES.indexOf(c);
  return {
    a: { number: `1380000${7000 + i}`, port: base + 2 * i },
    b: { number: `1390000${7000 + i}`, port: base + 2 * i + 1 },
  };
};

describeE2e('click-to-dial against a real FreeSWITCH with sipp phones', () => {
  let app: App;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let key: string;
  let tenantId: string;
  let baseUrl: string;
  const phones: Phone[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    const host = sippHostFromEnv();
    const overrides = phoneDialStrings(host, CASES.flatMap((c) => Object.values(numbers(c))));
    // B's channel cannot be created: FreeSWITCH's error endpoint refuses it as sofia does an unusable gateway or profile
    overrides[numbers('bRefused').b.number] = 'error/DESTINATION_OUT_OF_ORDER';
    const config = loadConfig(e2eControllerEnv(esl!, db.url, overrides, {
      OUTBOUND_SOCKET_PORT: '0',
      B_FAILED_PROMPT: 'tone_stream://%(500,500,480,620);loops=1',
      // The passthrough case: the operator allows it for the platform and for this tenant.
      PASSTHROUGH_ALLOWED: 'true',
      CALL_END_WARNING_TONE: WARNING_TONE,
    }));
    app = await startApp(config, createLogger('warn'));
    const tenants = new TenantStore(db.pool);
    const tenant = await tenants.create({ name: 'e2e', defaultX: X, passthroughAllowed: true });
    await app.bindings.importNumbers(tenant.id, [{ x: X, area: '010' }]);
    key = (await tenants.createApiKey(tenant.id, 'e2e')).key;
    tenantId = tenant.id;
    const addr = app.http.server.address();
    baseUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  }, 60_000);

  afterEach(async () => {
    await Promise.all(phones.splice(0).map((p) => p.stop()));
  });

  afterAll(async () => {
    await app?.stop();
    await db?.drop();
  });

  async function phone(p: { number: string; port: number }, opts: Omit<PhoneOptions, 'number' | 'port'>): Promise<Phone> {
    const started = await startPhone({ ...p, ...opts });
    phones.push(started);
    return started;
  }

  /** Every route called here answers a CallView (errors aside, which the tests check by status). */
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

  async function cdrRows(callId: string): Promise<number> {
    const [rows] = await db.pool.query('SELECT COUNT(*) AS n FROM cdrs WHERE call_id = ?', [callId]);
    return (rows as Array<{ n: number }>)[0]!.n;
  }

  async function neverInvited(p: Phone): Promise<void> {
    await expect(p.receivedInvite(1500)).rejects.toThrow();
  }

  it('fixed: both phones see only X, the call connects, one CDR with the talk time', async () => {
    const { a, b } = numbers('fixed');
    const phoneA = await phone(a, { behaviour: 'answer', ringMs: 300 });
    const phoneB = await phone(b, { behaviour: 'answer-then-bye', ringMs: 500, talkMs: 3000 });
    const { status, body } = await api('POST', '/v1/calls', { requestId: 'e2e-fixed', a: a.number, b: b.number, displayMode: 'fixed' });
    expect(status).toBe(202);

    const toA = await phoneA.receivedInvite(15_000);
    const toB = await phoneB.receivedInvite(15_000);
    for (const invite of [toA, toB]) {
      expect(invite.from).toContain(`"${X}" <sip:${X}@`);
      expect(invite.remotePartyId ?? '').toContain(X);
      for (const real of [a.number, b.number]) {
        expect(invite.from).not.toContain(real);
        expect(invite.remotePartyId ?? '').not.toContain(real);
        expect(invite.pAssertedIdentity ?? '').not.toContain(real);
      }
    }
    const done = await waitForCall(body.id);
    expect(done.cdr).toMatchObject({ result: 'connected', hangupSide: 'b', x: X });
    expect(Math.abs(done.cdr!.talkSeconds - 3)).toBeLessThanOrEqual(1);
    expect(await cdrRows(body.id)).toBe(1);
  }, 60_000);

  it('passthrough: A sees X, B sees A asserted in P-Asserted-Identity', async () => {
    const { a, b } = numbers('passthrough');
    const phoneA = await phone(a, { behaviour: 'answer' });
    const phoneB = await phone(b, { behaviour: 'answer-then-bye', talkMs: 1000 });
    const { body } = await api('POST', '/v1/calls', { requestId: 'e2e-pass', a: a.number, b: b.number, displayMode: 'passthrough' });
    const toA = await phoneA.receivedInvite(15_000);
    const toB = await phoneB.receivedInvite(15_000);
    expect(toA.from).toContain(`"${X}" <sip:${X}@`);
    expect(toA.from).not.toContain(b.number);
    expect(toB.from).toContain(`<sip:${a.number}@`);
    expect(toB.pAssertedIdentity).toContain(a.number);
    expect(toB.remotePartyId).toBeUndefined();
    const done = await waitForCall(body.id);
    expect(done.result).toBe('connected');
    expect(await cdrRows(body.id)).toBe(1);
  }, 60_000);

  it('A busy: a_busy, and B is never rung', async () => {
    const { a, b } = numbers('aBusy');
    await phone(a, { behaviour: 'busy' });
    const phoneB = await phone(b, { behaviour: 'answer' });
    const { body } = await api('POST', '/v1/calls', { requestId: 'e2e-abusy', a: a.number, b: b.number });
    const done = await waitForCall(body.id);
    expect(done.cdr).toMatchObject({ result: 'a_busy', talkSeconds: 0, hangupCause: 'USER_BUSY' });
    await neverInvited(phoneB);
    expect(await cdrRows(body.id)).toBe(1);
  }, 60_000);

  it('B does not answer: b_no_answer after the ring timeout, A hears the prompt and is hung up', async () => {
    const { a, b } = numbers('bNoAnswer');
    const phoneA = await phone(a, { behaviour: 'answer' });
    const phoneB = await phone(b, { behaviour: 'no-answer' });
    const { body } = await api('POST', '/v1/calls', { requestId: 'e2e-bnoans', a: a.number, b: b.number, ringTimeoutBSeconds: 5 });
    await phoneB.receivedInvite(15_000);
    const done = await waitForCall(body.id);
    expect(done.cdr).toMatchObject({ result: 'b_no_answer', talkSeconds: 0 });
    // A's scenario answers and then waits for the switch's BYE: exit 0 means it got it.
    expect((await phoneA.waitForExit(20_000)).code).toBe(0);
    expect((await phoneB.waitForExit(20_000)).code).toBe(0);
    expect(await cdrRows(body.id)).toBe(1);
  }, 60_000);

  it('B refused by the switch (DESTINATION_OUT_OF_ORDER): failed with that cause as soon as A has heard the prompt', async () => {
    const { a, b } = numbers('bRefused');
    const phoneA = await phone(a, { behaviour: 'answer' });
    const phoneB = await phone(b, { behaviour: 'answer' });
    const { body } = await api('POST', '/v1/calls', { requestId: 'e2e-brefused', a: a.number, b: b.number });
    await phoneA.receivedInvite(15_000);
    const done = await waitForCall(body.id);
    expect(done.cdr).toMatchObject({ result: 'failed', hangupCause: 'DESTINATION_OUT_OF_ORDER', hangupSide: 'platform', talkSeconds: 0 });
    // A was reached (not a switch that refused A itself), heard the prompt (1 s) and got the switch's BYE
    expect(done.cdr!.aAnswerAt).not.toBeNull();
    expect(done.cdr!.endedAt - done.cdr!.aAnswerAt!).toBeLessThan(5000);
    expect((await phoneA.waitForExit(20_000)).code).toBe(0);
    await neverInvited(phoneB);
    expect(await cdrRows(body.id)).toBe(1);
  }, 60_000);

  it('cancel while A rings: cancelled, A gets CANCEL, B is never rung', async () => {
    const { a, b } = numbers('cancel');
    const phoneA = await phone(a, { behaviour: 'no-answer' });
    const phoneB = await phone(b, { behaviour: 'answer' });
    const { body } = await api('POST', '/v1/calls', { requestId: 'e2e-cancel', a: a.number, b: b.number, ringTimeoutASeconds: 60 });
    await phoneA.receivedInvite(15_000);
    await waitForCall(body.id, (c) => c.legs.a.state === 'ringing');
    const cancel = await api('POST', `/v1/calls/${body.id}/cancel`);
    expect(cancel.status).toBe(200);
    const done = await waitForCall(body.id);
    expect(done.cdr).toMatchObject({ result: 'cancelled', hangupSide: 'platform', talkSeconds: 0 });
    expect((await phoneA.waitForExit(20_000)).code).toBe(0);
    await neverInvited(phoneB);
    expect(await cdrRows(body.id)).toBe(1);
  }, 60_000);

  it('the warning before the maximum duration: both legs play the tone, and the call still ends at the cap', async () => {
    const { a, b } = numbers('endWarning');
    await phone(a, { behaviour: 'answer', ringMs: 300 });
    await phone(b, { behaviour: 'answer', ringMs: 300 });
    const requestId = 'e2e-end-warning';
    const callId = callIdFor(tenantId, requestId);
    const played = new Map<string, EslEvent>();
    const unsubscribe = ['a', 'b'].map((leg) => {
      const uuid = legUuid(callId, leg as 'a' | 'b', 1);
      return app.esl.onChannel(uuid, (e) => {
        if (e.name === 'CHANNEL_EXECUTE_COMPLETE' && e.header('Application') === 'playback') played.set(leg, e);
      });
    });
    try {
      const { status } = await api('POST', '/v1/calls', { requestId, a: a.number, b: b.number, maxDurationSeconds: 10, endWarningSeconds: 4 });
      expect(status).toBe(202);
      const done = await waitForCall(callId, (c) => c.cdr !== null, 40_000);
      expect(done.cdr).toMatchObject({ result: 'connected', hangupCause: 'ALLOTTED_TIMEOUT', hangupSide: 'platform' });
      expect(Math.abs(done.cdr!.talkSeconds - 10)).toBeLessThanOrEqual(1);
      for (const leg of ['a', 'b']) {
        expect(played.get(leg)?.header('Application-Data')).toBe(WARNING_TONE);
        expect(played.get(leg)?.header('Application-Response')).toBe('FILE PLAYED');
      }
      // Played before the end, about endWarningSeconds before it (the switch counts whole seconds).
      const playedAt = Number(played.get('b')!.header('Event-Date-Timestamp')) / 1000;
      expect(done.cdr!.endedAt - playedAt).toBeGreaterThan(1000);
      expect(done.cdr!.endedAt - playedAt).toBeLessThan(5000);
    } finally {
      for (const off of unsubscribe) off();
    }
  }, 60_000);
});
