import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { sanitize } from './sanitize';

/** One ESL message as the traces hold it. */
export interface RecordedMessage {
  readonly dir: 'send' | 'recv';
  readonly t_ms: number;
  readonly raw: string;
}

/** An ESL connection to a real switch (inbound, or an outbound socket it opened) that logs every message both ways. */
export interface EslRecording {
  readonly socket: net.Socket;
  readonly log: RecordedMessage[];
  readonly send: (raw: string) => void;
  /** Waits until a received message satisfies `pred`. */
  readonly until: (pred: (raw: string) => boolean, ms?: number) => Promise<void>;
  /** Waits for the next received message. */
  readonly next: () => Promise<void>;
  readonly closedByFreeswitch: () => boolean;
}

export const RECORDINGS_DIR = path.resolve(__dirname, '../recordings');
export const RECORDED_SWITCH = 'FreeSWITCH 1.10.12-release';

/** The switch the recording tools talk to: E2E_ESL_HOST, E2E_ESL_PORT, E2E_ESL_PASSWORD. */
export function switchFromEnv(): { host: string; port: number; password: string } {
  return {
    host: process.env.E2E_ESL_HOST ?? '127.0.0.1',
    port: Number(process.env.E2E_ESL_PORT ?? 8021),
    password: process.env.E2E_ESL_PASSWORD ?? 'ClueCon',
  };
}

/**
 * Records the ESL messages of a connection to `target` (host and port), or of a socket the switch opened
 * (an outbound socket). Framed by bytes: a text's body is UTF-8, and Content-Length counts bytes.
 */
export function recordEsl(target: { host: string; port: number } | net.Socket, started: number = Date.now()): EslRecording {
  const log: RecordedMessage[] = [];
  const socket = target instanceof net.Socket ? target : net.connect(target.port, target.host);
  let closedByFreeswitch = false;
  let wake: (() => void) | undefined;
  let pending = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    for (;;) {
      const end = pending.indexOf('\n\n');
      if (end < 0) return;
      const length = Number(/(?:^|\n)Content-Length: (\d+)/.exec(pending.subarray(0, end).toString('utf8'))?.[1] ?? 0);
      if (pending.length < end + 2 + length) return;
      log.push({ dir: 'recv', t_ms: Date.now() - started, raw: pending.subarray(0, end + 2 + length).toString('utf8') });
      pending = pending.subarray(end + 2 + length);
      wake?.();
    }
  });
  socket.on('end', () => (closedByFreeswitch = true));
  const until = async (pred: (raw: string) => boolean, ms = 30_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!log.some((m) => m.dir === 'recv' && pred(m.raw))) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the switch');
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 20);
      });
    }
  };
  const received = (): number => log.filter((m) => m.dir === 'recv').length;
  return {
    socket,
    log,
    send: (raw) => {
      log.push({ dir: 'send', t_ms: Date.now() - started, raw });
      socket.write(raw);
    },
    until,
    next: async () => {
      const n = received();
      await until(() => received() > n);
    },
    closedByFreeswitch: () => closedByFreeswitch,
  };
}

/** Logs in and subscribes as the controller does: `auth`, `event plain <events>`, then each `filter`, each answered before the next. */
export async function subscribe(rec: EslRecording, password: string, events: string, filters: readonly string[] = []): Promise<void> {
  await rec.until((raw) => raw.startsWith('Content-Type: auth/request'));
  for (const command of [`auth ${password}`, `event plain ${events}`, ...filters.map((f) => `filter ${f}`)]) {
    rec.send(`${command}\n\n`);
    await rec.next();
  }
}

/** Says `exit` and waits for the switch to close the connection. */
export async function leave(rec: EslRecording): Promise<void> {
  rec.send('exit\n\n');
  await new Promise<void>((r) => rec.socket.once('close', () => r()));
}

/** A predicate for the received event `name` of the channel `uuid`. */
export const channelEvent = (name: string, uuid: string) => (raw: string): boolean =>
  raw.includes(`Event-Name: ${name}\n`) && raw.includes(`Unique-ID: ${uuid}\n`);

export interface Transcript {
  /** The file's name after the scenario's: `''` for `<name>.esl.jsonl`, `-observer` for `<name>-observer.esl.jsonl`. */
  readonly suffix: string;
  readonly rec: Pick<EslRecording, 'log' | 'closedByFreeswitch'>;
  /** What the connection was, when it was not the usual inbound one. */
  readonly connection?: string;
}

/**
 * Writes a scenario into test/simulator/recordings/: each transcript sanitized as the shared traces, the
 * phones' SIP log when given (as given), and its manifest entry (replacing an earlier one of the same name).
 */
export function saveRecording(name: string, transcripts: readonly Transcript[], entry: Record<string, unknown>, sip?: string): void {
  fs.mkdirSync(RECORDINGS_DIR, { recursive: true });
  for (const t of transcripts) {
    const lines = t.rec.log.map((m) => JSON.stringify({ ...m, raw: m.dir === 'recv' ? sanitize(m.raw) : m.raw }));
    fs.writeFileSync(path.join(RECORDINGS_DIR, `${name}${t.suffix}.esl.jsonl`), lines.join('\n') + '\n');
  }
  if (sip !== undefined) fs.writeFileSync(path.join(RECORDINGS_DIR, `${name}.sip.txt`), sip);
  const manifestFile = path.join(RECORDINGS_DIR, 'manifest.json');
  const manifest = (fs.existsSync(manifestFile) ? JSON.parse(fs.readFileSync(manifestFile, 'utf8')) : []) as Array<{ scenario: string }>;
  const scenario = {
    scenario: name,
    recorded: new Date().toISOString().slice(0, 10),
    switch: RECORDED_SWITCH,
    transcripts: transcripts.map((t) => ({
      file: `${name}${t.suffix}.esl.jsonl`,
      ...(t.connection === undefined ? {} : { connection: t.connection }),
      closed_by_freeswitch_at_ms: t.rec.closedByFreeswitch() ? (t.rec.log.at(-1)?.t_ms ?? null) : null,
      closed_by_client_at_ms: null,
    })),
    ...entry,
  };
  fs.writeFileSync(manifestFile, JSON.stringify([...manifest.filter((s) => s.scenario !== name), scenario], null, 1) + '\n');
  console.log(`wrote ${name}: ${transcripts.map((t) => t.rec.log.length).join(' + ')} messages`);
}
