import type { RowDataPacket } from 'mysql2/promise';
import { deterministicUuid } from '../../src/domain/ids';
import { KEEP_OWN_FIGURES_HOOK, keepFiguresHook } from '../../src/flows/switch-figures';
import { MediaCatalogue } from '../../src/stores/media-catalogue';
import { startTestSystem, type TestSystem } from '../support/system';

/**
 * No tenant string reaches the switch (issue: "media is chosen, never typed"). Every field a tenant
 * controls gets hostile values, the calls run against the simulator, and then every message the
 * switch received — inbound ESL and every outbound-socket session, headers and bodies — is read:
 * none may carry a marker, and none may hold anything the switch would expand.
 */
const MARK = 'pwn3d';
const HOSTILE = [
  `\${system(touch /tmp/${MARK})}`,
  `$\${base_dir}${MARK}`,
  `\${bgapi(originate sofia/gateway/carrier/${MARK} &park)}`,
  `{absolute_codec_string=${MARK}}`,
  `tone_stream://%(100,0,440);${MARK}`,
  `/etc/${MARK}.wav`,
  `../../${MARK}.wav`,
  `${MARK},origination_caller_id_number=13800000000`,
  `${MARK}\n\napi system id`,
  `ид-${MARK}`,
];

const xs = (i: number) => `7001000${String(700 + i).padStart(8, '0')}`;

describe('hostile input in every tenant field never reaches a switch command', () => {
  let sys: TestSystem;

  beforeAll(async () => {
    sys = await startTestSystem();
    await sys.app.bindings.importNumbers(sys.tenantId, Array.from({ length: 20 }, (_, i) => ({ x: xs(i), area: '010' })));
    await new MediaCatalogue(sys.app.pool).add({ id: 'welcome', kind: 'tone', source: '%(200,0,440);loops=1', description: 'a short beep' });
  });
  afterAll(async () => {
    await sys?.stop();
  });

  async function cdrOf(callId: string): Promise<RowDataPacket> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const [rows] = await sys.app.pool.query<RowDataPacket[]>('SELECT * FROM cdrs WHERE call_id = ?', [callId]);
      if (rows[0]) return rows[0];
      if (Date.now() > deadline) throw new Error(`no CDR for ${callId}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const callX = async (caller: string, x: string): Promise<RowDataPacket> =>
    cdrOf(deterministicUuid('call-to-x', await sys.sim.connectOutbound(sys.app.outboundAddress, { callerNumber: caller, destinationNumber: x })));

  it('a binding announcement is a catalogue id: hostile text is refused with a code, an unknown id too', async () => {
    for (const [i, announcement] of HOSTILE.entries()) {
      const res = await sys.api<{ error: { code: string; field: string; message: string } }>('POST', '/v1/bindings', {
        mode: 'axb', a: `1380000${String(7000 + i)}`, b: `1390000${String(7000 + i)}`, x: xs(0), announcement,
      });
      expect(res.status).toBe(400);
      expect(res.body.error.field).toBe('announcement');
      expect(res.body.error.code).toBe('invalid_media_id');
      expect(res.body.error.message).not.toContain(MARK);
    }
    const unknown = await sys.api<{ error: { code: string } }>('POST', '/v1/bindings', { mode: 'axb', a: '13800007100', b: '13900007100', x: xs(0), announcement: 'no-such-entry' });
    expect(unknown).toMatchObject({ status: 400, body: { error: { code: 'unknown_media', field: 'announcement' } } });

    const created = await sys.api<{ id: string }>('POST', '/v1/bindings', { mode: 'axb', a: '13800007101', b: '13900007101', x: xs(0) });
    expect(created.status).toBe(201);
    const patched = await sys.api<{ error: { code: string } }>('PATCH', `/v1/bindings/${created.body.id}`, { announcement: HOSTILE[0] });
    expect(patched).toMatchObject({ status: 400, body: { error: { code: 'invalid_media_id' } } });

    const listed = await sys.api<{ items: Array<{ id: string; kind: string }> }>('GET', '/v1/media');
    expect(listed.body.items).toEqual([{ id: 'welcome', kind: 'tone', description: 'a short beep' }]);
  });

  it('calls carrying hostile business data, hostile callers and a tampered route index send the switch nothing of it', async () => {
    const from = sys.sim.receivedRaw.length;

    // Click-to-dial: userData is free text the business may send; it goes to CDRs and webhooks, never to the switch.
    for (const [i, userData] of HOSTILE.entries()) {
      const a = `1380000${String(7200 + i)}`;
      const b = `1390000${String(7200 + i)}`;
      sys.sim.setPhone(a, { answer: 'answer', ringMs: 50 });
      sys.sim.setPhone(b, { answer: 'answer', ringMs: 50, hangupAfterMs: 100 });
      const call = await sys.placeCall({ requestId: `hostile-${i}`, a, b, userData: userData.replace(/\n/g, ' ') });
      expect((await sys.waitForCall(call.id)).result).toBe('connected');
    }
    // Fields that must be numbers or ids are refused at the door.
    for (const field of ['a', 'b', 'x', 'requestId'] as const) {
      const body = { requestId: 'hostile-fields', a: '13800007300', b: '13900007300', [field]: HOSTILE[0] };
      expect((await sys.api('POST', '/v1/calls', body)).status).toBe(400);
    }

    // Calls to X: a binding with a catalogue announcement and hostile userData; the caller reaches B.
    const a = '13800007400';
    const b = '13900007400';
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 100 });
    const bound = await sys.api<{ id: string }>('POST', '/v1/bindings', { mode: 'axb', a, b, x: xs(1), announcement: 'welcome', userData: HOSTILE[0] });
    expect(bound.status).toBe(201);
    expect(await callX(a, xs(1))).toMatchObject({ result: 'connected', user_data: HOSTILE[0] });

    // A caller ID chosen by whoever sends the INVITE: not a number, so no route, nothing dialled.
    const dialledBefore = sys.sim.originateCount();
    for (const caller of HOSTILE.slice(0, 3)) expect(await callX(caller, xs(1))).toMatchObject({ result: 'unbound' });
    expect(sys.sim.originateCount()).toBe(dialledBefore);

    // Whoever can write Redis writes a route with a hostile target and announcement: neither reaches the switch.
    const tampered = '13800007500';
    await sys.app.routes.put({
      id: '00000000-0000-4000-8000-000000000001', tenantId: sys.tenantId, kind: 'axb', x: xs(2), a: tampered, b: HOSTILE[0]!,
      expiresAt: Date.now() + 60_000, restriction: 'both', record: false, maxDurationSeconds: null, announcement: HOSTILE[0]!,
      allowList: [], userData: null,
    });
    expect(await callX(tampered, xs(2))).toMatchObject({ result: 'unbound' });
    const tamperedAnnouncement = '13800007501';
    await sys.app.routes.put({
      id: '00000000-0000-4000-8000-000000000002', tenantId: sys.tenantId, kind: 'axb', x: xs(3), a: tamperedAnnouncement, b: '13900007501',
      expiresAt: Date.now() + 60_000, restriction: 'both', record: false, maxDurationSeconds: null, announcement: HOSTILE[1]!,
      allowList: [], userData: null,
    });
    sys.sim.setPhone('13900007501', { answer: 'answer', hangupAfterMs: 100 });
    expect(await callX(tamperedAnnouncement, xs(3))).toMatchObject({ result: 'connected' });

    const sent = sys.sim.receivedRaw.slice(from);
    expect(sent.length).toBeGreaterThan(50);
    // The one expansion the platform asks for itself: the switch keeps a leg's own figures when it ends, for whichever
    // controller settles the call should this one die. A call to X sets it with uuid_setvar, keyed by the channel's uuid;
    // a click-to-dial's A carries it keyed by `${uuid}` in its originate variables and exports it to B (not in B's dial string).
    const setsHook = (m: string): boolean => {
      const uuid = /^api uuid_setvar (\S+) api_reporting_hook /.exec(m)?.[1];
      return uuid !== undefined && m.trimEnd() === `api uuid_setvar ${uuid} api_reporting_hook ${keepFiguresHook(uuid)}`;
    };
    const withoutOwnHook = (m: string): string => m.replace(`;api_reporting_hook=${KEEP_OWN_FIGURES_HOOK};`, ';');
    expect(sent.filter(setsHook).length).toBeGreaterThan(0);
    const originates = sent.filter((m) => m.startsWith('bgapi originate '));
    expect(originates.length).toBeGreaterThanOrEqual(HOSTILE.length);
    // Every click-to-dial originate carries the hook once, in A's `{}`, exported to B, and nothing else the switch would expand.
    for (const m of originates) {
      expect(m.match(/api_reporting_hook=/g)).toHaveLength(1);
      expect(m).toContain(`;export_vars=api_reporting_hook;`);
      expect(withoutOwnHook(m)).not.toContain('api_reporting_hook=');
      // B's dial string (the bridge's argument, A's last_arg when A ends) holds no `${`: the switch would log a CRIT line per call
      expect(/ m:\^:bridge:(.*)\^park inline/.exec(m)?.[1]).not.toContain('$');
    }
    const offending = sent.filter((m) => !setsHook(m)).map(withoutOwnHook).filter((m) => m.includes(MARK) || m.includes('${') || m.includes('$${') || m.includes('system('));
    expect(offending).toEqual([]);
    // The announcement that did play is the catalogue's own.
    const played = sent.filter((m) => /execute-app-name: playback/.test(m)).map((m) => /execute-app-arg: (.*)/.exec(m)?.[1]);
    expect(played).toContain('tone_stream://%(200,0,440);loops=1');
  });
});
