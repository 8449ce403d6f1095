import * as smpp from 'smpp';
import type { MessageRecord } from '../../src/domain/message';
import { startReceiver, type Receiver } from '../webhooks/receiver';
import { startTestSystem, X, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';
import { TestSmsc, type Submitted } from './smsc';

/**
 * Text messages through X over SMPP, end to end inside the controller: the `smpp` library's own
 * server plays the SMS centre, the real MariaDB and Redis keep records and queues.
 */
const A = '13800001101';
const B = '13900001102';
const STRANGER = '13700001103';
const SECRET = 'messages-test-secret-0123456789';

let smsc: TestSmsc;
let sys: TestSystem;
let hooks: Receiver;

interface Page {
  items: MessageRecord[];
  nextCursor: string | null;
}

async function bindAxb(a: string, b: string, x = X): Promise<string> {
  const res = await sys.api<{ id: string }>('POST', '/v1/bindings', { mode: 'axb', a, b, x, ttlSeconds: 3600 });
  expect(res.status).toBe(201);
  return res.body.id;
}

async function messages(query = ''): Promise<MessageRecord[]> {
  const res = await sys.api<Page>('GET', `/v1/messages${query}`);
  expect(res.status).toBe(200);
  return res.body.items;
}

function submittedSince(n: number): Submitted[] {
  return smsc.submitted.slice(n);
}

/** Every string a receiver gets in a PDU, header fields and TLVs alike. */
function pduStrings(s: Submitted): string {
  return JSON.stringify(s.pdu, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('latin1') : v));
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
      SMPP_ENQUIRE_LINK_SECONDS: '1',
      SMPP_RECONNECT_MIN_MS: '50',
      SMPP_RECONNECT_MAX_MS: '200',
      SMPP_RESPONSE_TIMEOUT_MS: '2000',
      MESSAGE_TRANSPORT: 'smpp',
      MESSAGES_PER_SENDER_PER_MINUTE: '0',
      MESSAGES_PER_X_PER_MINUTE: '0',
      MESSAGE_SEND_ATTEMPTS: '3',
      MESSAGE_RETRY_DELAY_MS: '50',
    },
  });
  await waitUntil('the SMPP link bound', () => sys.app.messaging.smpp?.isBound);
  hooks = await startReceiver(SECRET);
  expect((await sys.api('PUT', '/v1/webhook', { url: hooks.url, secret: SECRET })).status).toBe(200);
}, 60_000);

afterAll(async () => {
  await sys?.stop();
  await hooks?.close();
  await smsc?.stop();
});

describe('text messages through X over SMPP', () => {
  it('binds as a transceiver and keeps the link alive with enquire_link', async () => {
    expect(smsc.binds).toContain(smsc.systemId);
    const before = smsc.enquireLinks;
    await waitUntil('an enquire_link', () => smsc.enquireLinks > before, 5_000);
  });

  it('relays A → X to B and B → X to A with X as the only number the receiver gets', async () => {
    const bindingId = await bindAxb(A, B);
    const from = smsc.submitted.length;
    const text = 'Your parcel is at the door — 请开门 (signed: Li, 13800001101)';
    expect(await smsc.text(A, X, text)).toBe(smpp.ESME_ROK);
    const [toB] = await waitUntil('the message to B', () => submittedSince(from).length === 1 && submittedSince(from));
    expect(toB).toMatchObject({ sourceAddr: X, destinationAddr: B, text, dataCoding: 8 });
    // The sender's own signature is carried as written; nothing else carries A.
    expect(pduStrings(toB!).replace(text, '')).not.toContain(A);

    expect(await smsc.text(B, X, 'on my way')).toBe(smpp.ESME_ROK);
    const [toA] = await waitUntil('the reply to A', () => submittedSince(from + 1).length === 1 && submittedSince(from + 1));
    expect(toA).toMatchObject({ sourceAddr: X, destinationAddr: A, text: 'on my way', dataCoding: 0 });
    expect(pduStrings(toA!)).not.toContain(B);

    const records = await waitUntil('two forwarded records', async () => {
      const all = (await messages(`?bindingId=${bindingId}`)).filter((m) => m.status === 'forwarded');
      return all.length === 2 && all;
    });
    expect(records.map((m) => m.direction).sort()).toEqual(['a_to_b', 'b_to_a']);
    const fromA = records.find((m) => m.direction === 'a_to_b')!;
    expect(fromA).toMatchObject({ tenantId: sys.tenantId, bindingId, x: X, senderMasked: '138****1101', recipientMasked: '139****1102', transport: 'smpp', parts: 1, length: Array.from(text).length, body: null });
    expect(fromA.forwardedAt).toEqual(expect.any(Number));
    // Bodies are off by default, and never logged.
    expect(sys.logLines.join('')).not.toContain('请开门');
    expect(sys.logLines.join('')).not.toContain(A);
  });

  it('reports delivery from the SMS centre’s receipt: sms.received, then sms.delivered, signed', async () => {
    const from = smsc.submitted.length;
    expect(await smsc.text(A, X, 'receipt please')).toBe(smpp.ESME_ROK);
    const [sent] = await waitUntil('the submit', () => submittedSince(from).length === 1 && submittedSince(from));
    const record = await waitUntil('the record forwarded', async () => (await messages('?status=forwarded')).find((m) => m.length === 'receipt please'.length));
    // Not final yet: still forwarded.
    expect(await smsc.receipt(sent!.messageId, 'ENROUTE')).toBe(smpp.ESME_ROK);
    expect(await smsc.receipt(sent!.messageId, 'DELIVRD')).toBe(smpp.ESME_ROK);
    const delivered = await waitUntil('delivered', async () => (await sys.api<MessageRecord>('GET', `/v1/messages/${record.id}`)).body.status === 'delivered');
    expect(delivered).toBe(true);
    await hooks.waitFor((ws) => ws.some((w) => w.payload.type === 'sms.delivered' && w.payload.data.sms?.id === record.id));
    const mine = hooks.received.filter((w) => w.payload.data.sms?.id === record.id);
    expect(mine.map((w) => w.payload.type)).toEqual(['sms.received', 'sms.delivered']);
    expect(mine.every((w) => w.verification.ok)).toBe(true);
    expect(mine.map((w) => w.rawBody).join('')).not.toContain(A);
  });

  it('refuses an unbound sender: nothing submitted, a refusal recorded for X’s tenant and reported', async () => {
    const from = smsc.submitted.length;
    expect(await smsc.text(STRANGER, X, 'hello?')).toBe(smpp.ESME_ROK);
    const refused = await waitUntil('the refusal', async () => (await messages('?status=refused')).find((m) => m.senderMasked === '137****1103'));
    expect(refused).toMatchObject({ tenantId: sys.tenantId, bindingId: null, refusal: 'unbound', recipientMasked: null, direction: null });
    await hooks.waitFor((ws) => ws.some((w) => w.payload.type === 'sms.refused' && w.payload.data.sms?.id === refused.id));
    expect(submittedSince(from)).toEqual([]);
  });

  it('forwards a message the SMS centre delivers twice once', async () => {
    const from = smsc.submitted.length;
    expect(await smsc.text(A, X, 'twice over')).toBe(smpp.ESME_ROK);
    expect(await smsc.text(A, X, 'twice over')).toBe(smpp.ESME_ROK);
    await waitUntil('one submit', () => submittedSince(from).length === 1);
    await new Promise((r) => setTimeout(r, 500));
    expect(submittedSince(from)).toHaveLength(1);
    expect((await messages()).filter((m) => m.length === 'twice over'.length && m.senderMasked === '138****1101')).toHaveLength(1);
  });

  it('forwards a job the queue runs again once: the record says it went', async () => {
    const from = smsc.submitted.length;
    const message = { transport: 'smpp' as const, x: X, sender: B, text: 'queued twice', parts: 1, receivedAt: Date.now() };
    const key = await sys.app.messaging.queue.enqueue(message);
    await waitUntil('the submit', () => submittedSince(from).length === 1);
    await waitUntil('the job gone', async () => !(await sys.app.messaging.queue.queue.getJob(`sms-${key}`)));
    // Completed jobs are removed (their body with them): the same message queued again is a new job.
    expect(await sys.app.messaging.queue.enqueue(message)).toBe(key);
    await waitUntil('the second job done', async () => !(await sys.app.messaging.queue.queue.getJob(`sms-${key}`)));
    expect(submittedSince(from)).toHaveLength(1);
  });

  it('reassembles a long UCS-2 message from UDH parts and splits it again on the way out', async () => {
    const long = '您好，这是一条很长的消息。'.repeat(12); // 156 UCS-2 units: 3 parts of 67
    const pieces = [long.slice(0, 67), long.slice(67, 134), long.slice(134)];
    const from = smsc.submitted.length;
    // Parts arrive out of order.
    for (const i of [1, 0, 2]) {
      expect(await smsc.text(B, X, pieces[i]!, { udh: Buffer.from([0x05, 0x00, 0x03, 0x2a, 3, i + 1]) })).toBe(smpp.ESME_ROK);
    }
    const out = await waitUntil('three parts out', () => submittedSince(from).length === 3 && submittedSince(from));
    expect(out.every((s) => s.destinationAddr === A && s.sourceAddr === X && s.dataCoding === 8)).toBe(true);
    const sequences = out.map((s) => s.udh[0]!);
    expect(sequences.map((u) => [u[0], u[3], u[4]])).toEqual([
      [0x00, 3, 1],
      [0x00, 3, 2],
      [0x00, 3, 3],
    ]);
    expect(new Set(sequences.map((u) => u[2])).size).toBe(1);
    expect(out.map((s) => s.text).join('')).toBe(long);
    const record = await waitUntil('the record', async () => (await messages('?status=forwarded')).find((m) => m.parts === 3));
    expect(record).toMatchObject({ length: long.length, direction: 'b_to_a' });
  });

  it('reassembles parts numbered with sar_ TLVs', async () => {
    const from = smsc.submitted.length;
    expect(await smsc.text(A, X, 'first half, ', { sar_msg_ref_num: 700, sar_total_segments: 2, sar_segment_seqnum: 1 })).toBe(smpp.ESME_ROK);
    expect(submittedSince(from)).toEqual([]);
    expect(await smsc.text(A, X, 'second half', { sar_msg_ref_num: 700, sar_total_segments: 2, sar_segment_seqnum: 2 })).toBe(smpp.ESME_ROK);
    const [sent] = await waitUntil('the whole message', () => submittedSince(from).length === 1 && submittedSince(from));
    expect(sent!.text).toBe('first half, second half');
  });

  it('binds again after the link drops, and relays on the new link', async () => {
    const bindsBefore = smsc.binds.length;
    smsc.dropLinks();
    await waitUntil('a new bind', () => smsc.binds.length > bindsBefore && sys.app.messaging.smpp?.isBound, 10_000);
    const from = smsc.submitted.length;
    expect(await smsc.text(B, X, 'after the drop')).toBe(smpp.ESME_ROK);
    const [sent] = await waitUntil('the relay', () => submittedSince(from).length === 1 && submittedSince(from));
    expect(sent).toMatchObject({ destinationAddr: A, text: 'after the drop' });
  });

  it('retries a message the SMS centre throttles, then reports it failed (sms.failed)', async () => {
    smsc.refuseWith = smpp.ESME_RTHROTTLED;
    try {
      expect(await smsc.text(A, X, 'throttled')).toBe(smpp.ESME_ROK);
      const failed = await waitUntil('failed', async () => (await messages('?status=failed')).find((m) => m.length === 'throttled'.length), 15_000);
      expect(failed.failure).toBe(`smpp_status_${smpp.ESME_RTHROTTLED}`);
      await hooks.waitFor((ws) => ws.some((w) => w.payload.type === 'sms.failed' && w.payload.data.sms?.id === failed.id));
    } finally {
      smsc.refuseWith = 0;
    }
  });

  it('keeps bodies only when the tenant turns it on', async () => {
    const res = await sys.api('PATCH', '/v1/messages/settings', { storeBody: true, bodyRetentionDays: 3 });
    expect(res).toMatchObject({ status: 200, body: { storeBody: true, bodyRetentionDays: 3, transport: null } });
    expect(await smsc.text(B, X, 'keep me')).toBe(smpp.ESME_ROK);
    const kept = await waitUntil('the kept body, forwarded', async () => (await messages()).find((m) => m.body === 'keep me' && m.status === 'forwarded'));
    expect(kept.length).toBe(7);
    expect((await sys.api('PATCH', '/v1/messages/settings', { bodyRetentionDays: 0 })).body).toMatchObject({ error: { code: 'invalid_field', field: 'bodyRetentionDays' } });
    await sys.api('PATCH', '/v1/messages/settings', { storeBody: false });
    expect(sys.logLines.join('')).not.toContain('keep me');
  });

  it('lists with the CDR filters and a keyset cursor', async () => {
    const all = await messages('?limit=500');
    expect(all.length).toBeGreaterThan(4);
    const first = await sys.api<Page>('GET', '/v1/messages?limit=2');
    expect(first.body.items).toHaveLength(2);
    const second = await sys.api<Page>('GET', `/v1/messages?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.items.map((m) => m.id)).toEqual(all.slice(2, 4).map((m) => m.id));
    expect((await sys.api('GET', '/v1/messages?status=nope')).body).toMatchObject({ error: { code: 'invalid_field', field: 'status' } });
    expect((await sys.api('GET', '/v1/messages?cursor=bm9wZQ')).body).toMatchObject({ error: { code: 'invalid_cursor', field: 'cursor' } });
    expect((await sys.api('GET', '/v1/messages?to=0')).body).toEqual({ items: [], nextCursor: null });
  });
});
