/**
 * ESL event ingest: how many real FreeSWITCH CHANNEL_* events per second one core turns into
 * events for the call flows. Goal: >= 50,000/s through EslClient's 'event' emission.
 *
 * The events are the recorded ones from shared/fs-traces (FreeSWITCH 1.10.12), byte for byte.
 * A fake FreeSWITCH in a worker thread (so it does not share the measured core) does the auth and
 * subscription exchange and then streams the recorded events, repeated, as fast as the socket takes
 * them. Each variant runs on its own connection: events counted over a fixed window after a warm-up.
 *
 *   npx tsx bench/esl-ingest.ts        (env: BENCH_ESL_WINDOW_MS, default 600; BENCH_ESL_WARMUP_MS, default 200)
 *
 * Variants:
 *  - modesl.*            : unmodified modesl 1.2.1 Connection + Parser, counting 'esl::event::**' emissions.
 *  - fastFramer+modeslDispatch : our FrameReader, but events still built as modesl Events and
 *                          dispatched through modesl's EventEmitter2 wildcard (FastConnection with no sink).
 *  - eslClient.*         : EslClient 'event' emission (what the call flows get). `readName` touches only
 *                          e.name/e.uuid (routing), `read3Headers` also reads 3 headers, `readAllHeaders`
 *                          forces the full url-decoded header map.
 * Plus a socket-free parse-only comparison and what the subscription choice costs per call (04c, ALL).
 */
import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { EslClient } from '../src/esl/client';
import { FastConnection, modesl } from '../src/esl/connection';
import { parseJsonEvent, parsePlainEvent, type EslEvent } from '../src/esl/event';
import { FrameReader } from '../src/esl/framing';
import { createLogger } from '../src/logger';

const TRACES = path.resolve(__dirname, '../../shared/fs-traces');
const WINDOW_MS = Number(process.env.BENCH_ESL_WINDOW_MS ?? 600);
const WARMUP_MS = Number(process.env.BENCH_ESL_WARMUP_MS ?? 200);

/** The subscription the app uses (SUBSCRIBED_EVENTS in src/flows/switch.ts) and the README's BASE. */
const APP_EVENTS = ['CHANNEL_PROGRESS', 'CHANNEL_ANSWER', 'CHANNEL_BRIDGE', 'CHANNEL_HANGUP', 'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_EXECUTE_COMPLETE', 'BACKGROUND_JOB'];
const BASE_EVENTS = 'CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_PARK CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE BACKGROUND_JOB CHANNEL_DESTROY'.split(' ');

interface Msg { dir: string; raw: string }

function readTrace(file: string): Msg[] {
  return fs.readFileSync(path.join(TRACES, file), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Msg);
}

function channelEvents(files: string[], contentType: string): string[] {
  const out: string[] = [];
  for (const f of files) {
    for (const m of readTrace(f)) {
      if (m.dir !== 'recv' || !m.raw.includes(`\nContent-Type: ${contentType}\n`)) continue;
      const name = /Event-Name(?:: |":")(\w+)/.exec(m.raw)?.[1] ?? '';
      if (name.startsWith('CHANNEL_')) out.push(m.raw);
    }
  }
  return out;
}

function loadPayloads(): Record<string, { events: number; bytes: Buffer; avgBytes: number }> {
  const files = fs.readdirSync(TRACES).filter((f) => f.endsWith('.esl.jsonl')).sort();
  const sets: Record<string, string[]> = {
    'plain-all': channelEvents(files, 'text/event-plain'),
    'plain-04': channelEvents(['04-click2dial-fixed-oneshot.esl.jsonl'], 'text/event-plain'),
    'json-04b': channelEvents(['04b-click2dial-fixed-oneshot-json.esl.jsonl'], 'text/event-json'),
  };
  const out: Record<string, { events: number; bytes: Buffer; avgBytes: number }> = {};
  for (const [k, evs] of Object.entries(sets)) {
    const once = Buffer.from(evs.join(''));
    const reps = Math.max(1, Math.ceil((1 << 20) / once.length)); // ~1 MiB per write
    out[k] = { events: evs.length * reps, bytes: Buffer.concat(Array(reps).fill(once) as Buffer[]), avgBytes: Math.round(once.length / evs.length) };
  }
  return out;
}

/** The fake FreeSWITCH (plain JS, runs in a worker thread). Replies are the recorded bytes of 01a/02. */
const SERVER_JS = `
const net = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');
const payloads = workerData.payloads;
const server = net.createServer((s) => {
  s.setNoDelay(true);
  s.on('error', () => {});
  let buf = '', streaming = false, closed = false;
  s.on('close', () => { closed = true; });
  s.write('Content-Type: auth/request\\n\\n');
  const stream = (p) => {
    streaming = true;
    const pump = () => { while (!closed) { if (!s.write(p)) { s.once('drain', pump); return; } } };
    pump();
  };
  s.on('data', (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\\n\\n')) !== -1) {
      const cmd = buf.slice(0, i); buf = buf.slice(i + 2);
      const first = cmd.split('\\n')[0];
      const job = (/\\nJob-UUID: (\\S+)/.exec(cmd) || [])[1] || '6d62c4f0-c61e-4a06-8531-895a5ff745f0';
      if (first.startsWith('auth ')) s.write('Content-Type: command/reply\\nReply-Text: +OK accepted\\n\\n');
      else if (first.startsWith('event ')) s.write('Content-Type: command/reply\\nReply-Text: +OK event listener enabled ' + (first.startsWith('event json') ? 'json' : 'plain') + '\\n\\n');
      else if (first.startsWith('exit')) { s.end('Content-Type: command/reply\\nReply-Text: +OK bye\\n\\n'); closed = true; }
      else if (first.includes('bench_go')) {
        const which = first.split(' ').pop();
        if (first.startsWith('bgapi')) s.write('Content-Type: command/reply\\nReply-Text: +OK Job-UUID: ' + job + '\\nJob-UUID: ' + job + '\\n\\n');
        else s.write('Content-Type: api/response\\nContent-Length: 4\\n\\n+OK\\n');
        if (!streaming) stream(Buffer.from(payloads[which]));
      } else s.write('Content-Type: command/reply\\nReply-Text: +OK\\n\\n');
    }
  });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
parentPort.on('message', (m) => { if (m === 'stop') server.close(() => process.exit(0)); });
`;

interface Counter { count: number }

/** Counts events over WINDOW_MS after WARMUP_MS of streaming. */
async function windowRate(counter: Counter): Promise<number> {
  const t0 = Date.now();
  while (counter.count === 0) {
    if (Date.now() - t0 > 5000) throw new Error('no events arrived');
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const c0 = counter.count;
  const s0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const c1 = counter.count;
  const s1 = process.hrtime.bigint();
  return Math.round(((c1 - c0) * 1e9) / Number(s1 - s0));
}

type ModeslConn = {
  on(ev: string, fn: (e: { getHeader(n: string): string | null; type?: string }) => void): void;
  events(type: string, evs: string, cb: () => void): void;
  api(cmd: string, cb: () => void): void;
  disconnect(): void;
  socket: { destroy(): void } | null;
};

async function runModesl(port: number, format: 'plain' | 'json', payload: string, fastFramer: boolean): Promise<number> {
  const counter: Counter = { count: 0 };
  const conn = await new Promise<ModeslConn>((resolve) => {
    const c = fastFramer
      ? (new FastConnection('127.0.0.1', port, 'ClueCon') as unknown as ModeslConn)
      : (new (modesl.Connection as unknown as new (...a: unknown[]) => ModeslConn)('127.0.0.1', port, 'ClueCon', () => resolve(c)));
    c.on('error', () => undefined);
    if (fastFramer) (c as unknown as EventEmitter).once('esl::ready', () => resolve(c));
  });
  conn.on('esl::event::**', (e) => {
    if (e.type !== undefined && e.type.startsWith('CHANNEL_')) counter.count++;
  });
  await new Promise<void>((r) => conn.events(format, BASE_EVENTS.join(' '), () => r()));
  conn.api(`bench_go ${payload}`, () => undefined);
  const rate = await windowRate(counter);
  conn.socket?.destroy();
  return rate;
}

async function runClient(port: number, format: 'plain' | 'json', payload: string, read: 'name' | 'three' | 'all'): Promise<number> {
  const client = new EslClient({
    host: '127.0.0.1', port, password: 'ClueCon', events: BASE_EVENTS, commandTimeoutMs: 30_000,
    reconnectMinMs: 1000, reconnectMaxMs: 1000, logger: createLogger('silent'), eventFormat: format,
  });
  await client.start();
  const counter: Counter = { count: 0 };
  let sink = 0;
  client.on('event', (e: EslEvent) => {
    if (read === 'name') sink += e.name.length + (e.uuid?.length ?? 0);
    else if (read === 'three') sink += (e.header('Answer-State')?.length ?? 0) + (e.header('Caller-Caller-ID-Number')?.length ?? 0) + (e.variable('hangup_cause')?.length ?? 0);
    else sink += Object.keys(e.headers).length;
    if (e.name.startsWith('CHANNEL_')) counter.count++;
  });
  client.api(`bench_go ${payload}`).catch(() => undefined);
  const rate = await windowRate(counter);
  await client.stop();
  if (sink < 0) console.log(sink);
  return rate;
}

/** Socket-free: the same bytes pushed through each parser in 64 KiB chunks. */
function parseOnly(payloads: ReturnType<typeof loadPayloads>): Record<string, number> {
  const res: Record<string, number> = {};
  const chunks = (b: Buffer): Buffer[] => {
    const out: Buffer[] = [];
    for (let i = 0; i < b.length; i += 65536) out.push(b.subarray(i, i + 65536));
    return out;
  };
  const time = (label: string, events: number, fn: () => void): void => {
    fn(); // warm-up
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const t0 = process.hrtime.bigint();
      fn();
      best = Math.min(best, Number(process.hrtime.bigint() - t0));
    }
    res[label] = Math.round((events * 1e9) / best);
  };
  const plain = payloads['plain-all']!;
  const json = payloads['json-04b']!;
  // The same module object src/esl/connection.ts loaded; its Parser is left out of that file's typing.
  const Parser = (modesl as typeof modesl & { Parser: new (s: EventEmitter) => EventEmitter }).Parser;
  const small = (b: Buffer, n: number): { buf: Buffer; events: number } => {
    // modesl's Parser is O(buffer) per chunk; feed it ~256 KiB so the run stays short
    const cut = b.subarray(0, 256 * 1024);
    let count = 0;
    const r = new FrameReader(() => count++);
    r.push(cut);
    return { buf: cut.subarray(0, cut.length), events: Math.min(count, n) };
  };
  for (const [label, p] of [['plain', plain], ['json', json]] as const) {
    const s = small(p.bytes, p.events);
    time(`modeslParser.${label}`, s.events, () => {
      const sock = new EventEmitter();
      const parser = new Parser(sock);
      parser.on('esl::event', () => undefined);
      for (const c of chunks(s.buf)) sock.emit('data', c);
    });
  }
  const frame = (p: { bytes: Buffer; events: number }, onEvent: (body: string) => void): void => {
    const r = new FrameReader((h, b) => { if (b !== undefined) onEvent(b); });
    for (const c of chunks(p.bytes)) r.push(c);
  };
  let sink = 0;
  time('fastFramer.plain.lazy(name+uuid)', plain.events, () => frame(plain, (b) => { sink += parsePlainEvent(b).name.length; }));
  time('fastFramer.plain.fullHeaders', plain.events, () => frame(plain, (b) => { sink += Object.keys(parsePlainEvent(b).headers).length; }));
  time('fastFramer.json', json.events, () => frame(json, (b) => { sink += parseJsonEvent(b).name.length; }));
  if (sink < 0) console.log(sink);
  return res;
}

/** What each subscription delivers for one real call (04c was captured with `event plain ALL`). */
function subscriptionCost(): Record<string, { eventsPerCall: number; bytesPerCall: number }> {
  const evs = readTrace('04c-click2dial-fixed-oneshot-all-events.esl.jsonl').filter((m) => m.dir === 'recv' && m.raw.includes('text/event-plain'));
  const pick = (names: string[] | null): { eventsPerCall: number; bytesPerCall: number } => {
    const sel = evs.filter((m) => names === null || names.includes(/Event-Name: (\w+)/.exec(m.raw)?.[1] ?? ''));
    return { eventsPerCall: sel.length, bytesPerCall: sel.reduce((n, m) => n + Buffer.byteLength(m.raw), 0) };
  };
  return { ALL: pick(null), BASE: pick(BASE_EVENTS), app: pick(APP_EVENTS) };
}

export async function run(): Promise<Record<string, unknown>> {
  const payloads = loadPayloads();
  const worker = new Worker(SERVER_JS, { eval: true, workerData: { payloads: Object.fromEntries(Object.entries(payloads).map(([k, v]) => [k, v.bytes])) } });
  const port = await new Promise<number>((r) => worker.once('message', r));
  const tcp: Record<string, number> = {};
  try {
    tcp['modesl.plain(all traces)'] = await runModesl(port, 'plain', 'plain-all', false);
    tcp['modesl.plain(04)'] = await runModesl(port, 'plain', 'plain-04', false);
    tcp['modesl.json(04b)'] = await runModesl(port, 'json', 'json-04b', false);
    tcp['fastFramer+modeslDispatch.plain(all)'] = await runModesl(port, 'plain', 'plain-all', true);
    tcp['eslClient.plain(all).readName'] = await runClient(port, 'plain', 'plain-all', 'name');
    tcp['eslClient.plain(all).read3Headers'] = await runClient(port, 'plain', 'plain-all', 'three');
    tcp['eslClient.plain(all).readAllHeaders'] = await runClient(port, 'plain', 'plain-all', 'all');
    tcp['eslClient.plain(04).readName'] = await runClient(port, 'plain', 'plain-04', 'name');
    tcp['eslClient.json(04b).readName'] = await runClient(port, 'json', 'json-04b', 'name');
    tcp['eslClient.json(04b).readAllHeaders'] = await runClient(port, 'json', 'json-04b', 'all');
  } finally {
    worker.postMessage('stop');
    await new Promise((r) => worker.once('exit', r));
  }
  return {
    unit: 'events/s (CHANNEL_* events, recorded FreeSWITCH 1.10.12 bytes)',
    goal: 50_000,
    eventSizeBytes: Object.fromEntries(Object.entries(payloads).map(([k, v]) => [k, v.avgBytes])),
    tcp,
    parseOnly: parseOnly(payloads),
    subscriptionPerCall: subscriptionCost(),
    node: process.version,
    windowMs: WINDOW_MS,
  };
}

if (require.main === module) {
  run().then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
