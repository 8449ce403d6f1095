/**
 * A counting TCP proxy between an ESL client (the controller) and the switch: what the client asks
 * of the switch (commands, variables set, applications run) and what the switch sends it (events by
 * name, bytes). Bytes pass through unchanged; counting runs in the bench's process, not the
 * controller's or the switch's. `take()` returns the counts since the last `take()`.
 */
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { FrameReader } from '../../src/esl/framing';

export interface EslTraffic {
  /** Commands sent, by verb (`bgapi originate`, `sendmsg execute bridge`, `api status`, ...). */
  readonly commands: Record<string, number>;
  /** Events received, by Event-Name. */
  readonly events: Record<string, number>;
  /** Channel variables set: `{k=v}` entries of originate/bridge dial strings, and `set`/`export` applications. */
  readonly variablesSet: number;
  /** Dialplan applications the switch ran for us: `&app()` of originate, and sendmsg execute. */
  readonly applications: Record<string, number>;
  readonly bytesToSwitch: number;
  readonly bytesFromSwitch: number;
  /** Event bytes only (the part the switch serialises per subscribed event). */
  readonly eventBytes: number;
  /** Epoch ms at which each `originate` left for the switch, by the number dialled (the A leg's). */
  readonly originateSentAt: Record<string, number>;
}

export type MutableTraffic = { -readonly [K in keyof EslTraffic]: EslTraffic[K] };

export function emptyTraffic(): MutableTraffic {
  return { commands: {}, events: {}, variablesSet: 0, applications: {}, bytesToSwitch: 0, bytesFromSwitch: 0, eventBytes: 0, originateSentAt: {} };
}

const inc = (m: Record<string, number>, k: string, n = 1): void => {
  m[k] = (m[k] ?? 0) + n;
};

/** Counts one command block (first line plus headers) into `t`. Shared with the bare originator. */
export function countCommand(t: MutableTraffic, block: string): void {
  const lines = block.split('\n');
  const first = lines[0] ?? '';
  const words = first.split(' ');
  const verb = words[0] ?? '';
  if (verb === 'auth') return;
  if (verb === 'bgapi' || verb === 'api') {
    const command = words[1] ?? '';
    inc(t.commands, `${verb} ${command}`);
    if (command === 'originate') {
      const rest = words.slice(2).join(' ');
      const dialled = /\}?sofia\/[^/]+\/([^@\s]+)@/.exec(rest)?.[1];
      if (dialled) t.originateSentAt[dialled] = performance.timeOrigin + performance.now();
      t.variablesSet += countVarBlocks(rest);
      for (const m of rest.matchAll(/&([a-z_]+)\(/g)) inc(t.applications, m[1] as string);
      // `<apps> inline`: each app of the inline dialplan (`m:<c>:app:arg<c>app` or `app:arg,app`), as listed
      const [, exten, dialplan] = originateArgs(rest);
      if (exten !== undefined && dialplan === 'inline') {
        const custom = /^m:(.):/.exec(exten);
        const apps = custom ? exten.slice(4).split(custom[1] as string) : exten.split(',');
        for (const entry of apps) inc(t.applications, entry.split(':')[0] as string);
      }
    }
    return;
  }
  if (verb === 'sendmsg') {
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(': ');
      if (i > 0) headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 2));
    }
    const app = headers.get('execute-app-name') ?? '?';
    inc(t.commands, `sendmsg ${headers.get('call-command') ?? '?'} ${app}`);
    inc(t.applications, app);
    const arg = headers.get('execute-app-arg') ?? '';
    if (app === 'set' || app === 'export') t.variablesSet += 1;
    else t.variablesSet += countVarBlocks(arg);
    return;
  }
  inc(t.commands, verb);
}

/** mod_commands originate's arguments: split on spaces outside '…', the quotes removed. */
function originateArgs(s: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (const c of s.trim()) {
    if (c === "'") quoted = !quoted;
    else if (c === ' ' && !quoted) {
      if (current) out.push(current);
      current = '';
    } else current += c;
  }
  if (current) out.push(current);
  return out;
}

function countVarBlocks(s: string): number {
  let n = 0;
  for (const m of s.matchAll(/\{([^}]*)\}/g)) {
    const body = m[1] as string;
    // `{^^<c>a=b<c>...}`: the list separated by <c>
    const [list, separator] = body.startsWith('^^') ? [body.slice(3), body[2] as string] : [body, ','];
    n += list.split(separator).filter((kv) => kv.includes('=')).length;
  }
  return n;
}

export class EslTap {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private traffic: MutableTraffic = emptyTraffic();

  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<{ host: string; port: number }> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
  }

  /** The counts since the previous take(), and a fresh count from now on. */
  take(): EslTraffic {
    const t = this.traffic;
    this.traffic = emptyTraffic();
    return t;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(client: Socket): void {
    const upstream = createConnection(this.target);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.sockets.add(client);
    this.sockets.add(upstream);
    let pendingCommand = '';
    client.on('data', (chunk: Buffer) => {
      this.traffic.bytesToSwitch += chunk.length;
      pendingCommand += chunk.toString('utf8');
      let end: number;
      while ((end = pendingCommand.indexOf('\n\n')) !== -1) {
        countCommand(this.traffic, pendingCommand.slice(0, end));
        pendingCommand = pendingCommand.slice(end + 2);
      }
      upstream.write(chunk);
    });
    const reader = new FrameReader((headers, body) => {
      const type = headers['Content-Type'];
      if ((type === 'text/event-plain' || type === 'text/event-json') && body !== undefined) {
        const name = type === 'text/event-plain' ? /^Event-Name: ([^\n]*)/m.exec(body)?.[1] : /"Event-Name":\s*"([^"]*)"/.exec(body)?.[1];
        inc(this.traffic.events, name ?? '?');
        this.traffic.eventBytes += Buffer.byteLength(body);
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      this.traffic.bytesFromSwitch += chunk.length;
      reader.push(chunk);
      client.write(chunk);
    });
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', close);
    upstream.on('error', close);
  }
}
