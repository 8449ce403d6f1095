import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { within } from '../deadline';
import type { Logger } from '../logger';
import type { InboundMessage } from './carrier';

export interface InboundSpoolOptions {
  /** MESSAGE_SPOOL_DIR: where this controller keeps texts it could not queue. */
  readonly dir: string;
  /** How long the queue may take to accept a text before it is kept on disk instead. */
  readonly enqueueTimeoutMs: number;
  /** How often kept texts are offered to the queue again. */
  readonly retryMs: number;
}

const SUFFIX = '.jsonl';

/**
 * Texts the switch has already acknowledged that the queue did not take: sofia answers a MESSAGE
 * 202 before the controller sees it, so the carrier will not send it again. Each is appended to
 * this process's own file (one JSON line, fsynced, mode 0600: it holds the sender's number and
 * the text) and offered to the queue again, oldest first, every `retryMs` until taken; a text
 * arriving while others wait joins the end of the file, so texts keep their order. Files another
 * process left behind (it crashed or was restarted) are claimed by renaming them, so two
 * controllers sharing the directory never replay the same file; a text queued twice after a crash
 * is one message (the queue's job id and the record's unique key are its dedup key).
 */
export class InboundSpool {
  private readonly file: string;
  private pending = 0;
  /** File operations one at a time: a replay rewriting the file must not drop a line appended meanwhile. */
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private readonly log: Logger;

  constructor(
    private readonly opts: InboundSpoolOptions,
    private readonly enqueue: (message: InboundMessage) => Promise<void>,
    logger: Logger,
  ) {
    this.file = path.join(opts.dir, `texts.${process.pid}.${randomBytes(4).toString('hex')}${SUFFIX}`);
    this.log = logger.child({ component: 'message-spool' });
  }

  /** Creates the directory (failing now, not at the first outage, when it cannot be written), takes in what earlier runs left, and starts retrying. */
  async start(): Promise<void> {
    await fs.mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
    await fs.access(this.opts.dir, fs.constants.W_OK);
    await this.serial(() => this.claimOrphans());
    this.timer = setInterval(() => void this.replay(), this.opts.retryMs);
    this.timer.unref();
    void this.replay();
  }

  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.serial(async () => undefined);
  }

  /** Texts waiting on disk. */
  get waiting(): number {
    return this.pending;
  }

  /** Queues the text, or keeps it on disk when the queue refuses it or does not answer in time (or others are already waiting). */
  async accept(message: InboundMessage): Promise<'queued' | 'kept'> {
    if (this.pending === 0) {
      try {
        await within(this.enqueue(message), this.opts.enqueueTimeoutMs, 'the message queue');
        return 'queued';
      } catch (err) {
        this.log.warn({ err, x: message.x }, 'text to X not queued; kept on disk until the queue takes it');
      }
    }
    await this.serial(async () => {
      await appendDurably(this.file, `${JSON.stringify(message)}\n`);
      this.pending++;
    });
    return 'kept';
  }

  /** Offers every kept text to the queue, oldest first, stopping at the first it does not take. Returns how many it took. */
  replay(): Promise<number> {
    return this.serial(async () => {
      if (this.pending === 0) return 0;
      const kept = await readKept(this.file, this.log);
      let taken = 0;
      for (const message of kept) {
        try {
          await within(this.enqueue(message), this.opts.enqueueTimeoutMs, 'the message queue');
        } catch {
          break;
        }
        taken++;
      }
      const left = kept.slice(taken);
      if (left.length === 0) await fs.rm(this.file, { force: true });
      else if (taken > 0) await rewriteDurably(this.file, left.map((m) => `${JSON.stringify(m)}\n`).join(''));
      this.pending = left.length;
      if (taken > 0) this.log.info({ taken, left: left.length }, 'kept texts queued');
      return taken;
    });
  }

  private async claimOrphans(): Promise<void> {
    const names = (await fs.readdir(this.opts.dir)).filter((n) => n.startsWith('texts.') && n.endsWith(SUFFIX) && n !== path.basename(this.file));
    for (const name of names) {
      const pid = Number(name.split('.')[1]);
      if (pid !== process.pid && processAlive(pid)) continue;
      const claimed = `${this.file}.claim-${randomBytes(4).toString('hex')}`;
      try {
        await fs.rename(path.join(this.opts.dir, name), claimed);
      } catch {
        continue; // another controller claimed it first
      }
      const texts = await readKept(claimed, this.log);
      if (texts.length > 0) await appendDurably(this.file, texts.map((m) => `${JSON.stringify(m)}\n`).join(''));
      await fs.rm(claimed, { force: true });
      this.pending += texts.length;
      this.log.info({ texts: texts.length }, 'took in texts an earlier run kept on disk');
    }
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.chain.then(op, op);
    this.chain = next.catch((err: unknown) => this.log.error({ err }, 'message spool operation failed'));
    return next;
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function appendDurably(file: string, lines: string): Promise<void> {
  const fh = await fs.open(file, 'a', 0o600);
  try {
    await fh.appendFile(lines);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function rewriteDurably(file: string, lines: string): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await fs.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(lines);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
}

async function readKept(file: string, log: Logger): Promise<InboundMessage[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const kept: InboundMessage[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      kept.push(JSON.parse(line) as InboundMessage);
    } catch {
      // only a write cut short by a crash can leave a torn line, and its text was never kept
      log.warn('a torn line in the message spool skipped');
    }
  }
  return kept;
}

