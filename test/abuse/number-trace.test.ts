import { randomUUID } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import { runAdminCli } from '../../src/cli/admin';
import { maskPhone } from '../../src/domain/phone-number';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';

interface Entry {
  at: string;
  type: string;
  ref: string;
  actor: string | null;
  details: Record<string, unknown>;
}
interface Trace {
  number: { x: string; area: string; state: string; importedAt: string };
  items: Entry[];
  nextCursor: string | null;
}

const XT = '700100000000301';

describe("one number's trace: 来有影、去有踪 (issue #10 item 7)", () => {
  let sys: TestSystem;
  const a = '13800051001';
  const b = '13900051001';
  const b2 = '13900051002';
  let bindingId = '';

  const trace = (query = '', key?: string) => sys.api<Trace>('GET', `/v1/pool/numbers/${XT}/trace${query}`, undefined, key);

  beforeAll(async () => {
    sys = await startTestSystem();
    await sys.app.bindings.importNumbers(sys.tenantId, [{ x: XT, area: '010' }]);
    sys.sim.setPhone(b2, { answer: 'answer', hangupAfterMs: 100 });

    // Its life: bound (by this key), rebound to another B, a call, a refusal while quarantined by hand,
    // flagged and quarantined by the disposal policy, lifted, unbound.
    const bound = await sys.api<{ id: string }>('POST', '/v1/bindings', { requestId: 'trace-1', mode: 'axb', a, b, x: XT });
    expect(bound.status).toBe(201);
    bindingId = bound.body.id;
    expect((await sys.api('PATCH', `/v1/bindings/${bindingId}`, { b: b2 })).status).toBe(200);
    const callX = async (): Promise<RowDataPacket> => (await sys.callX({ callerNumber: a, destinationNumber: XT })).cdr;
    expect(await callX()).toMatchObject({ result: 'connected' });
    expect((await sys.api('PATCH', `/v1/pool/numbers/${XT}`, { state: 'quarantined' })).status).toBe(200);
    await sys.app.abuse.quarantined.refresh();
    expect(await callX()).toMatchObject({ result: 'restricted' });
    expect((await sys.api('PATCH', `/v1/pool/numbers/${XT}`, { state: 'enabled' })).status).toBe(200);
    await sys.app.abuse.quarantined.refresh();

    expect((await sys.api('PATCH', '/v1/abuse/limits', { xBurstCalls: 2, disposal: { x_burst: 'quarantine' } })).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const now = Date.now();
      await sys.app.abuse.watch.observeCall({
        callId: randomUUID(), tenantId: sys.tenantId, kind: 'axb', bindingId: null, x: XT, a: `1370005100${i}`, b: '', startedAt: now, aRingAt: null,
        aAnswerAt: null, bRingAt: null, bAnswerAt: null, endedAt: now, talkSeconds: 0, hangupCause: null, hangupSide: 'platform', result: 'rate_limited',
        recordingRef: null, userData: null,
      });
    }
    const actions = await sys.api<{ items: Array<{ id: number }> }>('GET', '/v1/abuse/actions?active=true');
    expect(actions.body.items).toHaveLength(1);
    expect((await sys.api('POST', `/v1/abuse/actions/${actions.body.items[0]!.id}/lift`)).status).toBe(200);
    expect((await sys.api('DELETE', `/v1/bindings/${bindingId}`)).status).toBe(200);
    // The audit entries are written after each response.
    await waitUntil('the unbind audit entry', async () => (await sys.app.pool.query<RowDataPacket[]>("SELECT 1 FROM audit_log WHERE action = 'binding.unbind'"))[0][0]);
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('answers in one request: imported, every state change and who made it, the binding and who asked, its calls and refusals, flags and quarantines', async () => {
    const { status, body } = await trace('?limit=500');
    expect(status).toBe(200);
    expect(body.number).toMatchObject({ x: XT, area: '010', state: 'enabled' });
    expect(body.nextCursor).toBeNull();
    const types = body.items.map((e) => e.type);
    // Newest first.
    const times = body.items.map((e) => Date.parse(e.at));
    expect([...times].sort((p, q) => q - p)).toEqual(times);
    expect(types.at(-1)).toBe('imported');
    for (const t of ['binding_created', 'binding_changed', 'binding_ended', 'call', 'flagged', 'quarantined', 'quarantine_lifted', 'state_changed', 'audit']) {
      expect(types).toContain(t);
    }

    const created = body.items.find((e) => e.type === 'binding_created')!;
    expect(created).toMatchObject({ ref: bindingId, actor: `key:${sys.apiKeyId}`, details: { kind: 'axb', a: maskPhone(a), b: maskPhone(b), requestId: 'trace-1' } });
    expect(body.items.find((e) => e.type === 'binding_ended')).toMatchObject({ ref: bindingId, actor: `key:${sys.apiKeyId}`, details: { state: 'unbound' } });
    expect(body.items.find((e) => e.type === 'binding_changed')).toMatchObject({ actor: `key:${sys.apiKeyId}`, details: { bindingId } });

    const calls = body.items.filter((e) => e.type === 'call');
    expect(calls.map((c) => c.details.result)).toEqual(['restricted', 'connected']);
    expect(calls[1]!.details).toMatchObject({ a: maskPhone(a), b: maskPhone(b2), bindingId });

    const states = body.items.filter((e) => e.type === 'state_changed').map((e) => [e.details.from, e.details.to, e.actor]);
    expect(states).toEqual([
      ['quarantined', 'enabled', `key:${sys.apiKeyId}`],
      ['enabled', 'quarantined', 'system:abuse'],
      ['quarantined', 'enabled', null],
      ['enabled', 'quarantined', null],
    ]);
    // A change made through the API is named by its audit entry (who, request id).
    expect(body.items.filter((e) => e.type === 'audit' && e.details.action === 'pool.number_state')).toHaveLength(2);
    expect(body.items.find((e) => e.type === 'flagged')).toMatchObject({ actor: 'system:abuse', details: { kind: 'x_burst', number: null } });

    const text = JSON.stringify(body);
    for (const n of [a, b, b2]) expect(text).not.toContain(n);
  });

  it('pages by keyset: every entry once, in the same order, whatever the page size', async () => {
    const all = (await trace('?limit=500')).body.items;
    const walked: Entry[] = [];
    let cursor: string | null = null;
    do {
      const page: Trace = (await trace(`?limit=3${cursor ? `&cursor=${cursor}` : ''}`)).body;
      expect(page.items.length).toBeLessThanOrEqual(3);
      walked.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(walked).toEqual(all);
    expect((await trace('?cursor=bm90LWEtY3Vyc29y')).status).toBe(400);
  });

  it("another tenant's X, or a number in no pool, is 404", async () => {
    const other = await sys.tenants.create({ name: 'other' });
    const otherKey = (await sys.tenants.createApiKey(other.id, 'k')).key;
    const foreign = await trace('', otherKey);
    expect(foreign.status).toBe(404);
    expect((await sys.api('GET', '/v1/pool/numbers/700100000000399/trace')).status).toBe(404);
    expect((await sys.api('GET', '/v1/pool/numbers/12/trace')).status).toBe(400);
  });

  it('the CLI shows the same life, one JSON object per line', async () => {
    const lines: string[] = [];
    const code = await runAdminCli(['pool', 'trace', '--tenant', sys.tenantId, '--x', XT, '--limit', '500'], (l) => lines.push(l), { MYSQL_URL: sys.env.MYSQL_URL });
    expect(code).toBe(0);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed[0]).toMatchObject({ number: { x: XT, state: 'enabled' } });
    expect(parsed.at(-1)).toEqual({ nextCursor: null });
    const api = (await trace('?limit=500')).body.items;
    expect(parsed.slice(1, -1).map((e) => [e.type, e.ref])).toEqual(api.map((e) => [e.type, e.ref]));
    for (const n of [a, b, b2]) expect(lines.join('\n')).not.toContain(n);
  });
});
