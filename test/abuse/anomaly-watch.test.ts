import type { RowDataPacket } from 'mysql2/promise';
import { randomUUID } from 'node:crypto';
import type { CdrRecord } from '../../src/domain/call';
import { maskPhone } from '../../src/domain/phone-number';
import { RedisAbuseCounters } from '../../src/abuse/redis-counters';
import { TenantLimitsStore } from '../../src/abuse/tenant-limits';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';
import { startReceiver, type Receiver } from '../webhooks/receiver';

interface Flag {
  id: number;
  kind: string;
  number: string | null;
  x: string | null;
  evidence: Record<string, number>;
  action: { id: number; action: string; until: string | null; liftedAt: string | null } | null;
}
interface Action {
  id: number;
  flagId: number;
  action: string;
  x: string | null;
  number: string | null;
  until: string | null;
  liftedBy: string | null;
  active: boolean;
}

const ADMIN_TOKEN = 'admin-token-for-the-anomaly-tests';
const xOf = (i: number) => `7001000000002${String(i).padStart(2, '0')}`;

describe('anomaly watch and disposal (issue #10 item 6)', () => {
  let sys: TestSystem;
  let receiver: Receiver;
  const realNumbers = new Set<string>();
  const real = (n: string): string => {
    realNumbers.add(n);
    return n;
  };

  /** A finished call's record as the CDR writer hands it to the watch. */
  const cdr = (over: Partial<CdrRecord> & Pick<CdrRecord, 'a' | 'x'>): CdrRecord => {
    const now = Date.now();
    return {
      callId: randomUUID(),
      tenantId: sys.tenantId,
      kind: 'axb',
      bindingId: null,
      b: '',
      startedAt: now - 1000,
      aRingAt: null,
      aAnswerAt: null,
      bRingAt: null,
      bAnswerAt: null,
      endedAt: now,
      talkSeconds: 0,
      hangupCause: 'UNALLOCATED_NUMBER',
      hangupSide: 'platform',
      result: 'rate_limited',
      recordingRef: null,
      userData: null,
      ...over,
    };
  };
  const flags = async (query = ''): Promise<Flag[]> => (await sys.api<{ items: Flag[] }>('GET', `/v1/abuse/flags${query}`)).body.items;
  const poolState = async (x: string): Promise<string> => {
    const [rows] = await sys.app.pool.query<RowDataPacket[]>('SELECT state FROM pool_numbers WHERE x = ?', [x]);
    return String(rows[0]?.state);
  };
  /** A call to X through the switch simulator; resolves with its CDR row once written. */
  const callX = async (caller: string, x: string): Promise<RowDataPacket> => (await sys.callX({ callerNumber: caller, destinationNumber: x })).cdr;
  const setLimits = async (body: Record<string, unknown>): Promise<void> => {
    const res = await sys.api('PATCH', '/v1/abuse/limits', body);
    if (res.status !== 200) throw new Error(`PATCH /v1/abuse/limits: ${res.status} ${JSON.stringify(res.body)}`);
  };

  beforeAll(async () => {
    sys = await startTestSystem({ env: { ADMIN_TOKEN } });
    await sys.app.bindings.importNumbers(sys.tenantId, Array.from({ length: 8 }, (_, i) => ({ x: xOf(i), area: '010' })));
    receiver = await startReceiver('a-long-random-secret-123');
    expect((await sys.api('PUT', '/v1/webhook', { url: receiver.url, secret: 'a-long-random-secret-123', events: ['abuse.flagged'] })).status).toBe(200);
    // The simulator's talk time stretches on a loaded machine: every call under an hour is short here.
    await setLimits({ callerBurstCalls: 3, xBurstCalls: 4, shortCallMinCalls: 3, shortCallSharePercent: 60, shortCallSeconds: 3600 });
  });
  afterAll(async () => {
    await sys?.stop();
    await receiver?.close();
  });

  it('calls through the switch reach the watch from the CDR writer: a caller making many short calls is flagged twice over, warn only', async () => {
    const [a, b, x] = [real('13800041001'), real('13900041001'), xOf(0)];
    expect((await sys.api('POST', '/v1/bindings', { mode: 'axb', a, b, x })).status).toBe(201);
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 100 });
    for (let i = 0; i < 4; i++) expect(await callX(a, x)).toMatchObject({ result: 'connected' });
    const raised = await waitUntil('caller_burst and short_calls flags', async () => {
      const found = await flags(`?number=${a}`);
      return found.length >= 2 ? found : null;
    });
    expect(raised.map((f) => f.kind).sort()).toEqual(['caller_burst', 'short_calls']);
    const burst = raised.find((f) => f.kind === 'caller_burst')!;
    expect(burst).toMatchObject({ number: maskPhone(a), x, evidence: { calls: 4, threshold: 3, windowSeconds: 300 }, action: null });
    const short = raised.find((f) => f.kind === 'short_calls')!;
    expect(short.evidence).toMatchObject({ connectedCalls: 3, shortCalls: 3, sharePercent: 100, shortUnderSeconds: 3600 });
    // Warn only: nothing quarantined, nothing blocked.
    expect(await poolState(x)).toBe('enabled');
    expect(await callX(a, x)).toMatchObject({ result: 'connected' });
  });

  it('a caller burst is counted by call id (a redelivered CDR counts once) and flagged once per window', async () => {
    const caller = real('13800042001');
    const first = cdr({ a: caller, x: xOf(1) });
    for (const c of [first, first, cdr({ a: caller, x: xOf(1) }), cdr({ a: caller, x: xOf(1) })]) await sys.app.abuse.watch.observeCall(c);
    expect(await flags(`?number=${caller}`)).toEqual([]);
    await sys.app.abuse.watch.observeCall(cdr({ a: caller, x: xOf(1) }));
    await sys.app.abuse.watch.observeCall(cdr({ a: caller, x: xOf(1) }));
    const raised = await flags(`?number=${caller}`);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ kind: 'caller_burst', evidence: { calls: 4 } });
    // The audit log has it, as the platform's doing, with the number masked.
    const entry = await waitUntil('the abuse.flag audit entry', async () => {
      const [rows] = await sys.app.pool.query<RowDataPacket[]>("SELECT * FROM audit_log WHERE action = 'abuse.flag' AND target = ?", [maskPhone(caller)]);
      return rows[0];
    });
    expect(entry).toMatchObject({ actor: 'system:abuse', tenant_id: sys.tenantId });
  });

  it('CDRs written together: their burst counts go in one round trip and flag as the same calls one by one would', async () => {
    const caller = real('13800042101');
    const x = xOf(5);
    const first = cdr({ a: caller, x });
    const batch = [first, first, ...Array.from({ length: 5 }, () => cdr({ a: caller, x }))];
    const noted = jest.spyOn(RedisAbuseCounters.prototype, 'notePartiesMany');
    try {
      await sys.app.abuse.watch.observeCalls(batch);
      // Seven CDRs (one redelivered), each counted for its caller and its X: one call of the script.
      expect(noted).toHaveBeenCalledTimes(1);
      expect(noted.mock.calls[0]![0]).toHaveLength(14);
    } finally {
      noted.mockRestore();
    }
    // Six distinct calls: over 3 from the caller (flagged at the 4th), over 4 to X (at the 5th), once each.
    const raised = await flags(`?number=${caller}`);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ kind: 'caller_burst', evidence: { calls: 4, threshold: 3 } });
    const toX = (await flags()).filter((f) => f.kind === 'x_burst' && f.x === x);
    expect(toX).toHaveLength(1);
    expect(toX[0]).toMatchObject({ number: null, evidence: { calls: 5, threshold: 4 } });
  });

  it('many calls to one X, disposal quarantine: the X routes no call and takes no binding until the quarantine is lifted (audited)', async () => {
    await setLimits({ disposal: { x_burst: 'quarantine' } });
    const [a, b, x] = [real('13800043001'), real('13900043001'), xOf(2)];
    expect((await sys.api('POST', '/v1/bindings', { mode: 'axb', a, b, x })).status).toBe(201);
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 100 });
    for (let i = 0; i < 5; i++) await sys.app.abuse.watch.observeCall(cdr({ a: real(`1370004300${i}`), x }));
    const [flag] = await flags(`?x=${x}&kind=x_burst`);
    expect(flag).toMatchObject({ kind: 'x_burst', number: null, x, evidence: { calls: 5, threshold: 4 }, action: { action: 'quarantine', liftedAt: null } });
    expect(await poolState(x)).toBe('quarantined');

    const invitesBefore = sys.sim.invitesTo(b).length;
    expect(await callX(a, x)).toMatchObject({ result: 'restricted', hangup_cause: 'UNALLOCATED_NUMBER' });
    expect(sys.sim.invitesTo(b)).toHaveLength(invitesBefore);
    const bind = await sys.api<{ error: { code: string } }>('POST', '/v1/bindings', { mode: 'axb', a: real('13800043101'), b: real('13900043101'), x });
    expect(bind.body.error.code).toBe('x_unavailable');

    const active = await sys.api<{ items: Action[] }>('GET', '/v1/abuse/actions?active=true');
    const action = active.body.items.find((i) => i.flagId === flag!.id)!;
    expect(action).toMatchObject({ action: 'quarantine', x, active: true });
    const lifted = await sys.api<Action>('POST', `/v1/abuse/actions/${action.id}/lift`);
    expect(lifted.status).toBe(200);
    expect(lifted.body).toMatchObject({ active: false, liftedBy: `key:${sys.apiKeyId}` });
    expect(await poolState(x)).toBe('enabled');
    expect(await callX(a, x)).toMatchObject({ result: 'connected' });
    await waitUntil('the abuse.lift audit entry', async () => {
      const [rows] = await sys.app.pool.query<RowDataPacket[]>("SELECT * FROM audit_log WHERE action = 'abuse.lift' AND target = ? AND actor = ?", [String(action.id), `key:${sys.apiKeyId}`]);
      return rows[0];
    });
    // The platform's own quarantine is in the audit log too.
    const [auto] = await sys.app.pool.query<RowDataPacket[]>("SELECT * FROM audit_log WHERE action = 'abuse.quarantine' AND target = ?", [x]);
    expect(auto).toHaveLength(1);
    // Another tenant cannot lift it (or see it): 404.
    const other = await sys.tenants.create({ name: 'other' });
    const otherKey = (await sys.tenants.createApiKey(other.id, 'k')).key;
    expect((await sys.api('POST', `/v1/abuse/actions/${action.id}/lift`, undefined, otherKey)).status).toBe(404);
  });

  it('a robocall pattern, disposal block: the caller is on the blacklist until the block ends; lifting takes off only that entry', async () => {
    await setLimits({ disposal: { short_calls: 'block' } });
    const [caller, b, x] = [real('13800044001'), real('13900044001'), xOf(3)];
    expect((await sys.api('POST', '/v1/bindings', { mode: 'axb', a: caller, b, x })).status).toBe(201);
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 100 });
    const before = Date.now();
    for (let i = 0; i < 3; i++) await sys.app.abuse.watch.observeCall(cdr({ a: caller, x, b, result: 'connected', talkSeconds: 2 }));
    const [flag] = await flags(`?number=${caller}&kind=short_calls`);
    expect(flag?.action).toMatchObject({ action: 'block', liftedAt: null });
    const until = Date.parse(flag!.action!.until!);
    expect(until).toBeGreaterThanOrEqual(before + 86_400_000);
    const [listed] = await sys.app.pool.query<RowDataPacket[]>('SELECT * FROM blacklist WHERE tenant_id = ? AND number = ?', [sys.tenantId, caller]);
    expect(listed).toHaveLength(1);
    expect(listed[0]!.expires_at).not.toBeNull();
    expect(await callX(caller, x)).toMatchObject({ result: 'blacklisted' });
    const refused = await sys.api<{ error: { code: string; field: string } }>('POST', '/v1/calls', { requestId: 'blk-1', a: caller, b: real('13900044002') });
    expect(refused.body.error).toMatchObject({ code: 'number_blacklisted', field: 'a' });

    const lifted = await sys.api<Action>('POST', `/v1/abuse/actions/${flag!.action!.id}/lift`);
    expect(lifted.body).toMatchObject({ action: 'block', number: maskPhone(caller), active: false });
    const [after] = await sys.app.pool.query<RowDataPacket[]>('SELECT * FROM blacklist WHERE tenant_id = ? AND number = ?', [sys.tenantId, caller]);
    expect(after).toHaveLength(0);
    expect(await callX(caller, x)).toMatchObject({ result: 'connected' });
  });

  it('a block ends by itself at its time; a number already on the blacklist for good stays so', async () => {
    const { disposal } = sys.app.abuse;
    const number = real('13800045001');
    const now = Date.now();
    const block = await disposal.block(sys.tenantId, number, { hash: 'h'.repeat(32), masked: maskPhone(number) }, 0, 60, now);
    expect(block).toMatchObject({ action: 'block', until: now + 60_000 });
    // Before its time the call paths refuse it; after it they do not, even before the sweep.
    await expect(sys.app.abuse.admitClickToDial({ tenantId: sys.tenantId, a: number, b: real('13900045001') }, now + 1000)).rejects.toMatchObject({ code: 'number_blacklisted' });
    await expect(sys.app.abuse.admitClickToDial({ tenantId: sys.tenantId, a: number, b: real('13900045002') }, now + 61_000)).resolves.toBeUndefined();
    expect((await disposal.page(sys.tenantId, { active: true }, now + 61_000)).items.map((a) => a.id)).not.toContain(block!.id);
    expect(await disposal.sweepExpiredBlocks(now + 61_000)).toBeGreaterThanOrEqual(1);
    const [rows] = await sys.app.pool.query<RowDataPacket[]>('SELECT * FROM blacklist WHERE tenant_id = ? AND number = ?', [sys.tenantId, number]);
    expect(rows).toHaveLength(0);

    const forGood = real('13800045002');
    await sys.app.bindings.blacklistAdd(sys.tenantId, forGood);
    expect(await disposal.block(sys.tenantId, forGood, { hash: 'h'.repeat(32), masked: maskPhone(forGood) }, 0, 60, now)).toBeNull();
    const [kept] = await sys.app.pool.query<RowDataPacket[]>('SELECT expires_at FROM blacklist WHERE tenant_id = ? AND number = ?', [sys.tenantId, forGood]);
    expect(kept[0]!.expires_at).toBeNull();
  });

  it("binding in bulk far above a tenant's usual rate is flagged; a tenant that always binds that fast is not", async () => {
    const bulky = await sys.tenants.create({ name: 'bulky' });
    const steady = await sys.tenants.create({ name: 'steady' });
    const settings = new TenantLimitsStore(sys.app.pool);
    for (const t of [bulky, steady]) await settings.update(t.id, { bulkBindingFactor: 5, bulkBindingMinPerMinute: 10 });
    const bulkFlags = async (tenantId: string) => sys.app.abuse.flags.list(tenantId, { kind: 'bulk_binding' });
    const minute = 60_000;
    const start = Date.UTC(2031, 0, 1);
    const watch = sys.app.abuse.watch;
    for (let m = 0; m < 30; m++) {
      for (let i = 0; i < 2; i++) await watch.observeBinding(bulky.id, start + m * minute + i);
      for (let i = 0; i < 20; i++) await watch.observeBinding(steady.id, start + m * minute + i);
    }
    expect(await bulkFlags(bulky.id)).toEqual([]);
    for (let i = 0; i < 12; i++) await watch.observeBinding(bulky.id, start + 30 * minute + i);
    for (let i = 0; i < 20; i++) await watch.observeBinding(steady.id, start + 30 * minute + i);
    const [bulk, ...more] = await bulkFlags(bulky.id);
    expect(more).toEqual([]);
    // The usual rate is 2 a minute: the 11th binding of the minute is over 5 x 2 (and at least 10).
    expect(bulk).toMatchObject({ numberMasked: null, x: null, evidence: { bindingsThisMinute: 11, usualPerMinute: 2, factor: 5, minPerMinute: 10 } });
    expect(await bulkFlags(steady.id)).toEqual([]);
  });

  it('every flag reaches the tenant as a signed abuse.flagged webhook, numbers masked', async () => {
    const all = (await sys.api<{ items: Flag[] }>('GET', '/v1/abuse/flags?limit=500')).body.items;
    await receiver.waitFor((got) => got.filter((w) => w.payload.type === 'abuse.flagged').length >= all.length);
    const hooks = receiver.received.filter((w) => w.payload.type === 'abuse.flagged');
    expect(hooks.every((w) => w.verification.ok)).toBe(true);
    expect(new Set(hooks.map((w) => w.payload.id)).size).toBe(hooks.length);
    const quarantined = hooks.find((w) => w.payload.data.flag?.kind === 'x_burst' && w.payload.data.flag.x === xOf(2));
    expect(quarantined?.payload.data.flag).toMatchObject({ x: xOf(2), number: null, disposal: 'quarantine', actionId: expect.any(Number) });
    const blocked = hooks.find((w) => w.payload.data.flag?.kind === 'short_calls' && w.payload.data.flag.disposal === 'block');
    expect(blocked?.payload.data.flag).toMatchObject({ number: maskPhone('13800044001'), until: expect.any(Number) });
    for (const w of hooks) for (const n of realNumbers) expect(w.rawBody).not.toContain(n);
  });

  it('flags and actions are counted in the metrics', async () => {
    const address = sys.app.http.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    const value = (series: string): number => Number(text.split('\n').find((l) => l.startsWith(`${series} `))?.slice(series.length + 1) ?? 0);
    // Calls whose CDRs are still being written may add flags; these are there at least.
    expect(value('numguard_abuse_flags_total{kind="caller_burst"}')).toBeGreaterThanOrEqual(2);
    expect(value('numguard_abuse_flags_total{kind="x_burst"}')).toBeGreaterThanOrEqual(1);
    expect(value('numguard_abuse_flags_total{kind="short_calls"}')).toBeGreaterThanOrEqual(2);
    expect(value('numguard_abuse_flags_total{kind="bulk_binding"}')).toBe(1);
    expect(value('numguard_abuse_actions_total{action="quarantine"}')).toBeGreaterThanOrEqual(1);
    expect(value('numguard_abuse_actions_total{action="block"}')).toBe(1);
  });

  it('no real number is stored in a flag, an action or an audit entry of the watch, or logged', async () => {
    const [flagRows] = await sys.app.pool.query<RowDataPacket[]>('SELECT * FROM abuse_flags');
    const [actionRows] = await sys.app.pool.query<RowDataPacket[]>('SELECT * FROM abuse_actions');
    const [auditRows] = await sys.app.pool.query<RowDataPacket[]>("SELECT * FROM audit_log WHERE action LIKE 'abuse.%'");
    const stored = JSON.stringify([flagRows, actionRows, auditRows]);
    const logged = sys.logLines.filter((l) => l.includes('abuse flag')).join('\n');
    expect(logged).not.toBe('');
    for (const n of realNumbers) {
      expect(stored).not.toContain(n);
      expect(logged).not.toContain(n);
    }
  });
});
