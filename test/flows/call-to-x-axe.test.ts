import type { RowDataPacket } from 'mysql2/promise';
import type { KeyedDigits } from '../simulator/types';
import { startTestSystem, type TestSystem } from '../support/system';

const xs = (i: number) => `7001000${String(950 + i).padStart(8, '0')}`;

/**
 * Calls to an AXE X (X plus an extension) through the outbound socket: the caller hears the prompt,
 * keys the extension (play_and_get_digits, one retry), and reaches B, who sees only X; a wrong or
 * missing extension is refused through the refusal path (not-in-service prompt, UNALLOCATED_NUMBER),
 * its CDR X's tenant's with result wrong_extension. Simulator, real MariaDB and Redis.
 */
describe('calls to an AXE X (simulator, real MariaDB and Redis)', () => {
  let sys: TestSystem;

  beforeAll(async () => {
    sys = await startTestSystem({ env: { EXTENSION_TIMEOUT_MS: '1000', EXTENSION_DIGIT_TIMEOUT_MS: '500' } });
    await sys.app.bindings.importNumbers(sys.tenantId, Array.from({ length: 6 }, (_, i) => ({ x: xs(i), area: '010' })));
  });
  afterAll(async () => {
    await sys?.stop();
  });

  /** A call to X, its CDR, and the apps the controller ran on it (the calls here run one at a time). */
  async function callX(caller: string, x: string, keys?: KeyedDigits): Promise<{ uuid: string; cdr: RowDataPacket; ran: (app: string) => string[] }> {
    const from = sys.sim.receivedRaw.length;
    const { uuid, cdr } = await sys.callX({ callerNumber: caller, destinationNumber: x, ...(keys ? { keys } : {}) }, 30_000);
    const commands = sys.sim.receivedRaw.slice(from);
    const ran = (app: string) => commands.filter((c) => c.includes(`execute-app-name: ${app}\n`)).map((c) => /execute-app-arg: (.*)/.exec(c)?.[1] ?? '');
    return { uuid, cdr, ran };
  }

  it('the right extension (RFC 2833 or SIP INFO) reaches B, who sees only X; B dialling X reaches A by the caller pair', async () => {
    const a = '13800009501';
    const b = '13900009501';
    const x = xs(0);
    const { binding } = await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axe', a, b, x, extension: '2468', userData: 'parcel 9' });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 300 });
    sys.sim.setPhone(a, { answer: 'answer', hangupAfterMs: 300 });

    const viaRtp = await callX(a, x, { via: 'rfc2833', tries: ['2468'] });
    expect(viaRtp.cdr).toMatchObject({ result: 'connected', kind: 'axe', binding_id: binding.id, tenant_id: sys.tenantId, x, a, b, user_data: 'parcel 9' });
    // The caller heard the prompt as early media and was asked for exactly 4 digits, with one retry.
    expect(viaRtp.ran('play_and_get_digits')[0]).toMatch(/^4 4 2 1000 # tone_stream:\/\/\S+ silence_stream:\/\/250 ng_extension \\d\{4\} 500$/);
    const toB = sys.sim.invitesTo(b)[0]!;
    expect(toB).toMatchObject({ fromUser: x, fromDisplay: x });
    expect(`${toB.remotePartyId} ${toB.pAssertedIdentity}`).not.toContain(a);

    // Someone else, keying by SIP INFO: reaches B too (the extension is the key, not the caller).
    const other = await callX('13700009501', x, { via: 'info', tries: ['2468'] });
    expect(other.cdr).toMatchObject({ result: 'connected', kind: 'axe', b });
    expect(sys.sim.invitesTo(b)[1]).toMatchObject({ fromUser: x, fromDisplay: x });

    // B dials X: no prompt, A is reached by the caller pair, and sees X.
    const back = await callX(b, x);
    expect(back.cdr).toMatchObject({ result: 'connected', kind: 'axe', a: b, b: a });
    expect(back.ran('play_and_get_digits')).toEqual([]);
    expect(sys.sim.invitesTo(a)[0]).toMatchObject({ fromUser: x, fromDisplay: x });
  });

  it('nothing keyed at the first prompt, the extension at the retry: connected', async () => {
    const b = '13900009502';
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axe', b, x: xs(1), extension: '1357' });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 300 });
    const { cdr } = await callX('13700009502', xs(1), { via: 'rfc2833', tries: ['', '1357'] });
    expect(cdr).toMatchObject({ result: 'connected', kind: 'axe', b });
  });

  it('a wrong or missing extension hears "not in service", is hung up, reaches nobody, and is X’s tenant’s refused call', async () => {
    const b = '13900009503';
    const x = xs(2);
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axe', b, x, extension: '9999' });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 300 });
    const before = sys.sim.originateCount();
    for (const keys of [
      { via: 'rfc2833', tries: ['1111', '2222'] },
      { via: 'info', tries: ['99', ''] },
      { via: 'rfc2833', tries: [] },
    ] as KeyedDigits[]) {
      const { cdr, ran } = await callX('13700009503', x, keys);
      expect(cdr).toMatchObject({ result: 'wrong_extension', kind: 'axe', tenant_id: sys.tenantId, binding_id: null, hangup_cause: 'UNALLOCATED_NUMBER', talk_seconds: 0, b: '' });
      expect(ran('playback')).toEqual(['tone_stream://%(500,500,480,620);loops=2']);
      expect(sys.sim.seenByCaller('13700009503').filter((m) => m.message === '200 OK')).toEqual([]);
    }
    expect(sys.sim.originateCount()).toBe(before);
    expect(sys.sim.invitesTo(b)).toHaveLength(0);
  });

  it('an unbound AXE binding never routes: its extension is a wrong one', async () => {
    const b = '13900009504';
    const { binding } = await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axe', b, x: xs(3), extension: '5555' });
    await sys.app.bindings.unbind(sys.tenantId, binding.id);
    const { cdr } = await callX('13700009504', xs(3), { via: 'rfc2833', tries: ['5555'] });
    expect(cdr).toMatchObject({ result: 'wrong_extension', binding_id: null });
    expect(sys.sim.invitesTo(b)).toHaveLength(0);
  });

  it('the OpenAPI document describes the AXE mode and its settings', async () => {
    const doc = (await sys.app.http.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, { anyOf?: Array<{ const?: string }> }> } }> } }>>;
    }>();
    const create = doc.paths['/v1/bindings']!.post!.requestBody!.content['application/json']!.schema.properties;
    expect(JSON.stringify(create.mode)).toContain('axe');
    expect(create.extension).toBeDefined();
    expect(Object.keys(doc.paths['/v1/axe/settings']!)).toEqual(expect.arrayContaining(['get', 'patch']));
  });
});
