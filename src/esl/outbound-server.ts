/**
 * Outbound Event Socket server: FreeSWITCH's dialplan `socket <host:port> async full` connects here,
 * one TCP connection per call (calls to X). Per connection, as in trace 13a:
 *   connect  -> command/reply carrying the channel's CHANNEL_DATA   (session.channelData)
 *   myevents -> +OK Events Enabled   (every event of this channel, none of the B leg)
 *   nixevent -> +OK events nixed     (those of them the session does not need: options.events)
 *   linger   -> +OK will linger      (events keep coming after hangup until we send exit)
 * then 'session' is emitted. After hangup FreeSWITCH sends a `Content-Disposition: linger` notice and
 * never closes the socket by itself; the session sends `exit` lingerExitMs after that notice (or at
 * close()), which releases the channel (its CHANNEL_DESTROY only comes then).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net, { BlockList } from 'node:net';
import { lazyChildLogger, type Logger } from '../logger';
import { executeHeaders } from './client';
import { OutboundConnection, type EslReply } from './outbound-connection';
import { EslCommandError, EslDisconnectedError, EslError } from './errors';
import { RecordEvent, type EslEvent } from './event';
import { assertNoNewline, rejectAll, track, type PendingOp } from './pending';

export interface EslOutboundServerOptions {
  host: string;
  port: number;
  logger: Logger;
  commandTimeoutMs: number;
  /** Peers that may connect (the switches' addresses); any other is dropped before a byte is read. Default: loopback only. */
  allowedPeers?: BlockList;
  /** Whether a connection's channel data comes from a switch of the fleet (its Core-UUID); others are dropped. */
  fromKnownSwitch?: (channelData: EslEvent) => Promise<boolean>;
  /** Delay between the linger notice and our `exit` (default 1000 ms, as in trace 13a), so late events still arrive. */
  lingerExitMs?: number;
  /**
   * The events of the channel a session needs: the rest of what `myevents` subscribes to is taken back
   * (`nixevent`), so the switch neither serialises nor sends them. Default: all of them.
   */
  events?: readonly string[];
}

/**
 * What `myevents` subscribes an outbound socket to (mod_event_socket.c, 1.10.12): the channel's own
 * events of these types.
 */
export const MYEVENTS_SUBSCRIPTION: readonly string[] = [
  'CHANNEL_ANSWER',
  'CHANNEL_APPLICATION',
  'CHANNEL_BRIDGE',
  'CHANNEL_CREATE',
  'CHANNEL_DATA',
  'CHANNEL_DESTROY',
  'CHANNEL_EXECUTE',
  'CHANNEL_EXECUTE_COMPLETE',
  'CHANNEL_HANGUP',
  'CHANNEL_HANGUP_COMPLETE',
  'CHANNEL_ORIGINATE',
  'CHANNEL_UUID',
  'CHANNEL_OUTGOING',
  'CHANNEL_PARK',
  'CHANNEL_PROGRESS',
  'CHANNEL_PROGRESS_MEDIA',
  'CHANNEL_STATE',
  'CHANNEL_UNBRIDGE',
  'CHANNEL_UNPARK',
  'DETECTED_SPEECH',
  'DTMF',
  'NOTALK',
  'TALK',
];

export interface OutboundSession extends EventEmitter {
  readonly uuid: string;
  readonly channelData: EslEvent;
  /** performance.now() when the switch's connection was accepted: the start of a routing decision. */
  readonly acceptedAt: number;
  execute(app: string, arg?: string, opts?: { awaitCompletion?: boolean; timeoutMs?: number }): Promise<EslEvent | undefined>;
  api(command: string, opts?: { timeoutMs?: number }): Promise<string>;
  close(): Promise<void>;
}

class Session extends EventEmitter implements OutboundSession {
  readonly uuid: string;
  private readonly pending = new Set<PendingOp<unknown>>();
  private readonly executions = new Map<string, PendingOp<EslEvent | undefined>>();
  private hungUp = false;
  private lingerNotice = false;
  private lingerWaiters: Array<() => void> = [];
  private lingerTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private ended = false;

  constructor(
    private readonly conn: OutboundConnection,
    private readonly socket: net.Socket,
    readonly channelData: EslEvent,
    private readonly opts: EslOutboundServerOptions,
    private readonly log: Logger,
    readonly acceptedAt: number,
  ) {
    super();
    this.uuid = channelData.header('Unique-ID') ?? channelData.header('Channel-Unique-ID') ?? '';
    conn.eventSink = (e) => this.dispatch(e);
    conn.noticeSink = (notice) => this.onNotice(notice);
    socket.once('close', () => this.onClosed());
  }

  execute(app: string, arg?: string, opts: { awaitCompletion?: boolean; timeoutMs?: number } = {}): Promise<EslEvent | undefined> {
    const eventUuid = randomUUID();
    try {
      assertNoNewline(app, arg);
      this.requireOpen();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new EslError(String(err)));
    }
    const { op, promise } = track<EslEvent | undefined>(this.pending, opts.timeoutMs ?? this.opts.commandTimeoutMs, `execute ${app}`);
    if (opts.awaitCompletion) {
      this.executions.set(eventUuid, op);
      op.onSettled(() => this.executions.delete(eventUuid));
    }
    this.conn.sendRecv('sendmsg', executeHeaders(app, arg, eventUuid), (reply) => {
      if (op.settled) return;
      const text = reply.getHeader('Reply-Text') ?? '';
      if (!text.startsWith('+OK')) op.reject(new EslCommandError(`execute ${app} refused: ${text}`, text));
      else if (!opts.awaitCompletion) op.resolve(undefined);
    });
    return promise;
  }

  /** `api <command>` on this socket; api/responses come back in order, a timed-out slot still absorbs its late reply. */
  api(command: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    try {
      assertNoNewline(command);
      this.requireOpen();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new EslError(String(err)));
    }
    const sp = command.indexOf(' ');
    const { op, promise } = track<string>(this.pending, opts.timeoutMs ?? this.opts.commandTimeoutMs, `api ${sp === -1 ? command : command.slice(0, sp)}`);
    this.conn.api(command, (reply) => op.resolve(reply.getBody()));
    return promise;
  }

  /** Sends `exit` (after the linger notice if the call has hung up and it is still on its way), then closes. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    clearTimeout(this.lingerTimer);
    if (this.ended) return;
    if (this.hungUp && !this.lingerNotice) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.opts.commandTimeoutMs);
        this.lingerWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- onClosed() may have set it while we awaited the linger notice; TypeScript keeps the narrowing from before the await
    if (this.ended) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => this.socket.destroy(), this.opts.commandTimeoutMs);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.conn.send('exit');
    });
  }

  /** Delivers events that arrived before the session was handed out. */
  replay(events: EslEvent[]): void {
    for (const e of events) this.dispatch(e);
  }

  private requireOpen(): void {
    if (this.ended || this.closing) throw new EslDisconnectedError(`outbound session ${this.uuid} is closed`);
  }

  private dispatch(e: EslEvent): void {
    if (e.name === 'CHANNEL_EXECUTE_COMPLETE' && this.executions.size > 0) {
      const id = e.header('Application-UUID');
      if (id !== undefined) this.executions.get(id)?.resolve(e);
    }
    this.safeEmit('event', e);
    if (e.name === 'CHANNEL_HANGUP_COMPLETE' && !this.hungUp) {
      this.hungUp = true;
      this.safeEmit('hangup', e);
    }
  }

  private onNotice(notice: EslReply): void {
    if (notice.getHeader('Content-Disposition') !== 'linger') return;
    this.lingerNotice = true;
    this.hungUp = true;
    for (const w of this.lingerWaiters.splice(0)) w();
    if (!this.closing) this.lingerTimer = setTimeout(() => void this.close(), this.opts.lingerExitMs ?? 1000);
  }

  private onClosed(): void {
    this.ended = true;
    clearTimeout(this.lingerTimer);
    for (const w of this.lingerWaiters.splice(0)) w();
    rejectAll(this.pending, `outbound session ${this.uuid} ended`);
    this.log.debug('outbound session ended');
    this.safeEmit('end');
  }

  private safeEmit(name: string, ...args: unknown[]): void {
    try {
      this.emit(name, ...args);
    } catch (err) {
      this.log.error({ err, listener: name }, 'outbound session listener threw');
    }
  }
}

export class EslOutboundServer extends EventEmitter {
  private server: net.Server | undefined;
  private serverClosed: Promise<void> = Promise.resolve();
  private readonly sessions = new Set<Session>();
  private readonly sockets = new Set<net.Socket>();
  /** `nixevent` for what myevents subscribes and the sessions do not read; null when they read it all. */
  private readonly nixevent: string | null;

  constructor(private readonly opts: EslOutboundServerOptions) {
    super();
    const unwanted = opts.events ? MYEVENTS_SUBSCRIPTION.filter((name) => !opts.events?.includes(name)) : [];
    this.nixevent = unwanted.length > 0 ? `nixevent ${unwanted.join(' ')}` : null;
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((socket) => this.accept(socket));
      this.server = server;
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.opts.logger.error({ err }, 'outbound socket server error'));
        const addr = server.address() as net.AddressInfo;
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  /**
   * Closes the listening socket: the switch's next `socket` app fails to connect (its dialplan goes on
   * to the next action), while the sessions already here, and connections still in their handshake,
   * carry on. For a graceful shutdown.
   */
  stopAccepting(): void {
    const server = this.server;
    this.server = undefined;
    if (server) this.serverClosed = new Promise<void>((r) => server.close(() => r()));
  }

  /** Stops accepting, sends exit on every live session and closes. */
  async close(): Promise<void> {
    this.stopAccepting();
    await Promise.all([...this.sessions].map((s) => s.close()));
    for (const s of this.sockets) s.destroy();
    await this.serverClosed;
  }

  private accept(socket: net.Socket): void {
    const acceptedAt = performance.now();
    const log = this.opts.logger;
    if (!isAllowedPeer(this.opts.allowedPeers ?? LOOPBACK_ONLY, socket.remoteAddress)) {
      log.warn({ peer: socket.remoteAddress }, 'outbound socket connection from an address that is not a switch: dropped');
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.setNoDelay(true);
    const conn = new OutboundConnection(socket); // sends `connect` at once
    conn.reader.limits = { ...OUTBOUND_FRAME_LIMITS, onOverflow: (err) => fail(err) };
    conn.errorSink = (err) => log.debug({ err }, 'outbound socket error');
    const fail = (err: Error): void => {
      log.warn({ err }, 'outbound socket handshake failed');
      socket.destroy();
    };
    const handshake = setTimeout(() => fail(new EslError('no connect reply')), this.opts.commandTimeoutMs);
    const early: EslEvent[] = []; // events that beat the `linger` reply; replayed once 'session' is out
    conn.eventSink = (e) => early.push(e);
    socket.once('close', () => {
      clearTimeout(handshake);
      conn.release();
    });
    const cmd = (command: string, expect: string, next: () => void): void =>
      conn.sendRecv(command, null, (reply) => {
        const text = reply.getHeader('Reply-Text') ?? '';
        if (text.startsWith(expect)) next();
        else fail(new EslCommandError(`${command} refused: ${text}`, text));
      });
    // Sent right behind `connect`, without waiting for its reply: the switch answers commands in
    // order, so the whole handshake costs one round trip.
    cmd('myevents', '+OK', () => undefined);
    if (this.nixevent !== null) {
      // Events the session would not read cost the switch and us their serialising and parsing; a switch
      // that refuses to take them back still carries the call.
      conn.sendRecv(this.nixevent, null, (reply) => {
        const text = reply.getHeader('Reply-Text') ?? '';
        if (!text.startsWith('+OK')) log.warn({ reply: text }, 'the switch keeps sending events the call does not need');
      });
    }
    cmd('linger', '+OK', () => {
      clearTimeout(handshake);
      if (socket.destroyed) return;
      const headers = conn.channelDataHeaders;
      if (!headers) {
        fail(new EslError('connect reply without CHANNEL_DATA'));
        return;
      }
      const channelData = new RecordEvent(headers, undefined);
      const verified = this.opts.fromKnownSwitch ? this.opts.fromKnownSwitch(channelData) : Promise.resolve(true);
      void verified.then(
        (known) => {
          if (known) {
            this.ready(conn, socket, channelData, acceptedAt, early);
            return;
          }
          log.warn({ peer: socket.remoteAddress }, 'outbound socket connection whose channel data names no switch of the fleet: dropped');
          socket.destroy();
        },
        (err: unknown) => fail(err instanceof Error ? err : new EslError(String(err))),
      );
    });
  }

  private ready(conn: OutboundConnection, socket: net.Socket, channelData: EslEvent, acceptedAt: number, early: EslEvent[]): void {
    if (socket.destroyed) return;
    // Made only if a line is written: the flow logs the call at info under its own child.
    const slog = lazyChildLogger(this.opts.logger, { uuid: channelData.uuid ?? '' }, {});
    const session = new Session(conn, socket, channelData, this.opts, slog, acceptedAt);
    this.sessions.add(session);
    session.once('end', () => this.sessions.delete(session));
    slog.debug('outbound session ready');
    this.emit('session', session);
    session.replay(early);
  }
}

/** A matcher for IPs and CIDRs such as `10.0.0.5`, `10.0.0.0/24`, `::1` (validated by the config). */
export function peerMatcher(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits] = entry.split('/') as [string, string | undefined];
    const type = net.isIPv6(address) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}

const LOOPBACK_ONLY = peerMatcher(['127.0.0.0/8', '::1']);

/** Frames a switch sends on a call's socket: its CHANNEL_DATA and events are tens of KB at most. */
const OUTBOUND_FRAME_LIMITS = { maxHeaderBytes: 256 << 10, maxBodyBytes: 1 << 20 };

function isAllowedPeer(allowed: BlockList, address: string | undefined): boolean {
  if (!address) return false;
  const mappedV4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mappedV4 !== undefined) return allowed.check(mappedV4, 'ipv4');
  // A socket's own peer address is a well-formed IP: only IPv6 has colons (net.isIPv6's regular expression is not needed per call).
  return allowed.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
}
