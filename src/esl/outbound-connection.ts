/**
 * The switch's side of one outbound-socket call (one TCP connection per call to X), without modesl.
 * An outbound connection needs little of it: send `connect`, write commands, hand each command/reply
 * and api/response to the callback its command queued (in order), channel events to eventSink, the
 * disconnect notice to noticeSink. modesl's Connection costs a wildcard EventEmitter2 with its
 * listener trees per call for none of that; the inbound client (connection.ts) keeps it.
 */
import type { Socket } from 'node:net';
import { writeCommand } from './connection';
import { parseJsonEvent, parsePlainEvent, type EslEvent } from './event';
import { FrameReader } from './framing';

/** A command/reply, api/response or notice: its outer headers (decoded) and body. */
export class EslReply {
  constructor(
    private readonly headers: Readonly<Record<string, string>>,
    private readonly body: string | undefined,
  ) {}

  getHeader(name: string): string | null {
    return this.headers[name] ?? null;
  }

  getBody(): string {
    return this.body ?? '';
  }
}

type ReplyCallback = (reply: EslReply) => void;

export class OutboundConnection {
  /** Receives every text/event-plain and text/event-json message, parsed; events with none set are dropped. */
  eventSink: ((e: EslEvent) => void) | undefined;
  /** Receives the switch's text/disconnect-notice messages (the linger notice after hangup). */
  noticeSink: ((notice: EslReply) => void) | undefined;
  /** Socket errors, a command on a closed socket, an unparsable event. */
  errorSink: ((err: Error) => void) | undefined;
  /** Headers of the `connect` reply: the channel's CHANNEL_DATA, decoded. */
  channelDataHeaders: Record<string, string> | undefined;
  readonly reader: FrameReader;
  private readonly replyCallbacks: ReplyCallback[] = [];
  private readonly apiCallbacks: ReplyCallback[] = [];

  /** Sends `connect` at once (its reply carries the channel data). */
  constructor(private readonly socket: Socket) {
    this.reader = new FrameReader((headers, body) => this.onFrame(headers, body));
    socket.on('data', this.onData);
    socket.on('error', (err) => this.errorSink?.(err));
    this.sendRecv('connect', null, () => undefined);
  }

  private readonly onData = (chunk: Buffer): void => this.reader.push(chunk);

  /**
   * Once the socket has closed: lets go of everything the call hung on it. A closed socket's object
   * outlives V8's young-generation collections (every call's socket is promoted), and with it
   * whatever its listeners reach: without this, every call's session, flow and events were copied
   * and promoted too.
   */
  release(): void {
    this.socket.off('data', this.onData);
    this.eventSink = undefined;
    this.noticeSink = undefined;
    this.errorSink = undefined;
    this.channelDataHeaders = undefined;
    this.replyCallbacks.length = 0;
    this.apiCallbacks.length = 0;
  }

  send(command: string, args?: Record<string, string> | null): void {
    if (this.socket.destroyed || this.socket.writableEnded) {
      this.errorSink?.(new Error('esl socket is not connected'));
      return;
    }
    writeCommand(this.socket, command, args);
  }

  /** A command whose command/reply goes to `onReply` (replies come back in the order commands were sent). */
  sendRecv(command: string, args: Record<string, string> | null, onReply: ReplyCallback): void {
    this.replyCallbacks.push(onReply);
    this.send(command, args);
  }

  /** `api <command>`, whose api/response goes to `onResponse`. */
  api(command: string, onResponse: ReplyCallback): void {
    this.apiCallbacks.push(onResponse);
    this.send(`api ${command}`);
  }

  private onFrame(headers: Record<string, string>, body: string | undefined): void {
    switch (headers['Content-Type']) {
      case 'text/event-plain':
        if (body !== undefined) this.eventSink?.(parsePlainEvent(body));
        return;
      case 'text/event-json':
        if (body !== undefined && this.eventSink) {
          let e: EslEvent;
          try {
            e = parseJsonEvent(body);
          } catch (err) {
            this.errorSink?.(err as Error);
            return;
          }
          this.eventSink(e);
        }
        return;
      case 'command/reply':
        if (headers['Event-Name'] === 'CHANNEL_DATA') this.channelDataHeaders = headers;
        this.replyCallbacks.shift()?.(new EslReply(headers, body));
        return;
      case 'api/response':
        this.apiCallbacks.shift()?.(new EslReply(headers, body));
        return;
      case 'text/disconnect-notice':
        this.noticeSink?.(new EslReply(headers, body));
        return;
      default:
      // Nothing else is sent on an outbound socket that asked for its own events only.
    }
  }
}
