/**
 * modesl.Connection with our framing and event path installed. modesl still owns the socket,
 * the auth handshake and command sending (sendRecv, FIFO command/reply callbacks); we replace:
 *  - the Parser (`_onConnect`): FrameReader, and channel events go straight to `eventSink` as
 *    lazily parsed EslEvents, skipping modesl's Event objects and EventEmitter2 wildcard dispatch.
 *    Every other message (auth/request, disconnect notices, log data) still reaches modesl's
 *    `_onEvent(event, headers, body)` exactly as its own Parser would emit it, so sendRecv/api
 *    callbacks keep working. With no sink set, events take modesl's path too.
 *  - `auth`: no silent `event json BACKGROUND_JOB CHANNEL_EXECUTE_COMPLETE` on success, and a
 *    refused password emits `esl::auth::fail` (which we turn into an EslAuthError).
 *  - reply dispatch: command/reply and api/response call the callback their command queued directly
 *    (modesl's own listeners do just that, after a wildcard emit nobody else hears).
 *  - `subscribe`: modesl's outbound constructor subscribes json events after `connect`; ours
 *    only calls back, so the session's format and subscription stay ours (`myevents`).
 */
import type { Socket } from 'node:net';
import { parseJsonEvent, parsePlainEvent, type EslEvent } from './event';
import { FrameReader } from './framing';

export interface ModeslEvent {
  getHeader(name: string): string | null;
  getBody(): string;
  addHeader(name: string, value: string): string;
}

interface ModeslConnection {
  socket: Socket | null;
  password: string;
  authed: boolean;
  connecting: boolean;
  channelData: ModeslEvent | null;
  on(event: string, listener: (...args: never[]) => void): unknown;
  once(event: string, listener: (...args: never[]) => void): unknown;
  emit(event: string, ...args: unknown[]): boolean;
  removeAllListeners(event?: string): unknown;
  send(command: string, args?: Record<string, string> | null): void;
  sendRecv(command: string, args: Record<string, string> | null, cb: (e: ModeslEvent) => void): void;
  /** modesl's FIFO of command-reply callbacks (what sendRecv pushes to). */
  cmdCallbackQueue: Array<(e: ModeslEvent) => void>;
  /** modesl's FIFO of api-response callbacks (what api pushes to). */
  apiCallbackQueue: Array<(e: ModeslEvent) => void>;
  api(command: string, cb: (e: ModeslEvent) => void): void;
  _onEvent(event: ModeslEvent, headers: Record<string, string>, body: string | undefined): void;
  _onError(err: Error): void;
}

interface ModeslModule {
  Connection: new (...args: unknown[]) => ModeslConnection;
  Event: new (headers: Record<string, string>, body?: string) => ModeslEvent;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const modesl = require('modesl') as ModeslModule;

/** Builds the modesl Event its own Parser would have built (incl. the Modesl-Reply-OK/ERR headers). */
export function toModeslEvent(headers: Record<string, string>, body: string | undefined): ModeslEvent {
  let data: Record<string, string> | undefined;
  const ct = headers['Content-Type'];
  if (ct === 'text/event-plain' || ct === 'text/event-json') {
    const e = ct === 'text/event-plain' ? parsePlainEvent(body ?? '') : parseJsonEvent(body ?? '{}');
    data = { ...e.headers };
    if (e.body !== undefined) data._body = e.body;
  }
  const event = data ? new modesl.Event(data) : new modesl.Event(headers, body);
  const reply = event.getHeader('Reply-Text');
  if (reply) {
    if (reply.startsWith('-ERR')) event.addHeader('Modesl-Reply-ERR', reply.substring(5));
    else if (reply.startsWith('+OK')) event.addHeader('Modesl-Reply-OK', reply.substring(4));
  }
  return event;
}

const Base = modesl.Connection;

export class FastConnection extends Base {
  /** Receives every text/event-plain and text/event-json message, parsed. Set right after construction. */
  declare eventSink: ((e: EslEvent) => void) | undefined;
  /** Headers of the `connect` reply (outbound mode): the channel's CHANNEL_DATA, decoded. */
  declare channelDataHeaders: Record<string, string> | undefined;
  declare reader: FrameReader;

  /** Inbound: (host, port, password). Outbound: (socket). Declared for its types: modesl's own constructor takes anything. */
  // eslint-disable-next-line @typescript-eslint/no-useless-constructor -- it narrows the untyped base constructor's arguments
  constructor(...args: [string, number, string] | [Socket]) {
    super(...args);
  }

  /** Replaces modesl's Parser; called by modesl once the socket is connected (or at once, outbound). */
  _onConnect(): void {
    const socket = this.socket as Socket;
    this.reader = new FrameReader((headers, body) => this.onFrame(headers, body));
    socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
    this.emit('esl::connect');
    this.connecting = false;
    this.on('esl::event::auth::request', () => this.auth());
  }

  private onFrame(headers: Record<string, string>, body: string | undefined): void {
    const ct = headers['Content-Type'];
    const sink = this.eventSink;
    if (sink !== undefined && body !== undefined) {
      if (ct === 'text/event-plain') {
        sink(parsePlainEvent(body));
        return;
      }
      if (ct === 'text/event-json') {
        let e: EslEvent;
        try {
          e = parseJsonEvent(body);
        } catch (err) {
          this._onError(err as Error);
          return;
        }
        sink(e);
        return;
      }
    }
    // Replies go straight to the callback their command queued (what modesl's own reply listeners
    // do), without modesl's wildcard event dispatch: nothing here listens to replies otherwise.
    if (ct === 'command/reply') {
      if (headers['Event-Name'] === 'CHANNEL_DATA') this.channelDataHeaders = headers;
      this.answer(this.cmdCallbackQueue, headers, body);
      return;
    }
    if (ct === 'api/response') {
      this.answer(this.apiCallbackQueue, headers, body);
      return;
    }
    this._onEvent(toModeslEvent(headers, body), headers, body);
  }

  private answer(callbacks: Array<(e: ModeslEvent) => void>, headers: Record<string, string>, body: string | undefined): void {
    const callback = callbacks.shift();
    if (callback !== undefined) callback.call(this, toModeslEvent(headers, body));
  }

  auth(): void {
    this.sendRecv('auth ' + this.password, null, (evt) => {
      if (evt.getHeader('Modesl-Reply-OK') === 'accepted') {
        this.authed = true;
        this.emit('esl::event::auth::success', evt);
        this.emit('esl::ready');
      } else {
        this.authed = false;
        this.emit('esl::event::auth::fail', evt);
      }
    });
  }

  /** One write per command (modesl writes every line separately): see writeCommand. */
  override send(command: string, args?: Record<string, string> | null, body?: string): void {
    const socket = this.socket;
    if (socket === null || socket.destroyed) {
      this.emit('error', new Error('esl socket is not connected'));
      return;
    }
    writeCommand(socket, command, args, body);
  }

  /** sendRecv with a body (sendevent): the reply callback is queued as modesl's own sendRecv does. */
  sendRecvWithBody(command: string, args: Record<string, string>, body: string, cb: (e: ModeslEvent) => void): void {
    this.cmdCallbackQueue.push(cb);
    this.send(command, args, body);
  }

  subscribe(_events: unknown, cb?: () => void): void {
    if (typeof cb === 'function') cb();
  }
}

/**
 * Writes one ESL command (a body follows the blank line, announced by Content-Length) as one string.
 * Commands written in the same tick leave in one segment (the socket is corked until the next tick):
 * a burst of commands costs one write system call, not one each.
 */
export function writeCommand(socket: Socket, command: string, args?: Record<string, string> | null, body?: string): void {
  let out = command + '\n';
  if (args) for (const [key, value] of Object.entries(args)) out += `${key}: ${value}\n`;
  if (body !== undefined) out += `Content-Length: ${Buffer.byteLength(body, 'utf8')}\n`;
  if (socket.writableCorked === 0) {
    socket.cork();
    process.nextTick(() => socket.uncork());
  }
  socket.write(out + '\n' + (body ?? ''));
}
