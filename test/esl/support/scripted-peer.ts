/**
 * A scripted FreeSWITCH Event Socket peer for the ESL tests. Every reply it writes is a byte-exact
 * message from the recorded FreeSWITCH 1.10.12 transcripts (shared/fs-traces); only ids and bodies
 * are substituted where a test needs its own (Job-UUID, the session uuid of `-ERR invalid session id`),
 * with the Content-Lengths recomputed as FreeSWITCH would.
 */
import net from 'node:net';
import { bodyOf, recv, recvWhere } from './traces';

export const BYTES = {
  authRequest: recv('01a')[0] as string,
  authOk: recv('01a')[1] as string,
  eventPlainOk: recvWhere('01a', (r) => r.includes('Reply-Text: +OK event listener enabled plain')),
  eventJsonOk: recvWhere('01a', (r) => r.includes('Reply-Text: +OK event listener enabled json')),
  bye: recvWhere('01a', (r) => r.includes('Reply-Text: +OK bye')),
  goodbye: recvWhere('01a', (r) => r.startsWith('Content-Type: text/disconnect-notice')),
  authInvalid: recvWhere('01b', (r) => r.includes('Reply-Text: -ERR invalid')),
  authInvalidGoodbye: recvWhere('01b', (r) => r.startsWith('Content-Type: text/disconnect-notice')),
  bgapiReply: recvWhere('02', (r) => r.includes('Reply-Text: +OK Job-UUID: ')),
  backgroundJob: recvWhere('02', (r) => r.includes('Event-Name: BACKGROUND_JOB') && r.includes('Job-Command-Arg')),
  backgroundJobJson: recvWhere('04b', (r) => r.includes('"Event-Name":"BACKGROUND_JOB"')),
  sendmsgOk: recvWhere('05', (r) => r === 'Content-Type: command/reply\nReply-Text: +OK\n\n'),
  invalidSession: recvWhere('09-b-busy-twostep', (r) => r.includes('-ERR invalid session id')),
  shutdown: recvWhere('15c', (r) => r.includes('The system is being shut down.')),
};

const JOB_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** `+OK Job-UUID: <id>` command/reply, as 02 recorded it, for our id. */
export function bgapiReply(jobUuid: string): string {
  return BYTES.bgapiReply.replace(JOB_RE, jobUuid);
}

/** `-ERR invalid session id [<uuid>]`, as 09 recorded it. */
export function invalidSession(uuid: string): string {
  return BYTES.invalidSession.replace(JOB_RE, uuid);
}

function frame(contentType: string, inner: string): string {
  return `Content-Length: ${Buffer.byteLength(inner)}\nContent-Type: ${contentType}\n\n${inner}`;
}

/** A BACKGROUND_JOB built from 02's recorded one (plain) or 04b's (json), for our job, command and body. */
export function backgroundJob(jobUuid: string, command: string, body: string, format: 'plain' | 'json' = 'plain'): string {
  const sp = command.indexOf(' ');
  const cmd = sp === -1 ? command : command.slice(0, sp);
  const arg = sp === -1 ? undefined : command.slice(sp + 1);
  if (format === 'json') {
    const src = JSON.parse(bodyOf(BYTES.backgroundJobJson)) as Record<string, string>;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(src)) {
      if (k === 'Job-UUID') out[k] = jobUuid;
      else if (k === 'Job-Command') out[k] = cmd;
      else if (k === 'Job-Command-Arg') { if (arg !== undefined) out[k] = arg; }
      else if (k === 'Content-Length') out[k] = String(Buffer.byteLength(body));
      else if (k === '_body') out[k] = body;
      else out[k] = v;
    }
    return frame('text/event-json', JSON.stringify(out));
  }
  const inner = bodyOf(BYTES.backgroundJob);
  const head = inner.substring(0, inner.indexOf('\nJob-UUID: ') + 1);
  let text = `${head}Job-UUID: ${jobUuid}\nJob-Command: ${encodeURIComponent(cmd)}\n`;
  if (arg !== undefined) text += `Job-Command-Arg: ${encodeURIComponent(arg).replace(/%2F/g, '/')}\n`;
  text += `Content-Length: ${Buffer.byteLength(body)}\n\n${body}`;
  return frame('text/event-plain', text);
}

export interface PeerCommand {
  /** First line of the command (e.g. `bgapi status`). */
  line: string;
  /** Extra header lines (e.g. Job-UUID, call-command, Event-UUID). */
  headers: Record<string, string>;
  raw: string;
}

export type CommandHandler = (cmd: PeerCommand, conn: PeerConnection) => boolean | undefined;

export class PeerConnection {
  readonly commands: PeerCommand[] = [];
  private buf = '';
  authed = false;
  eventFormat: 'plain' | 'json' = 'plain';
  private waiters: Array<{ pred: (c: PeerCommand) => boolean; resolve: (c: PeerCommand) => void }> = [];

  constructor(
    readonly socket: net.Socket,
    private readonly peer: ScriptedEslPeer,
  ) {
    socket.on('data', (d: Buffer) => this.onData(d.toString('utf8')));
    socket.on('error', () => undefined);
  }

  write(raw: string): void {
    if (!this.socket.destroyed) this.socket.write(raw);
  }

  /** Resolves with the first command (seen or future) matching `pred`. */
  waitFor(pred: (c: PeerCommand) => boolean): Promise<PeerCommand> {
    const seen = this.commands.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }

  private onData(s: string): void {
    this.buf += s;
    let end: number;
    while ((end = this.buf.indexOf('\n\n')) !== -1) {
      const raw = this.buf.substring(0, end + 2);
      this.buf = this.buf.substring(end + 2);
      const lines = raw.substring(0, end).split('\n');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(': ');
        if (i > 0) headers[l.slice(0, i)] = l.slice(i + 2);
      }
      const cmd: PeerCommand = { line: lines[0] ?? '', headers, raw };
      this.commands.push(cmd);
      this.peer.received.push(cmd.line);
      for (const w of [...this.waiters]) {
        if (w.pred(cmd)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(cmd);
        }
      }
      if (this.peer.handler?.(cmd, this) === true) continue;
      this.defaultReply(cmd);
    }
  }

  /** What FreeSWITCH answered in the recordings. */
  defaultReply(cmd: PeerCommand): void {
    const [verb, ...rest] = cmd.line.split(' ');
    switch (verb) {
      case 'auth':
        if (rest.join(' ') === this.peer.password) {
          this.authed = true;
          this.write(BYTES.authOk);
        } else {
          this.write(BYTES.authInvalid + BYTES.authInvalidGoodbye);
          this.socket.end();
        }
        return;
      case 'event':
        this.eventFormat = rest[0] === 'json' ? 'json' : 'plain';
        this.write(this.eventFormat === 'json' ? BYTES.eventJsonOk : BYTES.eventPlainOk);
        return;
      case 'bgapi': {
        const job = cmd.headers['Job-UUID'] ?? '00000000-0000-4000-8000-000000000000';
        this.write(bgapiReply(job));
        if (this.peer.autoJobs) this.write(backgroundJob(job, rest.join(' '), this.peer.jobBody(rest.join(' ')), this.eventFormat));
        return;
      }
      case 'api': {
        // api/response as FreeSWITCH frames it (recording 19a): the command's output as the body, nothing else.
        const body = this.peer.jobBody(rest.join(' '));
        this.write(`Content-Type: api/response\nContent-Length: ${Buffer.byteLength(body)}\n\n${body}`);
        return;
      }
      case 'sendmsg':
        this.write(BYTES.sendmsgOk);
        return;
      case 'exit':
        this.write(BYTES.bye + BYTES.goodbye);
        this.socket.end();
        return;
      default:
        return; // silence: lets tests exercise timeouts
    }
  }
}

export class ScriptedEslPeer {
  readonly connections: PeerConnection[] = [];
  /** First line of every command on every connection, in arrival order. */
  readonly received: string[] = [];
  handler: CommandHandler | undefined;
  /** Answer every bgapi with its BACKGROUND_JOB at once (body from jobBody, which also answers every api). */
  autoJobs = true;
  jobBody: (command: string) => string = () => '+OK\n';
  private server: net.Server | undefined;
  private connWaiters: Array<(c: PeerConnection) => void> = [];
  port = 0;

  constructor(readonly password = 'ClueCon') {}

  async start(port = 0): Promise<number> {
    const server = net.createServer((socket) => {
      const conn = new PeerConnection(socket, this);
      this.connections.push(conn);
      conn.write(BYTES.authRequest);
      for (const w of this.connWaiters.splice(0)) w(conn);
    });
    this.server = server;
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Resolves with connection number `index` (0-based) once it exists. */
  async connection(index: number): Promise<PeerConnection> {
    while (this.connections.length <= index) await new Promise<PeerConnection>((r) => this.connWaiters.push(r));
    return this.connections[index] as PeerConnection;
  }

  /** Stop accepting (existing sockets stay until dropped). */
  async stopListening(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  dropAll(): void {
    for (const c of this.connections) c.socket.destroy();
  }

  async stop(): Promise<void> {
    this.dropAll();
    await this.stopListening();
  }
}
