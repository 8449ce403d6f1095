/**
 * The carrier for the switch benchmark: one sipp UAS process that answers every INVITE after
 * `ringMs` and hangs up `talkMs` after answering (test/e2e/sipp/uas-answer-then-bye.xml), logging
 * every SIP message with its time. `legs()` reads the log written since the last call and returns,
 * per dialled number, when its INVITE arrived and whether the call was answered (200 OK sent, ACK received).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitForUdpBind } from '../../test/support/udp-bind';

const SCENARIO = join(__dirname, '../../test/e2e/sipp/uas-answer-then-bye.xml');
/** sipp's send and receive buffers (the kernel caps them at net.core.rmem_max / wmem_max). */
const SOCKET_BUFFER_BYTES = 4 << 20;

export interface CarrierLeg {
  /** The dialled number (user part of the INVITE's Request-URI). */
  readonly number: string;
  /** Epoch ms at which sipp received the INVITE. */
  readonly inviteAt: number;
  /** Epoch ms at which sipp answered (sent 200 OK to the INVITE), when it did. */
  readonly answeredAt: number | undefined;
  readonly answered: boolean;
}

export interface CarrierOptions {
  readonly bin: string;
  readonly host: string;
  readonly port: number;
  readonly mediaPort: number;
  readonly ringMs: number;
  readonly talkMs: number;
  /** sipp exits by itself after this long, whatever happens to the bench. */
  readonly maxSeconds: number;
  /**
   * Run sipp with realtime scheduling (`chrt -f 1`), as the switch runs, where this host allows it: a carrier
   * is another host, which the platform's load does not starve. Default true; without the permission it runs as is.
   */
  readonly realtime?: boolean;
}

interface DialogState {
  number?: string;
  inviteAt?: number;
  ok?: number;
  ack?: boolean;
}

export class SippCarrier {
  private offset = 0;
  private carry = '';
  private readonly dialogs = new Map<string, DialogState>();

  private constructor(
    readonly child: ChildProcess,
    private readonly dir: string,
    private readonly messageFile: string,
    /** Whether sipp runs with realtime scheduling (CarrierOptions.realtime and the host's permission). */
    readonly realtime: boolean,
  ) {}

  static async start(opts: CarrierOptions): Promise<SippCarrier> {
    const dir = mkdtempSync(join(tmpdir(), 'ng-bench-carrier-'));
    const messageFile = join(dir, 'messages.log');
    const args = [
      '-sf', SCENARIO,
      '-i', opts.host,
      '-p', String(opts.port),
      '-mp', String(opts.mediaPort),
      // sipp's own 64 KB socket buffer holds about 30 datagrams: on a busy host, while the realtime switch
      // kept sipp off the cores, its SIP socket dropped hundreds of INVITEs and ACKs a phase (/proc/net/udp),
      // and their retransmissions 3.5–7.5 s later decided calls. A carrier of its own is not starved so.
      '-buff_size', String(SOCKET_BUFFER_BYTES),
      '-d', String(opts.ringMs),
      '-set', 'talk_ms', String(opts.talkMs),
      '-l', '100000',
      '-timeout', `${opts.maxSeconds}s`,
      '-nostdin',
      '-trace_msg',
      '-message_file', messageFile,
    ];
    const realtime = (opts.realtime ?? true) && spawnSync('chrt', ['-f', '1', 'true']).status === 0;
    // chrt execs sipp: the child's pid is sipp's.
    const child = realtime
      ? spawn('chrt', ['-f', '1', opts.bin, ...args], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(opts.bin, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`sipp exited (${code}) before it was ready: ${stderr.trim()}`))),
    );
    exited.catch(() => undefined);
    child.once('error', () => undefined);
    await Promise.race([waitForUdpBind(opts.host, opts.port, 5000), exited]);
    return new SippCarrier(child, dir, messageFile, realtime);
  }

  /** Legs whose INVITE arrived since the last call (answers to earlier INVITEs are folded in as they come). */
  legs(): CarrierLeg[] {
    this.readNew();
    const out: CarrierLeg[] = [];
    for (const d of this.dialogs.values()) {
      if (d.number !== undefined && d.inviteAt !== undefined) out.push({ number: d.number, inviteAt: d.inviteAt, answeredAt: d.ok, answered: d.ok !== undefined && d.ack === true });
    }
    return out;
  }

  /** Forgets every dialog seen so far (between phases). */
  reset(): void {
    this.readNew();
    this.dialogs.clear();
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private readNew(): void {
    let size: number;
    try {
      size = statSync(this.messageFile).size;
    } catch {
      return;
    }
    if (size <= this.offset) return;
    const fd = openSync(this.messageFile, 'r');
    try {
      const buf = Buffer.alloc(size - this.offset);
      readSync(fd, buf, 0, buf.length, this.offset);
      this.offset = size;
      const text = this.carry + buf.toString('latin1');
      const blocks = text.split('\n----------------------------------------------- ');
      this.carry = blocks.pop() ?? '';
      for (const b of blocks) this.parseBlock(b);
    } finally {
      closeSync(fd);
    }
  }

  /** `2026-12-02 02:42:52.506947\nUDP message received [1063] bytes :\n\nINVITE sip:...` */
  private parseBlock(block: string): void {
    const text = block.startsWith('----------------------------------------------- ') ? block.slice(48) : block;
    const nl = text.indexOf('\n');
    if (nl === -1) return;
    const at = parseSippTime(text.slice(0, nl));
    const received = text.startsWith('UDP message received', nl + 1);
    const msgStart = text.indexOf('\n\n', nl + 1);
    if (msgStart === -1 || at === null) return;
    const msg = text.slice(msgStart + 2);
    const firstLine = msg.slice(0, msg.indexOf('\n'));
    const callId = /^Call-ID:\s*(\S+)/im.exec(msg)?.[1];
    if (!callId) return;
    let d = this.dialogs.get(callId);
    if (!d) {
      d = {};
      this.dialogs.set(callId, d);
    }
    if (received && firstLine.startsWith('INVITE ')) {
      d.number ??= /^INVITE sip:([^@;>\s]+)@/.exec(firstLine)?.[1];
      d.inviteAt ??= at;
    } else if (received && firstLine.startsWith('ACK ')) {
      d.ack = true;
    } else if (!received && firstLine.startsWith('SIP/2.0 200') && /^CSeq:\s*\d+\s+INVITE/im.test(msg)) {
      d.ok ??= at;
    }
  }
}

/** sipp's local time `YYYY-MM-DD HH:MM:SS.micro` as epoch ms. */
function parseSippTime(s: string): number | null {
  const m = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{1,6})/.exec(s.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, sec, frac] = m as unknown as [string, string, string, string, string, string, string, string];
  return new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec)).getTime() + Number(frac.padEnd(6, '0')) / 1000;
}
