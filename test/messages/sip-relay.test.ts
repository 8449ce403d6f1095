import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { MessageRecord } from '../../src/domain/message';
import { FreeSwitchSimulator } from '../simulator';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { startTestSystem, X, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';

/**
 * Text messages over SIP MESSAGE through the switch (mod_sms): first the simulator held to what the real
 * 1.10.12 switch sent in recordings 18a (a MESSAGE to X) and 18b (SMS::SEND_MESSAGE and its delivery report),
 * then the controller relaying through the simulator.
 */
const RECORDINGS = path.resolve(__dirname, '../simulator/recordings');

interface Recorded {
  dir: 'send' | 'recv';
  raw: string;
}

function recording(name: string): Recorded[] {
  return fs
    .readFileSync(path.join(RECORDINGS, `${name}.esl.jsonl`), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Recorded);
}

/** An event-plain message's inner header lines (name, decoded value) and its body. */
function plainEvent(raw: string): { headers: Array<[string, string]>; body: string } {
  const inner = raw.slice(raw.indexOf('\n\n') + 2);
  const end = inner.indexOf('\n\n');
  const headers = inner
    .slice(0, end)
    .split('\n')
    .map((l): [string, string] => [l.slice(0, l.indexOf(':')), decodeURIComponent(l.slice(l.indexOf(':') + 2))]);
  return { headers, body: inner.slice(end + 2) };
}

const events = (msgs: Recorded[]) => msgs.filter((m) => m.dir === 'recv' && m.raw.includes('Content-Type: text/event-plain')).map((m) => plainEvent(m.raw));
const names = (e: { headers: Array<[string, string]> }) => e.headers.map(([k]) => k);
const value = (e: { headers: Array<[string, string]> }, k: string) => e.headers.find(([h]) => h === k)?.[1];

/** A raw ESL client that frames by bytes and keeps every message. */
async function rawClient(port: number): Promise<{ send(raw: string): void; received: string[]; close(): void }> {
  const sock = net.connect(port, '127.0.0.1');
  const received: string[] = [];
  let pending = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    for (;;) {
      const end = pending.indexOf('\n\n');
      if (end < 0) return;
      const length = Number(/(?:^|\n)Content-Length: (\d+)/.exec(pending.subarray(0, end).toString())?.[1] ?? 0);
      if (pending.length < end + 2 + length) return;
      received.push(pending.subarray(0, end + 2 + length).toString('utf8'));
      pending = pending.subarray(end + 2 + length);
    }
  });
  await waitUntil('auth/request', () => received.length > 0);
  return { send: (raw) => sock.write(raw), received, close: () => sock.destroy() };
}

describe('the simulator’s text messages, held to the real switch’s recordings', () => {
  let sim: FreeSwitchSimulator;
  let port: number;
  beforeAll(async () => {
    sim = new FreeSwitchSimulator({ timeScale: 0.1 });
    port = (await sim.start()).port;
  });
  afterAll(async () => {
    await sim.stop();
  });

  async function subscribed() {
    const c = await rawClient(port);
    c.send('auth ClueCon\n\n');
    c.send('event plain MESSAGE CUSTOM SMS::DELIVERY_REPORT\n\n');
    await waitUntil('subscribed', () => c.received.length >= 3);
    return c;
  }

  it('18a: a MESSAGE to X is fired by the chatplan, then fired again by mod_sms as delivered', async () => {
    const recorded = events(recording('18a-message-in'));
    expect(recorded).toHaveLength(2);
    const c = await subscribed();
    const first = recorded[0]!;
    sim.messages.receive({ from: value(first, 'from_user')!, to: value(first, 'to_user')!, body: first.body, fromHost: '127.0.0.3', fromPort: 5290, switchHost: '127.0.0.3' });
    await waitUntil('two MESSAGE events', () => events(c.received.map((raw) => ({ dir: 'recv', raw }))).length === 2);
    const seen = events(c.received.map((raw) => ({ dir: 'recv', raw })));
    c.close();
    for (const [i, e] of seen.entries()) {
      expect(names(e)).toEqual(names(recorded[i]!));
      expect(e.body).toBe(recorded[i]!.body);
      for (const k of ['Event-Name', 'proto', 'from', 'from_user', 'to_user', 'to', 'context', 'sip_profile', 'dest_proto', 'ng_relay', 'final_delivery', 'Nonblocking-Delivery']) {
        expect([k, value(e, k)]).toEqual([k, value(recorded[i]!, k)]);
      }
    }
    expect(value(seen[0]!, 'Event-Sequence')).toBe(value(seen[1]!, 'Event-Sequence'));
  });

  it('18b: SMS::SEND_MESSAGE is replied +OK <Event-UUID>, and its delivery report carries the carrier’s answer', async () => {
    const trace = recording('18b-message-out');
    const sent = trace.find((m) => m.dir === 'send' && m.raw.startsWith('sendevent'))!;
    const recordedReply = trace.find((m) => m.dir === 'recv' && m.raw.includes('Reply-Text: +OK ') && !m.raw.includes('accepted') && !m.raw.includes('listener'))!;
    const [recordedReport] = events(trace);
    const c = await subscribed();
    c.send(sent.raw);
    await waitUntil('the report', () => events(c.received.map((raw) => ({ dir: 'recv', raw }))).length === 1);
    const reply = c.received.find((r) => /Reply-Text: \+OK [0-9a-f-]{36}\n/.test(r));
    expect(reply).toBeDefined();
    expect(recordedReply.raw).toMatch(/Reply-Text: \+OK [0-9a-f-]{36}\n/);
    const [report] = events(c.received.map((raw) => ({ dir: 'recv', raw })));
    c.close();
    expect(names(report!)).toEqual(names(recordedReport!));
    for (const k of ['Event-Subclass', 'Event-Name', 'Status', 'Command', 'ng_carrier_id', 'to', 'from', 'Content-Length', 'Delivery-Result-Code', 'Delivery-Failure']) {
      expect([k, value(report!, k)]).toEqual([k, value(recordedReport!, k)]);
    }
    expect(value(report!, 'Event-UUID')).toBe(/\+OK (\S+)/.exec(reply!)![1]);
    expect(report!.body).toBe('');
    const text = sent.raw.slice(sent.raw.indexOf('\n\n') + 2);
    expect(sim.messages.sent.at(-1)).toEqual({ from: '"700100000000001" <sip:700100000000001@127.0.0.3>', to: 'sip:13900000002@127.0.0.3:5291', body: text });
    const sipTrace = fs.readFileSync(path.join(RECORDINGS, '18b-message-out.sip.txt'), 'utf8');
    expect(sipTrace).toContain('From: "700100000000001" <sip:700100000000001@127.0.0.3>');
    expect(sipTrace).toContain(text);
  });
});

describe('text messages through X over SIP (the controller against the simulator)', () => {
  const A = '13800003101';
  const B = '13900003102';
  let sys: TestSystem;

  beforeAll(async () => {
    sys = await startTestSystem({ env: { MESSAGE_SIP_URI_TEMPLATE: 'sip:{number}@127.0.0.1:5291', MESSAGE_SIP_FROM_HOST: '127.0.0.1', MESSAGE_SEND_ATTEMPTS: '2', MESSAGE_RETRY_DELAY_MS: '20' } });
    expect((await sys.api('POST', '/v1/bindings', { mode: 'axb', a: A, b: B, x: X })).status).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await sys?.stop();
  });

  const records = async (): Promise<MessageRecord[]> => (await sys.api<{ items: MessageRecord[] }>('GET', '/v1/messages?limit=500')).body.items;

  it('relays A → X to B from X, once, and records it delivered on the carrier’s 202', async () => {
    const text = 'Parcel at the door — 请开门\r\n';
    sys.sim.messages.receive({ from: A, to: X, body: text });
    const [sent] = await waitUntil('the MESSAGE out', () => sys.sim.messages.sent.length === 1 && sys.sim.messages.sent);
    expect(sent).toEqual({ from: `"${X}" <sip:${X}@127.0.0.1>`, to: `sip:${B}@127.0.0.1:5291`, body: text });
    expect(JSON.stringify(sent)).not.toContain(A);
    const record = await waitUntil('delivered', async () => (await records()).find((m) => m.status === 'delivered'));
    expect(record).toMatchObject({ transport: 'sip', direction: 'a_to_b', senderMasked: '138****3101', recipientMasked: '139****3102', parts: 1 });
    // mod_sms's second MESSAGE event (Nonblocking-Delivery) is not a second text.
    await new Promise((r) => setTimeout(r, 300));
    expect(sys.sim.messages.sent).toHaveLength(1);
    const sendevent = sys.sim.receivedRaw.find((r) => r.startsWith('sendevent CUSTOM'))!;
    expect(sendevent).toContain('dest_proto: sip\n');
    expect(sendevent).toContain(`from: ${X}@127.0.0.1\n`);
    expect(sendevent.replace(text, '')).not.toContain(A);
  });

  it('records a text the carrier refuses as failed, with the SIP answer', async () => {
    sys.sim.messages.carrierAnswer = 480;
    try {
      sys.sim.messages.receive({ from: B, to: X, body: 'are you there?' });
      const failed = await waitUntil('failed', async () => (await records()).find((m) => m.status === 'failed'));
      expect(failed).toMatchObject({ direction: 'b_to_a', failure: 'sip_480' });
    } finally {
      sys.sim.messages.carrierAnswer = 202;
    }
  });

  it('ignores a MESSAGE to a number that is not a privacy number (the chatplan fires nothing)', async () => {
    const before = (await records()).length;
    sys.sim.messages.receive({ from: A, to: B, body: 'not for X' });
    await new Promise((r) => setTimeout(r, 300));
    expect((await records()).length).toBe(before);
  });
});

describe('a SIP text sofia already answered 202 while Redis refuses writes', () => {
  const A = '13800003201';
  const B = '13900003202';
  let redisServer: PrivateRedis;
  let sys: TestSystem;

  beforeAll(async () => {
    redisServer = await startPrivateRedis();
    sys = await startTestSystem({
      env: {
        REDIS_URL: redisServer.url,
        MESSAGE_SIP_URI_TEMPLATE: 'sip:{number}@127.0.0.1:5291',
        MESSAGE_SIP_FROM_HOST: '127.0.0.1',
        MESSAGE_SPOOL_ENQUEUE_TIMEOUT_MS: '300',
        MESSAGE_SPOOL_RETRY_MS: '100',
      },
    });
    expect((await sys.api('POST', '/v1/bindings', { mode: 'axb', a: A, b: B, x: X })).status).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await redisServer?.admin.config('SET', 'min-replicas-to-write', '0');
    await sys?.stop();
    await redisServer?.stop();
  });

  it('is kept on the controller’s disk, not lost, and relayed once Redis takes writes again', async () => {
    await redisServer.admin.config('SET', 'min-replicas-to-write', '1');
    sys.sim.messages.receive({ from: A, to: X, body: 'kept while Redis refuses' });
    await waitUntil('kept on disk', () => sys.app.messaging.spool.waiting === 1);
    const files = fs.readdirSync(sys.env.MESSAGE_SPOOL_DIR!).filter((f) => f.endsWith('.jsonl'));
    expect(files).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 500));
    expect(sys.sim.messages.sent).toHaveLength(0);
    await redisServer.admin.config('SET', 'min-replicas-to-write', '0');
    const [sent] = await waitUntil('the MESSAGE out', () => sys.sim.messages.sent.length === 1 && sys.sim.messages.sent, 20_000);
    expect(sent).toEqual({ from: `"${X}" <sip:${X}@127.0.0.1>`, to: `sip:${B}@127.0.0.1:5291`, body: 'kept while Redis refuses' });
    await waitUntil('the spool emptied', () => sys.app.messaging.spool.waiting === 0 && fs.readdirSync(sys.env.MESSAGE_SPOOL_DIR!).filter((f) => f.endsWith('.jsonl')).length === 0);
    expect(sys.logLines.join('')).not.toContain(A);
  });
});
