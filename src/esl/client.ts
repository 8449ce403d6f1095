/**
 * Inbound Event Socket connection to FreeSWITCH, over modesl.Connection (see connection.ts).
 *
 * What modesl does not do and this class does:
 *  - reconnects with exponential backoff, and re-sends the subscription after every (re)connect;
 *  - every command has a timeout; every pending command rejects when the socket drops;
 *  - api()/bgapi() run as `bgapi` with our own Job-UUID, so each result is matched to its command by
 *    id however many are in flight and in whatever order the BACKGROUND_JOBs come back;
 *  - a refused password is an EslAuthError (modesl only emits an event);
 *  - one narrow `event plain ...` subscription, narrowed further by `filter`s, events parsed into EslEvent
 *    and routed per uuid.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Logger } from '../logger';
import { FastConnection, type ModeslEvent } from './connection';
import { EslAuthError, EslCommandError, EslDisconnectedError, EslError } from './errors';
import type { EslEvent } from './event';
import { assertNoNewline, rejectAll, track, type PendingOp } from './pending';
import { SwitchClock } from './switch-clock';

export type EslState = 'idle' | 'connecting' | 'ready' | 'disconnected' | 'stopped';

export interface EslClientOptions {
  host: string;
  port: number;
  password: string;
  /** Event names to subscribe to. BACKGROUND_JOB and CHANNEL_EXECUTE_COMPLETE are added (api/execute need them). */
  events: readonly string[];
  commandTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  logger: Logger;
  /** `plain` (default; measured fastest, see bench/esl-ingest.ts) or `json`. */
  eventFormat?: 'plain' | 'json';
  /**
   * `filter <header> <value>` after the subscription: the switch then sends only events that one of them
   * admits (mod_event_socket: once any filter exists, an event passes when a filter on a header it carries
   * matches: equal, case-insensitively, or `/regex/`; a `-value` filter that matches drops it). The
   * client's own BACKGROUND_JOB filter is added when there are any.
   */
  filters?: ReadonlyArray<readonly [string, string]>;
}

/** Events this layer itself depends on. */
const REQUIRED_EVENTS = ['BACKGROUND_JOB', 'CHANNEL_EXECUTE_COMPLETE'];
/** api()/bgapi() results carry no channel: with filters on, they are let through by name. */
const REQUIRED_FILTER = ['Event-Name', 'BACKGROUND_JOB'] as const;

type ChannelListener = (e: EslEvent) => void;

export interface ApiOptions {
  readonly timeoutMs?: number;
  /** The command returns at once (`hash`, `sched_*`): run it as `api`, not `bgapi` (see EslClient.api). */
  readonly quick?: boolean;
}

export class EslClient extends EventEmitter {
  private readonly opts: EslClientOptions;
  private readonly log: Logger;
  /** The exact subscription command sent after every authentication. */
  readonly subscription: string;
  /** The `filter ...` commands sent after the subscription, in order (none: every subscribed event comes). */
  readonly filterCommands: readonly string[];
  private currentState: EslState = 'idle';
  private conn: FastConnection | undefined;
  private readonly pending = new Set<PendingOp<unknown>>();
  private readonly jobs = new Map<string, PendingOp<string>>();
  private readonly executions = new Map<string, PendingOp<EslEvent | undefined>>();
  private readonly channels = new Map<string, Set<ChannelListener>>();
  /** The switch's clock as its events' stamps show it (see SwitchClock). */
  readonly clock = new SwitchClock();
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private starting: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } | undefined;

  constructor(opts: EslClientOptions) {
    super();
    // Every call in progress listens for 'ready' (to re-check its legs after a reconnect).
    this.setMaxListeners(0);
    this.opts = opts;
    this.log = opts.logger;
    const events = [...opts.events];
    for (const e of REQUIRED_EVENTS) if (!events.includes(e)) events.push(e);
    assertNoNewline(...events);
    this.subscription = `event ${opts.eventFormat ?? 'plain'} ${events.join(' ')}`;
    const filters = opts.filters?.length ? [REQUIRED_FILTER, ...opts.filters] : [];
    for (const [header, value] of filters) {
      assertNoNewline(header, value);
      if (/\s/.test(header) || value === '') throw new EslError(`filter ${header} ${value}: a header name without spaces and a value`);
    }
    this.filterCommands = filters.map(([header, value]) => `filter ${header} ${value}`);
  }

  get state(): EslState {
    return this.currentState;
  }

  /** Resolves at the first 'ready'. Rejects with EslAuthError on a refused password (no retry), or if stop() comes first. */
  start(): Promise<void> {
    if (this.currentState === 'ready') return Promise.resolve();
    if (this.starting) return this.starting.promise;
    if (this.currentState === 'stopped') return Promise.reject(new EslDisconnectedError('ESL client is stopped'));
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.starting = { promise, resolve, reject };
    this.connect();
    return promise;
  }

  /** Sends exit, closes, stops reconnecting, rejects pending commands with EslDisconnectedError. */
  async stop(): Promise<void> {
    if (this.currentState === 'stopped') return;
    this.currentState = 'stopped';
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (this.starting) {
      this.starting.reject(new EslDisconnectedError('ESL client stopped before it was ready'));
      this.starting = undefined;
    }
    rejectAll(this.pending, 'ESL client stopped');
    const conn = this.conn;
    this.conn = undefined;
    const socket = conn?.socket;
    if (!conn || !socket || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => socket.destroy(), Math.min(this.opts.commandTimeoutMs, 2000));
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (conn.authed) {
        conn.send('exit');
        socket.end();
      } else {
        socket.destroy();
      }
    });
  }

  /**
   * Runs `command` in the background with our own Job-UUID; resolves with the BACKGROUND_JOB body. With `quick`
   * (a command that returns at once: `hash`, `sched_*`), as `api` instead: FreeSWITCH runs it in the connection's
   * own thread and answers with api/response, without starting a thread and firing a BACKGROUND_JOB for it (about
   * 270 against 540 µs of the switch's CPU per command, measured on FreeSWITCH 1.10.12). Never for a command that
   * can take time: the connection's later commands and events wait behind it.
   */
  api(command: string, opts: ApiOptions = {}): Promise<string> {
    if (!opts.quick) return this.bgapi(command, { timeoutMs: opts.timeoutMs });
    const verb = verbOf(command);
    try {
      assertNoNewline(command);
      this.requireReady();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new EslError(String(err)));
    }
    const { op, promise } = track<string>(this.pending, opts.timeoutMs ?? this.opts.commandTimeoutMs, `api ${verb}`);
    // A reply that comes after the timeout still takes its own callback off the queue: it never answers a later command.
    (this.conn as FastConnection).api(command, (reply) => {
      if (!op.settled) op.resolve(reply.getBody());
    });
    return promise;
  }

  /**
   * `bgapi <command>` with `Job-UUID: <jobUuid>`. Resolves with the job's output ("+OK <uuid>\n",
   * "-ERR USER_BUSY\n", "true", ...): a -ERR result is returned, not thrown. Rejects with
   * EslCommandError only if FreeSWITCH refuses the bgapi command itself.
   */
  bgapi(command: string, opts: { jobUuid?: string; timeoutMs?: number } = {}): Promise<string> {
    const jobUuid = opts.jobUuid ?? randomUUID();
    const verb = verbOf(command);
    try {
      assertNoNewline(command, jobUuid);
      this.requireReady();
      if (this.jobs.has(jobUuid)) throw new EslError(`Job-UUID ${jobUuid} is already in flight`);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new EslError(String(err)));
    }
    const { op, promise } = track<string>(this.pending, opts.timeoutMs ?? this.opts.commandTimeoutMs, `bgapi ${verb}`);
    this.jobs.set(jobUuid, op);
    op.onSettled(() => this.jobs.delete(jobUuid));
    this.send('bgapi ' + command, { 'Job-UUID': jobUuid }, (reply) => {
      if (op.settled) return;
      const text = reply.getHeader('Reply-Text') ?? '';
      if (!text.startsWith('+OK')) op.reject(new EslCommandError(`bgapi ${verb} refused: ${text}`, text));
    });
    return promise;
  }

  /**
   * `sendmsg <uuid>` execute `app` with `Event-UUID`. Without awaitCompletion it resolves (undefined) on
   * FreeSWITCH's `+OK`; with it, on the CHANNEL_EXECUTE_COMPLETE whose Application-UUID is our Event-UUID.
   * `-ERR invalid session id [...]` rejects with EslCommandError.
   */
  execute(
    uuid: string,
    app: string,
    arg?: string,
    opts: { eventUuid?: string; awaitCompletion?: boolean; timeoutMs?: number } = {},
  ): Promise<EslEvent | undefined> {
    const eventUuid = opts.eventUuid ?? randomUUID();
    try {
      assertNoNewline(uuid, app, arg, eventUuid);
      this.requireReady();
      if (opts.awaitCompletion && this.executions.has(eventUuid)) throw new EslError(`Event-UUID ${eventUuid} is already in flight`);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new EslError(String(err)));
    }
    const { op, promise } = track<EslEvent | undefined>(this.pending, opts.timeoutMs ?? this.opts.commandTimeoutMs, `execute ${app}`);
    if (opts.awaitCompletion) {
      this.executions.set(eventUuid, op);
      op.onSettled(() => this.executions.delete(eventUuid));
    }
    this.send(`sendmsg ${uuid}`, executeHeaders(app, arg, eventUuid), (reply) => {
      if (op.settled) return;
      const text = reply.getHeader('Reply-Text') ?? '';
      if (!text.startsWith('+OK')) op.reject(new EslCommandError(`execute ${app} refused: ${text}`, text));
      else if (!opts.awaitCompletion) op.resolve(undefined);
    });
    return promise;
  }

  /** Routes every event whose Unique-ID is `uuid` to `listener` (a Map lookup per event). Returns an unsubscribe. */
  onChannel(uuid: string, listener: ChannelListener): () => void {
    let set = this.channels.get(uuid);
    if (!set) {
      set = new Set();
      this.channels.set(uuid, set);
    }
    set.add(listener);
    return () => {
      const s = this.channels.get(uuid);
      if (!s) return;
      s.delete(listener);
      if (s.size === 0) this.channels.delete(uuid);
    };
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * `sendevent <name>` with headers and a body (e.g. CUSTOM SMS::SEND_MESSAGE for mod_sms). Header
   * names and values must be single lines. Resolves with the switch's reply (`+OK <Event-UUID>`).
   */
  sendEvent(name: string, headers: Record<string, string>, body: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    assertNoNewline(name, ...Object.keys(headers), ...Object.values(headers));
    this.requireReady();
    const { op, promise } = track<string>(this.pending, opts.timeoutMs ?? this.opts.commandTimeoutMs, `sendevent ${name}`);
    (this.conn as FastConnection).sendRecvWithBody(`sendevent ${name}`, headers, body, (reply) => {
      const text = reply.getHeader('Reply-Text') ?? '';
      if (!text.startsWith('+OK')) op.reject(new EslCommandError(`sendevent ${name} refused: ${text}`, text));
      else op.resolve(text);
    });
    return promise;
  }

  private requireReady(): void {
    if (this.currentState !== 'ready' || !this.conn) throw new EslDisconnectedError(`ESL not connected (state ${this.currentState})`);
  }

  private send(command: string, headers: Record<string, string> | null, onReply: (reply: ModeslEvent) => void): void {
    (this.conn as FastConnection).sendRecv(command, headers, onReply);
  }

  private connect(): void {
    this.currentState = 'connecting';
    const { host, port, password, commandTimeoutMs } = this.opts;
    const conn = new FastConnection(host, port, password);
    this.conn = conn;
    this.clock.forget();
    const socket = conn.socket as Socket;
    let lastError: Error | undefined;
    let authRefused = false;
    const handshake = setTimeout(() => {
      lastError = new EslError(`ESL handshake with ${host}:${port} took longer than ${commandTimeoutMs} ms`);
      socket.destroy();
    }, commandTimeoutMs);

    conn.eventSink = (e) => this.dispatch(e);
    conn.on('error', (err: Error) => {
      lastError = err;
      this.log.debug({ err }, 'esl socket error');
    });
    conn.on('esl::event::disconnect::notice', (evt: ModeslEvent) => {
      this.log.info({ notice: evt.getBody().trim() }, 'esl disconnect notice');
    });
    conn.on('esl::event::auth::fail', (evt: ModeslEvent) => {
      authRefused = true;
      lastError = new EslAuthError(`FreeSWITCH refused the ESL password: ${evt.getHeader('Reply-Text') ?? ''}`);
      socket.destroy();
    });
    conn.on('esl::ready', () => {
      // Authenticated: (re)subscribe, then we are ready.
      const sub = track<undefined>(this.pending, commandTimeoutMs, 'event subscription');
      sub.promise.then(
        () => {
          clearTimeout(handshake);
          if (this.conn !== conn || this.currentState === 'stopped') return;
          this.attempt = 0;
          this.currentState = 'ready';
          this.log.info({ host, port }, 'esl ready');
          this.starting?.resolve();
          this.starting = undefined;
          this.emit('ready');
        },
        (err: unknown) => {
          lastError = err instanceof Error ? err : new EslError(String(err));
          socket.destroy();
        },
      );
      // Pipelined: the replies come in the order sent; ready once every one said +OK.
      let awaiting = 1 + this.filterCommands.length;
      for (const command of [this.subscription, ...this.filterCommands]) {
        conn.sendRecv(command, null, (reply) => {
          const text = reply.getHeader('Reply-Text') ?? '';
          if (!text.startsWith('+OK')) sub.op.reject(new EslCommandError(`${verbOf(command)} refused: ${text}`, text));
          else if (--awaiting === 0) sub.op.resolve(undefined);
        });
      }
    });
    socket.once('close', () => {
      clearTimeout(handshake);
      conn.eventSink = undefined;
      if (this.conn !== conn) return;
      this.conn = undefined;
      const wasReady = this.currentState === 'ready';
      rejectAll(this.pending, 'ESL connection lost');
      if (this.currentState === 'stopped') return;
      if (authRefused && this.starting) {
        // A wrong password at start is a configuration error: fail start() and stop retrying.
        this.currentState = 'stopped';
        this.starting.reject(lastError as Error);
        this.starting = undefined;
        return;
      }
      this.currentState = 'disconnected';
      if (wasReady) {
        this.log.warn({ err: lastError }, 'esl connection lost');
        this.emit('disconnected', lastError);
      } else {
        this.log.warn({ err: lastError, attempt: this.attempt }, 'esl connect attempt failed');
      }
      if (authRefused) this.emitError(lastError as Error);
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    const { reconnectMinMs, reconnectMaxMs } = this.opts;
    const base = Math.min(reconnectMaxMs, reconnectMinMs * 2 ** Math.min(this.attempt, 30));
    const delay = Math.max(reconnectMinMs, Math.round(base / 2 + (Math.random() * base) / 2));
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.currentState === 'disconnected') this.connect();
    }, delay);
  }

  private emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.log.error({ err }, 'esl error');
  }

  /** The hot path: one call per event from FreeSWITCH. */
  private dispatch(e: EslEvent): void {
    const name = e.name;
    const stampUs = e.header('Event-Date-Timestamp');
    if (stampUs !== undefined) this.clock.observe(Number(stampUs) / 1000, Date.now());
    if (name === 'BACKGROUND_JOB') {
      const id = e.header('Job-UUID');
      const op = id === undefined ? undefined : this.jobs.get(id);
      if (op) op.resolve(e.body ?? '');
      else this.log.debug({ jobUuid: id }, 'BACKGROUND_JOB for no pending command (timed out or not ours)');
    } else if (name === 'CHANNEL_EXECUTE_COMPLETE' && this.executions.size > 0) {
      const id = e.header('Application-UUID');
      if (id !== undefined) this.executions.get(id)?.resolve(e);
    }
    const uuid = e.uuid;
    if (uuid !== undefined) {
      const listeners = this.channels.get(uuid);
      if (listeners !== undefined) {
        for (const l of listeners) {
          try {
            l(e);
          } catch (err) {
            this.log.error({ err, event: name }, 'channel listener threw');
          }
        }
      }
    }
    try {
      this.emit('event', e);
    } catch (err) {
      this.log.error({ err, event: name }, 'event listener threw');
    }
  }
}

export function executeHeaders(app: string, arg: string | undefined, eventUuid: string | undefined): Record<string, string> {
  const h: Record<string, string> = { 'call-command': 'execute', 'execute-app-name': app };
  if (arg !== undefined && arg !== '') h['execute-app-arg'] = arg;
  if (eventUuid !== undefined) h['Event-UUID'] = eventUuid;
  return h;
}

function verbOf(command: string): string {
  const sp = command.indexOf(' ');
  return sp === -1 ? command : command.substring(0, sp);
}
