import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { InboundMessage } from '../../src/messages/carrier';
import { InboundSpool } from '../../src/messages/inbound-spool';
import { createLogger } from '../../src/logger';
import { waitUntil } from '../support/wait';

/** SIP texts sofia has already answered 202: the spool must never lose one the queue did not take. */
describe('InboundSpool', () => {
  let dir: string;
  const logger = createLogger('silent');
  const text = (n: number): InboundMessage => ({ transport: 'sip', x: '700100000000001', sender: `1380000${String(n).padStart(4, '0')}`, text: `text ${n}`, parts: 1, receivedAt: 1_700_000_000_000 + n });

  /** A queue that takes texts only while `up`, never answers while `hang`. */
  function queue() {
    const q = {
      up: true,
      hang: false,
      taken: [] as InboundMessage[],
      enqueue: async (m: InboundMessage): Promise<void> => {
        if (q.hang) return new Promise<void>(() => undefined);
        if (!q.up) throw new Error('NOREPLICAS Not enough good replicas to write.');
        q.taken.push(m);
      },
    };
    return q;
  }
  const spoolFiles = async () => (await fs.readdir(dir)).filter((n) => n.endsWith('.jsonl'));

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(tmpdir(), 'ng-spool-test-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('queues a text at once while the queue takes it, and keeps nothing on disk', async () => {
    const q = queue();
    const spool = new InboundSpool({ dir, enqueueTimeoutMs: 200, retryMs: 50 }, (m) => q.enqueue(m), logger);
    await spool.start();
    expect(await spool.accept(text(1))).toBe('queued');
    expect(q.taken).toEqual([text(1)]);
    expect(await spoolFiles()).toEqual([]);
    await spool.stop();
  });

  it('keeps texts the queue refuses on disk (owner-only), in order, and queues them in that order once it takes them again', async () => {
    const q = queue();
    // Replayed by hand here: a timer's replay while the queue is briefly up would take text 1 before text 2 is kept.
    const spool = new InboundSpool({ dir, enqueueTimeoutMs: 200, retryMs: 60_000 }, (m) => q.enqueue(m), logger);
    await spool.start();
    q.up = false;
    expect(await spool.accept(text(1))).toBe('kept');
    q.up = true;
    // others are waiting: a later text joins them rather than overtaking them
    expect(await spool.accept(text(2))).toBe('kept');
    q.up = false;
    const [file] = await spoolFiles();
    const stat = await fs.stat(path.join(dir, file!));
    expect(stat.mode & 0o777).toBe(0o600);
    const lines = (await fs.readFile(path.join(dir, file!), 'utf8')).trim().split('\n');
    expect(lines.map((l) => JSON.parse(l) as InboundMessage)).toEqual([text(1), text(2)]);
    expect(await spool.replay()).toBe(0);
    expect(q.taken).toEqual([]);
    expect(spool.waiting).toBe(2);
    q.up = true;
    expect(await spool.replay()).toBe(2);
    expect(q.taken).toEqual([text(1), text(2)]);
    await waitUntil('the file removed', async () => (await spoolFiles()).length === 0);
    expect(spool.waiting).toBe(0);
    await spool.stop();
  });

  it('offers kept texts to the queue again every retryMs until it takes them', async () => {
    const q = queue();
    const spool = new InboundSpool({ dir, enqueueTimeoutMs: 200, retryMs: 50 }, (m) => q.enqueue(m), logger);
    await spool.start();
    q.up = false;
    expect(await spool.accept(text(1))).toBe('kept');
    q.up = true;
    await waitUntil('queued by the timer', () => q.taken.length === 1);
    expect(q.taken).toEqual([text(1)]);
    await waitUntil('the file removed', async () => (await spoolFiles()).length === 0);
    await spool.stop();
  });

  it('keeps a text when the queue does not answer within the bound (Redis gone: its commands wait for ever)', async () => {
    const q = queue();
    q.hang = true;
    const spool = new InboundSpool({ dir, enqueueTimeoutMs: 100, retryMs: 60_000 }, (m) => q.enqueue(m), logger);
    await spool.start();
    const started = Date.now();
    expect(await spool.accept(text(7))).toBe('kept');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(spool.waiting).toBe(1);
    q.hang = false;
    expect(await spool.replay()).toBe(1);
    expect(q.taken).toEqual([text(7)]);
    await spool.stop();
  });

  it('a partial replay keeps what the queue did not take, and nothing appended meanwhile is lost', async () => {
    const q = queue();
    const spool = new InboundSpool({ dir, enqueueTimeoutMs: 200, retryMs: 60_000 }, (m) => q.enqueue(m), logger);
    await spool.start();
    q.up = false;
    for (const n of [1, 2, 3]) await spool.accept(text(n));
    let calls = 0;
    q.enqueue = async (m) => {
      if (++calls > 1) throw new Error('down again');
      q.taken.push(m);
    };
    const replay = spool.replay();
    const late = spool.accept(text(4));
    expect(await replay).toBe(1);
    expect(await late).toBe('kept');
    expect(spool.waiting).toBe(3);
    q.enqueue = async (m) => {
      q.taken.push(m);
    };
    expect(await spool.replay()).toBe(3);
    expect(q.taken).toEqual([text(1), text(2), text(3), text(4)]);
    await spool.stop();
  });

  it('takes in what a dead controller left (a restart), leaves a live one’s file alone, and skips a torn last line', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    await fs.writeFile(path.join(dir, `texts.${dead}.deadbeef.jsonl`), `${JSON.stringify(text(1))}\n${JSON.stringify(text(2))}\n{"transport":"si`, { mode: 0o600 });
    const liveFile = `texts.${process.ppid}.cafebabe.jsonl`;
    await fs.writeFile(path.join(dir, liveFile), `${JSON.stringify(text(9))}\n`, { mode: 0o600 });
    const q = queue();
    const spool = new InboundSpool({ dir, enqueueTimeoutMs: 200, retryMs: 60_000 }, (m) => q.enqueue(m), logger);
    await spool.start();
    await waitUntil('the dead one’s texts queued', () => q.taken.length === 2 && spool.waiting === 0);
    expect(q.taken).toEqual([text(1), text(2)]);
    expect(await spoolFiles()).toEqual([liveFile]);
    await spool.stop();
  });

  it('fails at start, not at the first outage, when the directory cannot be written', async () => {
    const file = path.join(dir, 'not-a-dir');
    await fs.writeFile(file, '');
    const spool = new InboundSpool({ dir: path.join(file, 'spool'), enqueueTimeoutMs: 200, retryMs: 50 }, async () => undefined, logger);
    await expect(spool.start()).rejects.toThrow();
  });
});
