/**
 * Proves the e2e harness itself against a real FreeSWITCH: the event socket answers with the
 * configured password, and every sipp phone behaviour works with an originated leg. The
 * INVITE check is the core privacy assertion of the whole suite in its simplest form: the
 * callee sees the privacy number X and nothing else.
 *
 * Skipped (with a warning) unless E2E_ESL_HOST is set; see test/e2e/README.md.
 */
import { RawEsl } from './support/raw-esl';
import { Phone, eslAddressFromEnv, sippPortBaseFromEnv, startPhone } from './support/sipp';
import { waitUntil } from '../support/wait';

const X = '700100000000001';
const A = '13800000001';
const esl = eslAddressFromEnv();

if (!esl) {
  console.warn(
    'E2E skipped: set E2E_ESL_HOST (and E2E_ESL_PORT, E2E_ESL_PASSWORD) to a FreeSWITCH started with ' +
      'freeswitch-conf/ to run test/e2e (see test/e2e/README.md).',
  );
}

const describeE2e = esl ? describe : describe.skip;

describeE2e('e2e harness: real FreeSWITCH + sipp phones', () => {
  const addr = esl ?? { host: '', port: 0, password: '' };
  const base = esl ? sippPortBaseFromEnv() : 0;
  let client: RawEsl;
  const phones: Phone[] = [];

  beforeAll(async () => {
    client = await RawEsl.connect(addr);
  });

  afterEach(async () => {
    await Promise.all(phones.splice(0).map((p) => p.stop()));
  });

  afterAll(() => {
    client?.close();
  });

  /** originate with X as caller ID to a phone and park the leg; returns the api reply. */
  async function originate(phone: Phone, extraVars = ''): Promise<string> {
    const vars = `origination_caller_id_number=${X},origination_caller_id_name=${X}${extraVars ? `,${extraVars}` : ''}`;
    return client.api(`originate {${vars}}${phone.dialString('internal')} &park()`, 30_000);
  }

  async function phone(opts: Parameters<typeof startPhone>[0]): Promise<Phone> {
    const p = await startPhone(opts);
    phones.push(p);
    return p;
  }

  it('refuses a wrong event-socket password and accepts the configured one', async () => {
    await expect(RawEsl.connect({ ...addr, password: `${addr.password}-wrong` })).rejects.toThrow(/-ERR invalid/);
    expect(await client.api('status')).toMatch(/is ready/);
  });

  it('an originated leg shows the privacy number X, and only X, in the INVITE', async () => {
    const p = await phone({ number: A, port: base, behaviour: 'answer', ringMs: 200 });
    const reply = await originate(p);
    expect(reply).toMatch(/^\+OK [0-9a-f-]{36}$/);
    const uuid = reply.slice(4);

    const invite = await p.receivedInvite();
    expect(invite.requestUri).toBe(`sip:${A}@${p.host}:${p.port}`);
    // From: "700100000000001" <sip:700100000000001@...>;tag=...
    expect(invite.from).toMatch(new RegExp(`<sip:${X}@`));
    expect(invite.from).toMatch(new RegExp(`^"${X}"`));
    // No other number anywhere in From (not A's, not FreeSWITCH defaults like 0000000000).
    expect(invite.from.match(/\d{6,}/g)).toEqual([X, X]);
    // Sofia's default caller-id-type adds Remote-Party-ID; if present it must carry X too.
    for (const h of [invite.remotePartyId, invite.pAssertedIdentity]) {
      if (h !== undefined) expect(h.match(/\d{6,}/g)?.every((n) => n === X)).toBe(true);
    }

    expect(await client.api(`uuid_kill ${uuid} NORMAL_CLEARING`)).toMatch(/^\+OK/);
    expect(await p.waitForExit()).toEqual({ code: 0, signal: null });
  });

  it('busy phone: originate fails with USER_BUSY', async () => {
    const p = await phone({ number: A, port: base + 1, behaviour: 'busy' });
    expect(await originate(p)).toBe('-ERR USER_BUSY');
    expect((await p.receivedInvite()).from).toContain(X);
    expect(await p.waitForExit()).toEqual({ code: 0, signal: null });
  });

  it('ringing phone that never answers: originate times out (NO_ANSWER) and the phone sees CANCEL', async () => {
    const p = await phone({ number: A, port: base + 2, behaviour: 'no-answer' });
    expect(await originate(p, 'originate_timeout=2')).toBe('-ERR NO_ANSWER');
    expect(await p.waitForExit()).toEqual({ code: 0, signal: null });
    expect(p.log()).toMatch(/^CANCEL sip:/m);
  });

  it('phone that answers and hangs up: the phone sends BYE after the talk time', async () => {
    const p = await phone({ number: A, port: base + 3, behaviour: 'answer-then-bye', ringMs: 100, talkMs: 500 });
    const started = Date.now();
    const reply = await originate(p);
    expect(reply).toMatch(/^\+OK /);
    expect(await p.waitForExit()).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(p.log()).toMatch(/^BYE sip:/m);
    // The switch took the BYE: the leg is gone (once the switch has handled it).
    await waitUntil('the leg to be gone', async () => (await client.api(`uuid_exists ${reply.slice(4)}`)) === 'false', 5000, 50);
    expect(await client.api(`uuid_exists ${reply.slice(4)}`)).toBe('false');
  });
});
