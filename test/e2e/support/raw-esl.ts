/**
 * A deliberately tiny inbound event-socket client for the e2e harness: connect, auth, api,
 * close. It shares no code with the application's ESL client, so a harness failure points at
 * the switch or the phones, not at the code under test.
 */
import { Socket, connect } from 'node:net';

export interface EslMessage {
  readonly headers: Record<string, string>;
  readonly body: string;
}

export class RawEsl {
  private buffer = Buffer.alloc(0);
  private readonly queue: EslMessage[] = [];
  private waiter: ((m: EslMessage) => void) | undefined;
  private logSink: ((line: string) => void) | undefined;
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.drain();
    });
    socket.on('close', () => {
      this.closed = true;
    });
  }

  /** Connects and authenticates; rejects with the switch's reply text if the password is refused. */
  static async connect(addr: { host: string; port: number; password: string }, timeoutMs = 5000): Promise<RawEsl> {
    const socket = connect({ host: addr.host, port: addr.port });
    socket.setNoDelay(true);
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`ESL ${addr.host}:${addr.port}: connect timeout`)), timeoutMs);
      socket.once('connect', () => {
        clearTimeout(t);
        res();
      });
      socket.once('error', (e) => {
        clearTimeout(t);
        rej(e);
      });
    });
    const esl = new RawEsl(socket);
    const greeting = await esl.next(timeoutMs);
    if (greeting.headers['Content-Type'] !== 'auth/request') {
      esl.close();
      throw new Error(`ESL: expected auth/request, got ${JSON.stringify(greeting.headers)}`);
    }
    const reply = await esl.command(`auth ${addr.password}`, timeoutMs);
    const text = reply.headers['Reply-Text'] ?? '';
    if (!text.startsWith('+OK')) {
      esl.close();
      throw new Error(`ESL auth refused: ${text}`);
    }
    return esl;
  }

  /** Sends a command and returns the next reply (command/reply or api/response). */
  async command(cmd: string, timeoutMs = 5000): Promise<EslMessage> {
    if (this.closed) throw new Error('ESL connection closed');
    this.socket.write(`${cmd}\n\n`);
    for (;;) {
      const m = await this.next(timeoutMs);
      const type = m.headers['Content-Type'];
      if (type === 'command/reply' || type === 'api/response') return m;
      // anything else (events, log lines) is not for us
    }
  }

  /** Runs a blocking API command and returns its body ("+OK ...", "-ERR ...", or output). */
  async api(cmd: string, timeoutMs = 30_000): Promise<string> {
    const m = await this.command(`api ${cmd}`, timeoutMs);
    return m.body.trim();
  }

  /** Receives the switch's log lines at `level` and worse (`log <level>`: err gives ERR, CRIT, ALERT), each as its text. */
  async watchLog(level: 'err' | 'crit', sink: (line: string) => void): Promise<void> {
    this.logSink = sink;
    const reply = await this.command(`log ${level}`);
    if (!(reply.headers['Reply-Text'] ?? '').startsWith('+OK')) throw new Error(`ESL log ${level}: ${reply.headers['Reply-Text']}`);
  }

  close(): void {
    if (!this.closed) {
      this.closed = true;
      this.socket.end('exit\n\n');
      this.socket.destroy();
    }
  }

  private next(timeoutMs: number): Promise<EslMessage> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    return new Promise((res, rej) => {
      const t = setTimeout(() => {
        this.waiter = undefined;
        rej(new Error(`ESL: no message within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (msg) => {
        clearTimeout(t);
        res(msg);
      };
    });
  }

  private drain(): void {
    for (;;) {
      const end = this.buffer.indexOf('\n\n');
      if (end < 0) return;
      const headers: Record<string, string> = {};
      for (const line of this.buffer.subarray(0, end).toString('utf8').split('\n')) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim()] = safeDecode(line.slice(i + 1).trim());
      }
      const len = Number(headers['Content-Length'] ?? '0');
      if (this.buffer.length < end + 2 + len) return;
      const body = this.buffer.subarray(end + 2, end + 2 + len).toString('utf8');
      this.buffer = this.buffer.subarray(end + 2 + len);
      const msg = { headers, body };
      if (headers['Content-Type'] === 'log/data' && this.logSink) {
        this.logSink(body.trimEnd());
        continue;
      }
      const w = this.waiter;
      if (w) {
        this.waiter = undefined;
        w(msg);
      } else {
        this.queue.push(msg);
      }
    }
  }
}

/** Event headers are URL-encoded; reply headers are not and may contain a bare "%". */
function safeDecode(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}
