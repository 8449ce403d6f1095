import * as smpp from 'smpp';
import type { MessageRecord } from '../../src/domain/message';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';
import { TestSmsc } from './smsc';

/**
 * Who reaches whom by texting X: the route index's decision for calls, reused — XB with its
 * allow-list, the callback binding, a restricted direction — then the blacklist and the per-sender
 * and per-X limits. Each case on its own X of the tenant's pool.
 */
const xs = (i: number): string => `7001000000001${String(i).padStart(2, '0')}`;

let smsc: TestSmsc;
let sys: TestSystem;

async function refusalOf(senderMasked: string, x: string): Promise<MessageRecord> {
  return waitUntil(`the record of ${senderMasked} to ${x}`, async () => {
    const res = await sys.api<{ items: MessageRecord[] }>('GET', '/v1/messages?limit=500');
    return res.body.items.find((m) => m.senderMasked === senderMasked && m.x === x);
  });
}

async function forwardedTo(destination: string, from: number): Promise<void> {
  await waitUntil(`a message to ${destination}`, () => smsc.submitted.slice(from).some((s) => s.destinationAddr === destination));
}

beforeAll(async () => {
  smsc = new TestSmsc();
  const port = await smsc.start();
  sys = await startTestSystem({
    env: {
      SMPP_HOST: '127.0.0.1',
      SMPP_PORT: String(port),
      SMPP_SYSTEM_ID: smsc.systemId,
      SMPP_PASSWORD: smsc.password,
      SMPP_RECONNECT_MIN_MS: '50',
      MESSAGE_TRANSPORT: 'smpp',
      MESSAGES_PER_SENDER_PER_MINUTE: '2',
      MESSAGES_PER_X_PER_MINUTE: '3',
    },
  });
  await sys.app.bindings.importNumbers(
    sys.tenantId,
    [1, 2, 3, 4, 5, 6].map((i) => ({ x: xs(i), area: '010' })),
  );
  await waitUntil('the SMPP link bound', () => sys.app.messaging.smpp?.isBound);
}, 60_000);

afterAll(async () => {
  await sys?.stop();
  await smsc?.stop();
});

describe('relaying a text by binding', () => {
  it('a blacklisted sender gets nothing through', async () => {
    const a = '13800002301';
    const b = '13900002302';
    expect((await sys.api('POST', '/v1/bindings', { mode: 'axb', a, b, x: xs(4) })).status).toBe(201);
    expect((await sys.api('POST', '/v1/blacklist', { number: a })).status).toBeLessThan(300);
    const from = smsc.submitted.length;
    expect(await smsc.text(a, xs(4), 'spam')).toBe(smpp.ESME_ROK);
    // Read as the call paths read it (cached for 5 s): this is the tenant's first text, so the list is read now.
    expect(await refusalOf('138****2301', xs(4))).toMatchObject({ refusal: 'blacklisted' });
    expect(smsc.submitted.slice(from)).toEqual([]);
  });

  it('XB: anyone on the allow-list reaches B; others, and B itself, reach nobody', async () => {
    const b = '13900002001';
    const res = await sys.api('POST', '/v1/bindings', { mode: 'xb', b, x: xs(1), allowList: ['13600002002'] });
    expect(res.status).toBe(201);
    const from = smsc.submitted.length;
    expect(await smsc.text('13600002002', xs(1), 'allowed')).toBe(smpp.ESME_ROK);
    await forwardedTo(b, from);
    expect(await smsc.text('13600002003', xs(1), 'not allowed')).toBe(smpp.ESME_ROK);
    expect(await refusalOf('136****2003', xs(1))).toMatchObject({ status: 'refused', refusal: 'restricted' });
    expect(await smsc.text(b, xs(1), 'to myself')).toBe(smpp.ESME_ROK);
    expect(await refusalOf('139****2001', xs(1))).toMatchObject({ status: 'refused', refusal: 'unbound' });
    expect(smsc.submitted.slice(from).map((s) => s.text)).toEqual(['allowed']);
  });

  it('callback binding: B texts X back and reaches the A who called; A texting X reaches nobody through it', async () => {
    const a = '13800002101';
    const b = '13900002102';
    await sys.app.routes.put({
      id: '00000000-0000-4000-8000-000000002101', tenantId: sys.tenantId, kind: 'callback', x: xs(2), a, b,
      expiresAt: Date.now() + 600_000, restriction: 'both', record: false, maxDurationSeconds: null, announcement: null, allowList: [], userData: null,
    });
    const from = smsc.submitted.length;
    expect(await smsc.text(b, xs(2), 'calling you back')).toBe(smpp.ESME_ROK);
    await forwardedTo(a, from);
    expect(smsc.submitted.slice(from)[0]).toMatchObject({ sourceAddr: xs(2), destinationAddr: a });
    expect(await smsc.text(a, xs(2), 'hello?')).toBe(smpp.ESME_ROK);
    expect(await refusalOf('138****2101', xs(2))).toMatchObject({ refusal: 'unbound' });
  });

  it('a restricted direction is refused; the allowed one goes through', async () => {
    const a = '13800002201';
    const b = '13900002202';
    expect((await sys.api('POST', '/v1/bindings', { mode: 'axb', a, b, x: xs(3), restriction: 'a_to_b' })).status).toBe(201);
    const from = smsc.submitted.length;
    expect(await smsc.text(b, xs(3), 'no way back')).toBe(smpp.ESME_ROK);
    expect(await refusalOf('139****2202', xs(3))).toMatchObject({ refusal: 'restricted', direction: null });
    expect(await smsc.text(a, xs(3), 'one way')).toBe(smpp.ESME_ROK);
    await forwardedTo(b, from);
    expect(smsc.submitted.slice(from).map((s) => s.destinationAddr)).toEqual([b]);
  });

  it('limits a sender per minute, and an X per minute', async () => {
    const a = '13800002401';
    const b = '13900002402';
    expect((await sys.api('POST', '/v1/bindings', { mode: 'axb', a, b, x: xs(5) })).status).toBe(201);
    for (const text of ['one', 'two', 'three']) expect(await smsc.text(a, xs(5), text)).toBe(smpp.ESME_ROK);
    const limited = await waitUntil('the third refused', async () => {
      const res = await sys.api<{ items: MessageRecord[] }>('GET', '/v1/messages?status=refused&limit=500');
      return res.body.items.find((m) => m.x === xs(5));
    });
    expect(limited).toMatchObject({ refusal: 'rate_limited', senderMasked: '138****2401' });
    // B has sent nothing yet, but X has carried its 3 (two forwarded, one refused counts nothing): one more, then X is full.
    expect(await smsc.text(b, xs(5), 'four')).toBe(smpp.ESME_ROK);
    expect(await smsc.text(b, xs(5), 'five')).toBe(smpp.ESME_ROK);
    const xFull = await waitUntil('X full', async () => {
      const res = await sys.api<{ items: MessageRecord[] }>('GET', '/v1/messages?status=refused&limit=500');
      return res.body.items.find((m) => m.x === xs(5) && m.senderMasked === '139****2402');
    });
    expect(xFull).toMatchObject({ refusal: 'rate_limited' });
  });

  it('a text to a number in no pool is dropped without a record', async () => {
    const before = (await sys.api<{ items: MessageRecord[] }>('GET', '/v1/messages?limit=500')).body.items.length;
    expect(await smsc.text('13800002501', '700999999999999', 'anyone?')).toBe(smpp.ESME_ROK);
    await waitUntil('the queue drained', async () => (await sys.app.messaging.queue.queue.getJobCounts('waiting', 'active', 'delayed')).waiting === 0);
    await new Promise((r) => setTimeout(r, 300));
    expect((await sys.api<{ items: MessageRecord[] }>('GET', '/v1/messages?limit=500')).body.items.length).toBe(before);
    expect(sys.logLines.join('')).toContain('message to a number in no pool dropped');
  });
});
