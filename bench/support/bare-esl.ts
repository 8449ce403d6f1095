/**
 * The floor of the switch benchmark: a bare Event Socket connection that places each call as one
 * `bgapi originate {vars}A &bridge({vars}B)` and listens to nothing but its own BACKGROUND_JOBs
 * (subscribed only while it places calls). It also carries the bench's own admin commands
 * (`api status`, `api fsctl ...`), which use blocking `api` and raise no events.
 */
import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { FrameReader } from '../../src/esl/framing';
import { countCommand, emptyTraffic, type EslTraffic, type MutableTraffic } from './esl-tap';

export class BareEsl {
  private readonly replies: Array<{ counted: boolean; done: (headers: Record<string, string>, body: string | undefined) => void }> = [];
  private traffic: MutableTraffic = emptyTraffic();
  /** Job-UUID -> the originate's result line (`+OK <uuid>` or `-ERR <cause>`). */
  readonly results = new Map<string, string>();

  private constructor(private readonly socket: Socket) {
    const reader = new FrameReader((headers, body) => this.onFrame(headers, body));
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
  }

  static async connect(addr: { host: string; port: number; password: string }): Promise<BareEsl> {
    const socket = connect({ host: addr.host, port: addr.port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const esl = new BareEsl(socket);
    await new Promise<void>((resolve) => esl.replies.push({ counted: false, done: () => resolve() })); // auth/request
    const auth = await esl.command(`auth ${addr.password}`);
    if (!(auth.headers['Reply-Text'] ?? '').startsWith('+OK')) throw new Error(`ESL auth refused: ${auth.headers['Reply-Text'] ?? ''}`);
    esl.take();
    return esl;
  }

  /** A blocking API command's output. The bench's own questions: not counted as traffic of the calls. */
  async api(cmd: string): Promise<string> {
    return (await this.command(`api ${cmd}`, false)).body ?? '';
  }

  /** BACKGROUND_JOB events on (while placing calls) or off. */
  async listenForJobs(on: boolean): Promise<void> {
    await this.listen(on ? ['BACKGROUND_JOB'] : null);
  }

  /** `filter delete all`, then `filter <header> <value>` for each: the switch sends only events one admits. */
  async filter(filters: ReadonlyArray<readonly [string, string]>): Promise<void> {
    await this.command('filter delete all', false);
    for (const [header, value] of filters) await this.command(`filter ${header} ${value}`, false);
  }

  /** `event plain <names>`, or `noevents` for null. */
  async listen(names: readonly string[] | null): Promise<void> {
    await this.command(names ? `event plain ${names.join(' ')}` : 'noevents', false);
  }

  /** Sends `bgapi originate <args>` without waiting; the result lands in `results` under the returned Job-UUID. */
  originate(args: string): string {
    const jobUuid = randomUUID();
    this.write(`bgapi originate ${args}\nJob-UUID: ${jobUuid}`);
    this.replies.push({ counted: true, done: () => undefined }); // the command/reply "+OK Job-UUID: ..."
    return jobUuid;
  }

  /** Counts since the last take(). */
  take(): EslTraffic {
    const t = this.traffic;
    this.traffic = emptyTraffic();
    return t;
  }

  close(): void {
    this.socket.end('exit\n\n');
    this.socket.destroy();
  }

  private command(cmd: string, counted = true): Promise<{ headers: Record<string, string>; body: string | undefined }> {
    return new Promise((resolve) => {
      this.replies.push({ counted, done: (headers, body) => resolve({ headers, body }) });
      this.write(cmd, counted);
    });
  }

  private write(block: string, counted = true): void {
    const out = `${block}\n\n`;
    if (counted) {
      countCommand(this.traffic, block);
      this.traffic.bytesToSwitch += Buffer.byteLength(out);
    }
    this.socket.write(out);
  }

  private onFrame(headers: Record<string, string>, body: string | undefined): void {
    const type = headers['Content-Type'];
    const size = Object.entries(headers).reduce((n, [k, v]) => n + k.length + v.length + 3, 1) + (body === undefined ? 0 : Buffer.byteLength(body));
    if (type === 'text/event-plain' && body !== undefined) {
      const name = /^Event-Name: ([^\n]*)/m.exec(body)?.[1] ?? '?';
      this.traffic.events[name] = (this.traffic.events[name] ?? 0) + 1;
      this.traffic.eventBytes += Buffer.byteLength(body);
      this.traffic.bytesFromSwitch += size;
      if (name === 'BACKGROUND_JOB') {
        const job = /^Job-UUID: ([^\n]*)/m.exec(body)?.[1];
        const blank = body.indexOf('\n\n');
        if (job) this.results.set(job, blank === -1 ? '' : body.slice(blank + 2).trim());
      }
      return;
    }
    if (type === 'text/disconnect-notice') return;
    const reply = this.replies.shift();
    if (reply?.counted) this.traffic.bytesFromSwitch += size;
    reply?.done(headers, body);
  }
}
