/**
 * The switch fleet against two simulated switches (fs1, fs2): click-to-dial spread over both, a
 * switch that dies mid-call settles its call failed once (one CDR, the cause recorded, never
 * dialled again) while new calls go to the other, a drained switch takes nothing new and finishes its
 * own, calls to X are taken from either switch, and the controller serves with no switch up.
 */
import type { RowDataPacket } from 'mysql2/promise';
import { legUuid } from '../../src/flows/click-to-dial';
import { LiveCallStore } from '../../src/stores/live-calls';
import { SwitchStore } from '../../src/stores/switch-store';
import { createRedis } from '../../src/stores/redis';
import type { FreeSwitchSimulator } from '../simulator';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';

/** Which simulated switch rang `number` (exactly one must have). */
function switchOf(sys: TestSystem, number: string): number {
  const rang = sys.sims.map((s, i) => (s.invitesTo(number).length > 0 ? i : -1)).filter((i) => i >= 0);
  if (rang.length !== 1) throw new Error(`${number} was rung by ${rang.length} switches`);
  return rang[0] as number;
}

async function cdrRows(sys: TestSystem, callId: string): Promise<RowDataPacket[]> {
  const [rows] = await sys.app.pool.query<RowDataPacket[]>('SELECT result, hangup_cause FROM cdrs WHERE call_id = ?', [callId]);
  return rows;
}

async function placedOn(sys: TestSystem, callId: string, attempt = 1): Promise<string | null> {
  const redis = createRedis('redis://127.0.0.1:6379');
  try {
    return await new LiveCallStore(redis, sys.env.REDIS_PREFIX as string).placementOf(callId, attempt);
  } finally {
    await redis.quit();
  }
}

describe('click-to-dial over a fleet of two switches', () => {
  let sys: TestSystem;
  beforeEach(async () => {
    sys = await startTestSystem({ switches: 2, env: { SWITCH_LOST_SECONDS: '1', SWITCHES_REFRESH_SECONDS: '1' } });
  });
  afterEach(async () => {
    await sys.stop();
  });

  it('spreads calls over both switches, each number rung once, on the switch its call is recorded on', async () => {
    const calls: Array<{ id: string; a: string; b: string }> = [];
    for (let i = 0; i < 12; i++) {
      const a = `138000910${String(i).padStart(2, '0')}`;
      const b = `139000910${String(i).padStart(2, '0')}`;
      for (const s of sys.sims) {
        s.setPhone(a, { answer: 'answer', ringMs: 200 });
        s.setPhone(b, { answer: 'answer', hangupAfterMs: 400 });
      }
      const call = await sys.placeCall({ requestId: `spread-${i}`, a, b });
      calls.push({ id: call.id, a, b });
    }
    const perSwitch = [0, 0];
    for (const c of calls) {
      const done = await sys.waitForCall(c.id, (v) => v.cdr !== null, 30_000);
      expect(done.result).toBe('connected');
      const on = switchOf(sys, c.a);
      expect(switchOf(sys, c.b)).toBe(on);
      expect((sys.sims[on] as FreeSwitchSimulator).invitesTo(c.a)).toHaveLength(1);
      expect(await placedOn(sys, c.id)).toBe(`fs${on + 1}`);
      perSwitch[on] = (perSwitch[on] ?? 0) + 1;
    }
    expect(perSwitch[0]).toBeGreaterThan(0);
    expect(perSwitch[1]).toBeGreaterThan(0);
    expect((perSwitch[0] ?? 0) + (perSwitch[1] ?? 0)).toBe(12);
  });

  it('a switch killed mid-call: its call is settled failed once with the cause; later calls go to the other switch', async () => {
    const a = '13800092001';
    const b = '13900092001';
    for (const s of sys.sims) {
      s.setPhone(a, { answer: 'answer' });
      s.setPhone(b, { answer: 'answer', hangupAfterMs: 600_000 });
    }
    const call = await sys.placeCall({ requestId: 'dies-1', a, b });
    await sys.waitForCall(call.id, (c) => c.state === 'bridged', 15_000);
    const dead = switchOf(sys, a);
    const killedAt = Date.now();
    await (sys.sims[dead] as FreeSwitchSimulator).stop();

    const settled = await sys.waitForCall(call.id, (c) => c.cdr !== null, 15_000);
    expect(settled.result).toBe('failed');
    expect(settled.cdr?.hangupCause).toBe('SWITCH_LOST');
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    await new Promise((r) => setTimeout(r, 1500)); // room for a second (wrong) settlement or redial to show
    const rows = await cdrRows(sys, call.id);
    expect(rows).toHaveLength(1);
    // never dialled again: no second attempt anywhere
    const alive = sys.sims[1 - dead] as FreeSwitchSimulator;
    expect(alive.invitesTo(a)).toHaveLength(0);
    expect(alive.originateCount(legUuid(call.id, 'a', 2))).toBe(0);

    const readyz = await fetch(`http://127.0.0.1:${String((sys.app.http.server.address() as { port: number }).port)}/readyz`);
    const body = (await readyz.json()) as { ready: boolean; checks: { esl: boolean; switches: Record<string, boolean> } };
    expect(body.checks.esl).toBe(true);
    expect(body.checks.switches).toEqual({ [`fs${dead + 1}`]: false, [`fs${2 - dead}`]: true });

    for (let i = 0; i < 4; i++) {
      const a2 = `1380009210${String(i)}`;
      const b2 = `1390009210${String(i)}`;
      alive.setPhone(a2, { answer: 'answer' });
      alive.setPhone(b2, { answer: 'answer', hangupAfterMs: 300 });
      const next = await sys.placeCall({ requestId: `after-${i}`, a: a2, b: b2 });
      expect((await sys.waitForCall(next.id, (c) => c.cdr !== null, 15_000)).result).toBe('connected');
      expect(alive.invitesTo(a2)).toHaveLength(1);
    }
  });

  it('a drained switch takes no new calls and finishes its own', async () => {
    const a = '13800093001';
    const b = '13900093001';
    for (const s of sys.sims) {
      s.setPhone(a, { answer: 'answer' });
      s.setPhone(b, { answer: 'answer', hangupAfterMs: 60_000 }); // 3 s at the test's time scale
    }
    const call = await sys.placeCall({ requestId: 'drain-1', a, b });
    await sys.waitForCall(call.id, (c) => c.state === 'bridged', 15_000);
    const drained = switchOf(sys, a);
    const name = `fs${drained + 1}`;
    await new SwitchStore(sys.app.pool).setState(name, 'draining');
    await waitUntil('the drain applied', () => Promise.resolve(sys.app.fleet.get(name)?.state === 'draining'), 5000);

    for (let i = 0; i < 4; i++) {
      const a2 = `1380009310${String(i)}`;
      const b2 = `1390009310${String(i)}`;
      for (const s of sys.sims) {
        s.setPhone(a2, { answer: 'answer' });
        s.setPhone(b2, { answer: 'answer', hangupAfterMs: 200 });
      }
      const next = await sys.placeCall({ requestId: `drain-new-${i}`, a: a2, b: b2 });
      expect((await sys.waitForCall(next.id, (c) => c.cdr !== null, 15_000)).result).toBe('connected');
      expect(switchOf(sys, a2)).toBe(1 - drained);
    }
    const own = await sys.waitForCall(call.id, (c) => c.cdr !== null, 15_000);
    expect(own.result).toBe('connected');
    expect(await cdrRows(sys, call.id)).toHaveLength(1);
  });

  it('takes calls to X from either switch of the fleet', async () => {
    for (const [i, s] of sys.sims.entries()) {
      const caller = `1380009400${String(i)}`;
      const uuid = await s.connectOutbound(sys.app.outboundAddress, { callerNumber: caller, destinationNumber: '700100000009999' });
      // No binding: the controller answers the caller with the not-in-service prompt and a hangup (it acted on the call).
      await waitUntil(`switch ${String(i + 1)}'s call to X handled`, () => Promise.resolve(s.seenByCaller(caller).some((m) => m.message === 'BYE' || m.message.startsWith('404'))), 10_000);
      expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('the fleet follows the switches table', () => {
  it('a switch added with the CLI joins: calls reach it, /metrics reports each switch, a cancel goes to the call’s switch', async () => {
    const sys = await startTestSystem({ env: { SWITCHES_REFRESH_SECONDS: '1', ADMIN_TOKEN: 'metrics-token-0123456789' } });
    const { FreeSwitchSimulator: Simulator } = await import('../simulator');
    const extra = new Simulator({ timeScale: 0.05 });
    try {
      const addr = await extra.start();
      await new SwitchStore(sys.app.pool).add('fs-extra', addr.host, addr.port);
      await waitUntil('fs-extra connected', () => Promise.resolve(sys.app.fleet.get('fs-extra')?.connected === true), 10_000);
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const a = `1380009700${String(i)}`;
        const b = `1390009700${String(i)}`;
        for (const s of [sys.sim, extra]) {
          s.setPhone(a, { answer: 'answer' });
          s.setPhone(b, { answer: 'answer', hangupAfterMs: 200 });
        }
        ids.push((await sys.placeCall({ requestId: `joined-${i}`, a, b })).id);
      }
      for (const id of ids) expect((await sys.waitForCall(id, (c) => c.cdr !== null, 15_000)).result).toBe('connected');
      expect(extra.originateCount()).toBeGreaterThan(0);
      expect(sys.sim.originateCount()).toBeGreaterThan(0);

      const port = (sys.app.http.server.address() as { port: number }).port;
      const metrics = await (await fetch(`http://127.0.0.1:${String(port)}/metrics`, { headers: { authorization: 'Bearer metrics-token-0123456789' } })).text();
      expect(metrics).toContain('numguard_switch_up{switch="default"} 1');
      expect(metrics).toContain('numguard_switch_up{switch="fs-extra"} 1');
      const placed = (name: string): number => Number(new RegExp(`numguard_switch_calls_placed_total\\{switch="${name}"\\} (\\d+)`).exec(metrics)?.[1] ?? -1);
      expect(placed('default') + placed('fs-extra')).toBe(6);
      const rungOnExtra = [0, 1, 2, 3, 4, 5].filter((i) => extra.invitesTo(`1380009700${String(i)}`).length > 0).length;
      expect(placed('fs-extra')).toBe(rungOnExtra);

      // A cancel kills the legs on the switch the call was placed on, and only there.
      const a = '13800097100';
      for (const s of [sys.sim, extra]) s.setPhone(a, { answer: 'no-answer', ringMs: 60_000 });
      const call = await sys.placeCall({ requestId: 'cancel-on-owner', a, b: '13900097100' });
      await waitUntil('A ringing', () => [sys.sim, extra].some((s) => s.invitesTo(a).length > 0), 10_000);
      const owner = sys.sim.invitesTo(a).length > 0 ? sys.sim : extra;
      const other = owner === sys.sim ? extra : sys.sim;
      expect((await sys.api('POST', `/v1/calls/${call.id}/cancel`)).status).toBe(200);
      expect((await sys.waitForCall(call.id, (c) => c.cdr !== null, 15_000)).result).toBe('cancelled');
      const killsOf = (s: FreeSwitchSimulator): number => s.received.filter((l) => l.includes(`uuid_kill ${legUuid(call.id, 'a', 1)}`)).length;
      expect(killsOf(owner)).toBeGreaterThan(0);
      expect(killsOf(other)).toBe(0);

      // removed from the table: it leaves the fleet
      await new SwitchStore(sys.app.pool).remove('fs-extra');
      await waitUntil('fs-extra gone', () => Promise.resolve(sys.app.fleet.get('fs-extra') === undefined), 10_000);
    } finally {
      await sys.stop();
      await extra.stop();
    }
  });
});

describe('a controller whose switches are all down', () => {
  it('serves the API, /livez, /readyz (saying which switch is down) and refuses new calls with 503', async () => {
    const sys = await startTestSystem({ noSwitchWait: true, env: { SWITCHES: 'fs1@127.0.0.1:1,fs2@127.0.0.1:2', SWITCH_LOST_SECONDS: '1' } });
    try {
      const port = (sys.app.http.server.address() as { port: number }).port;
      expect((await fetch(`http://127.0.0.1:${String(port)}/livez`)).status).toBe(200);
      const readyz = await fetch(`http://127.0.0.1:${String(port)}/readyz`);
      expect(readyz.status).toBe(503);
      expect(((await readyz.json()) as { checks: unknown }).checks).toMatchObject({ esl: false, switches: { fs1: false, fs2: false } });
      // bindings need no switch
      expect((await sys.api('POST', '/v1/bindings', { mode: 'axb', a: '13800095001', b: '13900095001', x: '700100000000001' })).status).toBe(201);
      const refused = await sys.api<{ error: { code: string } }>('POST', '/v1/calls', { requestId: 'none-up', a: '13800095002', b: '13900095002' });
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('switch_at_capacity');
    } finally {
      await sys.stop();
    }
  });
});
