import type { RowDataPacket } from 'mysql2/promise';
import type { CdrRecord } from '../../src/domain/call';
import { startTestSystem, type TestSystem } from '../support/system';
import { startReceiver, type Receiver } from '../webhooks/receiver';

const SECRET = 'refused-calls-secret-0123456789';
const xs = (i: number) => `7001000${String(700 + i).padStart(8, '0')}`;

/** Issue #10 item 2: calls refused at X belong to X's tenant (CDR, GET /v1/cdrs, a call.refused webhook). */
describe('refused calls to X are reported to the tenant owning X (simulator, real MariaDB and Redis)', () => {
  let sys: TestSystem;
  let receiver: Receiver;
  let otherTenant: string;

  beforeAll(async () => {
    sys = await startTestSystem();
    await sys.app.bindings.importNumbers(sys.tenantId, Array.from({ length: 6 }, (_, i) => ({ x: xs(i), area: '010' })));
    otherTenant = (await sys.tenants.create({ name: 'other', defaultX: xs(9) })).id;
    await sys.app.bindings.importNumbers(otherTenant, [{ x: xs(9), area: '010' }]);
    receiver = await startReceiver(SECRET);
    const put = await sys.api('PUT', '/v1/webhook', { url: receiver.url, secret: SECRET });
    expect(put.status).toBe(200);
  });
  afterAll(async () => {
    await receiver?.close();
    await sys?.stop();
  });

  const callX = async (caller: string, x: string): Promise<RowDataPacket> => (await sys.callX({ callerNumber: caller, destinationNumber: x })).cdr;

  const webhooksOf = (callId: string) => receiver.received.filter((w) => w.payload.data.callId === callId);

  it('an unbound caller: the CDR is the pool owner\'s, listed with its result and the caller masked; call.refused is signed and masked', async () => {
    const stranger = '13700061001';
    const cdr = await callX(stranger, xs(0));
    expect(cdr).toMatchObject({ tenant_id: sys.tenantId, binding_id: null, result: 'unbound', a: stranger, b: '', hangup_cause: 'UNALLOCATED_NUMBER' });

    const listed = await sys.api<{ items: CdrRecord[] }>('GET', '/v1/cdrs?result=unbound');
    const item = listed.body.items.find((c) => c.callId === cdr.call_id);
    expect(item).toMatchObject({ tenantId: sys.tenantId, x: xs(0), a: '137****1001', result: 'unbound', bindingId: null });

    await receiver.waitFor(() => webhooksOf(String(cdr.call_id)).length > 0);
    const [hook, ...more] = webhooksOf(String(cdr.call_id));
    expect(more).toHaveLength(0);
    expect(hook!.verification.ok).toBe(true);
    expect(hook!.payload).toMatchObject({ type: 'call.refused', tenantId: sys.tenantId, data: { callId: cdr.call_id, refusal: { x: xs(0), caller: '137****1001', result: 'unbound' } } });
    expect(hook!.rawBody).not.toContain(stranger);
    expect(hook!.payload.data.cdr).toBeUndefined();
  });

  it('a caller whose binding expired: result expired, with that binding\'s id', async () => {
    const a = '13800061002';
    const b = '13900061002';
    const { binding } = await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a, b, x: xs(1), ttlSeconds: 60 }, Date.now() - 61_000);
    const cdr = await callX(a, xs(1));
    expect(cdr).toMatchObject({ tenant_id: sys.tenantId, binding_id: binding.id, result: 'expired', kind: 'axb' });
    expect(sys.sim.invitesTo(b)).toHaveLength(0);
    await receiver.waitFor(() => webhooksOf(String(cdr.call_id)).length > 0);
    expect(webhooksOf(String(cdr.call_id))[0]!.payload).toMatchObject({ type: 'call.refused', data: { bindingId: binding.id, refusal: { result: 'expired', caller: '138****1002' } } });
    const listed = await sys.api<{ items: CdrRecord[] }>('GET', '/v1/cdrs?result=expired');
    expect(listed.body.items.map((c) => c.callId)).toContain(cdr.call_id);
  });

  it('a caller whose binding was unbound: result unbound, with that binding\'s id', async () => {
    const a = '13800061003';
    const b = '13900061003';
    const { binding } = await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a, b, x: xs(2) });
    await sys.app.bindings.unbind(sys.tenantId, binding.id);
    const cdr = await callX(b, xs(2));
    expect(cdr).toMatchObject({ tenant_id: sys.tenantId, binding_id: binding.id, result: 'unbound' });
  });

  it('a restricted direction: the binding\'s tenant and id, reported as call.refused and not call.completed', async () => {
    const a = '13800061004';
    const b = '13900061004';
    const { binding } = await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a, b, x: xs(3), restriction: 'a_to_b' });
    const cdr = await callX(b, xs(3));
    expect(cdr).toMatchObject({ tenant_id: sys.tenantId, binding_id: binding.id, result: 'restricted' });
    await receiver.waitFor(() => webhooksOf(String(cdr.call_id)).length > 0);
    await new Promise((r) => setTimeout(r, 300));
    expect(webhooksOf(String(cdr.call_id)).map((w) => w.payload.type)).toEqual(['call.refused']);
    expect(webhooksOf(String(cdr.call_id))[0]!.payload.data).toMatchObject({ bindingId: binding.id, refusal: { x: xs(3), caller: '139****1004', result: 'restricted' } });
  });

  it('a refusal at another tenant\'s X is that tenant\'s only; an X in nobody\'s pool belongs to no one', async () => {
    const theirs = await callX('13700061005', xs(9));
    expect(theirs.tenant_id).toBe(otherTenant);
    const nobodys = await callX('13700061006', '70019999999999');
    expect(nobodys.tenant_id).toBe('');
    const mine = await sys.api<{ items: CdrRecord[] }>('GET', '/v1/cdrs?limit=500');
    const ids = mine.body.items.map((c) => c.callId);
    expect(ids).not.toContain(theirs.call_id);
    expect(ids).not.toContain(nobodys.call_id);
    await new Promise((r) => setTimeout(r, 300));
    expect(webhooksOf(String(theirs.call_id))).toHaveLength(0);
  });

  it('a connected call\'s caller is not masked in the listing', async () => {
    const a = '13800061007';
    const b = '13900061007';
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 300 });
    await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a, b, x: xs(4) });
    const cdr = await callX(a, xs(4));
    expect(cdr.result).toBe('connected');
    const listed = await sys.api<{ items: CdrRecord[] }>('GET', '/v1/cdrs?result=connected');
    expect(listed.body.items.find((c) => c.callId === cdr.call_id)).toMatchObject({ a, b });
  });
});
