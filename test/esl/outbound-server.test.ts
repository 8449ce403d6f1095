import net from 'node:net';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EslDisconnectedError } from '../../src/esl/errors';
import type { EslEvent } from '../../src/esl/event';
import { EslOutboundServer, MYEVENTS_SUBSCRIPTION, type OutboundSession } from '../../src/esl/outbound-server';
import { once, silent, until } from './support/helpers';
import { recvWhere, trace } from './support/traces';

const T = trace('13a-outbound-socket-bound-call');
const sent = T.filter((m) => m.dir === 'send').map((m) => m.raw);
const got = T.filter((m) => m.dir === 'recv').map((m) => m.raw);
const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

/** A fake FreeSWITCH that dials our outbound server and answers with 13a's exact bytes. */
class FakeSwitch {
  readonly socket: net.Socket;
  readonly commands: Array<{ raw: string; at: number }> = [];
  private buf = '';
  private waiters: Array<() => void> = [];
  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('error', () => undefined);
    this.socket.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i: number;
      while ((i = this.buf.indexOf('\n\n')) !== -1) {
        this.commands.push({ raw: this.buf.slice(0, i + 2), at: Date.now() });
        this.buf = this.buf.slice(i + 2);
        for (const w of this.waiters.splice(0)) w();
      }
    });
  }
  async command(pred: (raw: string) => boolean): Promise<{ raw: string; at: number }> {
    for (;;) {
      const c = this.commands.find((x) => pred(x.raw));
      if (c) return c;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
  write(raw: string): void {
    this.socket.write(raw);
  }
}

describe('EslOutboundServer (trace 13a)', () => {
  let server: EslOutboundServer;
  let port: number;
  beforeEach(async () => {
    server = new EslOutboundServer({ host: '127.0.0.1', port: 0, logger: silent, commandTimeoutMs: 1000, lingerExitMs: 50 });
    ({ port } = await server.listen());
  });
  afterEach(() => server.close());

  async function handshake(): Promise<{ fs: FakeSwitch; session: OutboundSession }> {
    const sessionP = once<OutboundSession>(server, 'session');
    const fs = new FakeSwitch(port);
    expect((await fs.command(() => true)).raw).toBe(sent[0]); // connect
    fs.write(got[0] as string);
    expect((await fs.command((r) => r.startsWith('myevents'))).raw).toBe(sent[1]);
    fs.write(got[1] as string);
    expect((await fs.command((r) => r.startsWith('linger'))).raw).toBe(sent[2]);
    fs.write(got[2] as string);
    return { fs, session: await sessionP };
  }

  it('connect/myevents/linger, bridge to completion, hangup, exit only after the linger notice', async () => {
    const { fs, session } = await handshake();
    expect(session.uuid).toBe('207e8b38-df62-40d5-bdd6-b98654e65f58');
    expect(session.channelData.name).toBe('CHANNEL_DATA');
    expect(session.channelData.header('Caller-Caller-ID-Number')).toBe('13800000001');
    expect(session.channelData.header('Caller-Destination-Number')).toBe('700100000000001');
    expect(session.channelData.header('Reply-Text')).toBe('+OK\n');

    // api on this socket: the api/response comes back on the same connection
    const exists = session.api(`uuid_exists ${session.uuid}`);
    await fs.command((r) => r.startsWith('api '));
    fs.write(recvWhere('03', (r) => r.startsWith('Content-Type: api/response\nContent-Length: 4\n\ntrue')));
    await expect(exists).resolves.toBe('true');

    const events: EslEvent[] = [];
    session.on('event', (e: EslEvent) => events.push(e));
    const hangup = once<EslEvent>(session, 'hangup');
    const ended = once(session, 'end');
    const bridgeArg = '{origination_caller_id_number=700100000000001}sofia/internal/13900000002@127.0.0.1:5091';
    const bridged = session.execute('bridge', bridgeArg, { awaitCompletion: true, timeoutMs: 5000 });
    const sendmsg = await fs.command((r) => r.startsWith('sendmsg'));
    const eventUuid = /\nEvent-UUID: (\S+)\n/.exec(sendmsg.raw)?.[1] as string;
    // what 13a sent, plus our Event-UUID for completion tracking
    expect(sendmsg.raw).toBe((sent[3] as string).replace(/\n\n$/, `\nEvent-UUID: ${eventUuid}\n\n`));
    fs.write(got[3] as string); // +OK

    // play the rest of 13a; the bridge's Application-UUID becomes our Event-UUID (same length, same Content-Length)
    let lingerAt = 0;
    for (const raw of got.slice(4, -2)) {
      const isBridgeApp = /Event-Name: CHANNEL_EXECUTE(_COMPLETE)?\n/.test(raw) && raw.includes('\nApplication: bridge\n');
      const out = isBridgeApp ? raw.replace(new RegExp(`(\nApplication-UUID: )${UUID_RE.source}`), `$1${eventUuid}`) : raw;
      if (raw.includes('Content-Disposition: linger')) lingerAt = Date.now();
      fs.write(out);
    }
    expect(lingerAt).toBeGreaterThan(0);
    const done = await bridged;
    expect(done?.header('Application')).toBe('bridge');
    expect(done?.header('Application-UUID')).toBe(eventUuid);
    expect((await hangup).name).toBe('CHANNEL_HANGUP_COMPLETE');
    expect((await hangup).header('Hangup-Cause')).toBe('NORMAL_CLEARING');
    expect(events.map((e) => e.name)).toEqual([
      'CHANNEL_PARK', 'CHANNEL_EXECUTE', 'CHANNEL_PROGRESS', 'CHANNEL_PROGRESS_MEDIA', 'CHANNEL_ANSWER', 'CHANNEL_BRIDGE',
      'CHANNEL_HANGUP', 'CHANNEL_UNBRIDGE', 'CHANNEL_EXECUTE_COMPLETE', 'CHANNEL_UNPARK', 'CHANNEL_EXECUTE_COMPLETE',
      'CHANNEL_STATE', 'CHANNEL_STATE', 'CHANNEL_HANGUP_COMPLETE',
    ]);
    expect(events.every((e) => e.uuid === session.uuid)).toBe(true);

    const exit = await fs.command((r) => r === 'exit\n\n');
    expect(exit.at - lingerAt).toBeGreaterThanOrEqual(40);
    fs.write((got.at(-2) as string) + (got.at(-1) as string)); // +OK bye, disconnect notice
    fs.socket.end();
    await ended;
    expect(fs.commands.map((c) => c.raw.split('\n')[0])).toEqual(['connect', 'myevents', 'linger', 'api uuid_exists 207e8b38-df62-40d5-bdd6-b98654e65f58', 'sendmsg', 'exit']);
  });

  it('rejects pending commands and emits end when FreeSWITCH drops the socket', async () => {
    const { fs, session } = await handshake();
    const ended = once(session, 'end');
    const pending = session.execute('answer', undefined, { awaitCompletion: true });
    await fs.command((r) => r.startsWith('sendmsg'));
    fs.socket.destroy();
    await expect(pending).rejects.toBeInstanceOf(EslDisconnectedError);
    await ended;
    await expect(session.api('uuid_exists x')).rejects.toBeInstanceOf(EslDisconnectedError);
  });

  it('a closed socket holds nothing of its call: the session and what listens to it can be collected while the socket lingers', async () => {
    // A closed socket's object outlives V8's young-generation collections; whatever it still
    // reaches is copied and promoted with it on every call.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const endCall = async (): Promise<{ socket: net.Socket; session: WeakRef<OutboundSession>; flowState: WeakRef<object> }> => {
      const { fs, session } = await handshake();
      const flowState = { events: [] as EslEvent[] };
      session.on('event', (e: EslEvent) => flowState.events.push(e));
      const pending = session.execute('bridge', 'sofia/gateway/carrier/13900000002', { awaitCompletion: true }).catch(() => undefined);
      await fs.command((r) => r.startsWith('sendmsg'));
      const ended = once(session, 'end');
      fs.socket.destroy();
      await ended;
      await pending;
      // The socket as the switch's connection left it on our side (the session's own handle on it).
      const socket = (session as unknown as { socket: net.Socket }).socket;
      return { socket, session: new WeakRef(session), flowState: new WeakRef(flowState) };
    };
    const { socket, session, flowState } = await endCall();
    await new Promise((r) => setImmediate(r));
    gc();
    expect(socket.destroyed).toBe(true);
    expect(session.deref()).toBeUndefined();
    expect(flowState.deref()).toBeUndefined();
  });

  it('close() before the linger notice of a hung-up call waits for it, then sends exit', async () => {
    const { fs, session } = await handshake();
    const hc = got.find((r) => r.includes('Event-Name: CHANNEL_HANGUP_COMPLETE')) as string;
    const hangup = once(session, 'hangup');
    fs.write(hc);
    await hangup;
    const closing = session.close();
    // Proving that nothing is sent takes time: a close() that did not wait for the linger notice would have sent exit by now.
    await new Promise((r) => setTimeout(r, 30));
    expect(fs.commands.some((c) => c.raw === 'exit\n\n')).toBe(false);
    fs.write(got.find((r) => r.includes('Content-Disposition: linger')) as string);
    await fs.command((r) => r === 'exit\n\n');
    fs.write((got.at(-2) as string) + (got.at(-1) as string));
    fs.socket.end();
    await closing;
    await until(() => fs.socket.destroyed || fs.socket.readyState === 'closed');
  });
});

describe('EslOutboundServer with the events a session needs', () => {
  const wanted = ['CHANNEL_BRIDGE', 'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_EXECUTE_COMPLETE'];
  let server: EslOutboundServer;
  let port: number;
  beforeEach(async () => {
    server = new EslOutboundServer({ host: '127.0.0.1', port: 0, logger: silent, commandTimeoutMs: 200, lingerExitMs: 50, events: wanted });
    ({ port } = await server.listen());
  });
  afterEach(() => server.close());

  it.each([
    ['takes the rest back', 'Content-Type: command/reply\nReply-Text: +OK events nixed\n\n'],
    ['still carries the call when the switch refuses to take them back', 'Content-Type: command/reply\nReply-Text: -ERR no keywords supplied\n\n'],
  ])('takes back what myevents subscribes and the session does not read, before linger; %s', async (_, nixReply) => {
    const sessionP = once<OutboundSession>(server, 'session');
    const fs = new FakeSwitch(port);
    await fs.command((r) => r === sent[0]);
    fs.write(got[0] as string);
    await fs.command((r) => r.startsWith('myevents'));
    fs.write(got[1] as string);
    const nix = await fs.command((r) => r.startsWith('nixevent'));
    const nixed = nix.raw.trim().split(' ').slice(1);
    expect(nixed).toEqual(MYEVENTS_SUBSCRIPTION.filter((name) => !wanted.includes(name)));
    expect(nixed).toContain('CHANNEL_STATE');
    fs.write(nixReply);
    // the switch answers in order: nixevent's reply before linger's
    const linger = await fs.command((r) => r.startsWith('linger'));
    expect(fs.commands.indexOf(linger)).toBeGreaterThan(fs.commands.indexOf(nix));
    fs.write(got[2] as string);
    const session = await sessionP;
    expect(session.uuid).toBe('207e8b38-df62-40d5-bdd6-b98654e65f58');
  });
});
