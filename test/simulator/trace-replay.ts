/**
 * Replays a recorded ESL transcript against the simulator and returns both sides in a comparable form.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { FreeSwitchSimulator, OutboundCall, PhoneBehaviour } from './FreeSwitchSimulator';
import type { CompareOptions } from './compare';

export const TRACE_DIR = path.resolve(__dirname, '../../../shared/fs-traces');
/** Recordings of the same real switch made for this repository (tools/record-b-refused.ts), same format. */
export const LOCAL_TRACE_DIR = path.resolve(__dirname, 'recordings');

export interface TraceMsg { dir: 'send' | 'recv'; t_ms: number; raw: string }
export interface Parsed { ct: string; headers: Array<[string, string]>; body: string; raw: string }

export function loadTrace(file: string, dir = TRACE_DIR): TraceMsg[] {
  return fs.readFileSync(path.join(dir, file), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as TraceMsg);
}
export interface ManifestScenario {
  scenario: string; ids: Record<string, string>;
  transcripts: Array<{ file: string; closed_by_freeswitch_at_ms: number | null; closed_by_client_at_ms: number | null }>;
  phones: Array<{ label: string; number: string; address?: string; behaviour: string }>;
  sip?: string;
}
export function manifest(dir = TRACE_DIR): ManifestScenario[] {
  return JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as ManifestScenario[];
}

/** Phone behaviour from the manifest's prose ("UAS: 180 Ringing, 200 OK after 1 s, sends BYE 3 s after the ACK"). */
export function behaviourFromText(t: string): PhoneBehaviour {
  const refused = /refused by the switch: ([A-Z_]+)/.exec(t);
  if (refused) return { answer: 'refused', refuseCause: refused[1]! };
  if (/486/.test(t)) return { answer: 'busy' };
  if (/603/.test(t)) return { answer: 'decline' };
  if (/never answers/.test(t)) return { answer: 'no-answer' };
  const b: PhoneBehaviour = { answer: 'answer' };
  const ring = /200 OK after (\d+(?:\.\d+)?) s/.exec(t);
  if (ring) b.ringMs = Number(ring[1]) * 1000;
  const bye = /sends BYE (\d+(?:\.\d+)?) s after/.exec(t);
  if (bye) b.hangupAfterMs = Number(bye[1]) * 1000;
  return b;
}

/** Parse one framed ESL message (outer headers; for plain events the inner header block). */
export function parseMsg(raw: string): Parsed {
  const i = raw.indexOf('\n\n');
  const outer = raw.slice(0, i).split('\n').map((l) => { const k = l.indexOf(': '); return [l.slice(0, k), l.slice(k + 2)] as [string, string]; });
  const ct = outer.find(([k]) => k === 'Content-Type')?.[1] ?? '';
  const body = raw.slice(i + 2);
  if (ct === 'text/event-plain') {
    const j = body.indexOf('\n\n');
    const head = j >= 0 ? body.slice(0, j) : body;
    const headers = head.split('\n').filter(Boolean).map((l) => { const k = l.indexOf(': '); return [l.slice(0, k), decodeURIComponent(l.slice(k + 2))] as [string, string]; });
    return { ct, headers, body: j >= 0 ? body.slice(j + 2) : '', raw };
  }
  if (ct === 'text/event-json') {
    const headers: Array<[string, string]> = [];
    // keep duplicate keys: walk the json text
    const re = /"((?:[^"\\]|\\.)*)":("(?:[^"\\]|\\.)*")/g;
    let m: RegExpExecArray | null;
    let inner = '';
    while ((m = re.exec(body))) {
      const k = JSON.parse(`"${m[1]!}"`) as string; const v = JSON.parse(m[2]!) as string;
      if (k === '_body') inner = v; else if (k !== 'Content-Length') headers.push([k, v]);
    }
    return { ct, headers, body: inner, raw };
  }
  return { ct, headers: outer, body, raw };
}

/** Split a byte stream into framed messages. */
export class Framer {
  private buf = '';
  constructor(private readonly onMsg: (raw: string) => void) {}
  push(s: string): void {
    this.buf += s;
    for (;;) {
      const i = this.buf.indexOf('\n\n');
      if (i < 0) return;
      const m = /(?:^|\n)Content-Length: (\d+)/.exec(this.buf.slice(0, i));
      const n = m ? Number(m[1]) : 0;
      if (this.buf.length < i + 2 + n) return;
      this.onMsg(this.buf.slice(0, i + 2 + n));
      this.buf = this.buf.slice(i + 2 + n);
    }
  }
}

export interface ReplayResult {
  recv: Parsed[]; closedByServer: boolean; elapsedMs: number;
  /** replayOutbound: the port the test (as controller) listened on */
  controllerPort?: number;
}
export interface ReplayOptions { onRecv?: (p: Parsed) => void; maxWaitMs?: number }

/**
 * Sends the trace's `send` messages. Each one waits until as many messages have arrived as had
 * arrived before it in the recording, then waits the recorded gap (scaled).
 */
export async function replay(sim: FreeSwitchSimulator, port: number, trace: TraceMsg[], scale: number, opts: ReplayOptions = {}): Promise<ReplayResult> {
  return drive(net.connect(port, '127.0.0.1'), trace, scale, opts);
}

/** Caller and called number of an outbound-socket recording: its first reply is the connect reply (CHANNEL_DATA). */
export function outboundCall(trace: TraceMsg[]): { callerNumber: string; destinationNumber: string } {
  const first = trace.find((m) => m.dir === 'recv');
  const headers = first ? parseMsg(first.raw).headers : [];
  const h = (n: string) => decodeURIComponent(headers.find(([k]) => k === n)?.[1] ?? '');
  return { callerNumber: h('Caller-Caller-ID-Number'), destinationNumber: h('Caller-Destination-Number') };
}

/**
 * Outbound socket (13a–13e): the test plays the controller. It listens, lets the simulator's channel
 * connect to it (dialplan `socket ... async full`), and then sends the trace's `send` messages like
 * `replay` does. `closedByServer` = the simulator (FreeSWITCH) closed the socket.
 * With `observer`, an inbound ESL connection replays that transcript at the same time; the call starts
 * once the observer holds as many messages as it had before its first event (auth and subscription done).
 */
export async function replayOutbound(
  sim: FreeSwitchSimulator, trace: TraceMsg[], call: OutboundCall, scale: number,
  opts: ReplayOptions & { observer?: { port: number; trace: TraceMsg[] } } = {},
): Promise<ReplayResult & { observer?: ReplayResult }> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', () => resolve()); });
  const { port } = server.address() as net.AddressInfo;
  try {
    let observer: Promise<ReplayResult> | undefined;
    if (opts.observer) {
      const obs = opts.observer.trace;
      const firstEvent = obs.findIndex((m) => m.dir === 'recv' && parseMsg(m.raw).ct.startsWith('text/event-'));
      const before = obs.slice(0, firstEvent < 0 ? obs.length : firstEvent).filter((m) => m.dir === 'recv').length;
      let subscribed!: () => void;
      const ready = new Promise<void>((r) => { subscribed = r; });
      let seen = 0;
      observer = drive(net.connect(opts.observer.port, '127.0.0.1'), obs, scale, { maxWaitMs: opts.maxWaitMs, onRecv: () => { if (++seen >= before) subscribed(); } });
      await Promise.race([ready, observer]);
    }
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const [sock] = await Promise.all([accepted, sim.connectOutbound({ host: '127.0.0.1', port }, call)]);
    sock.setNoDelay(true);
    const [main, obsResult] = await Promise.all([drive(sock, trace, scale, opts), observer]);
    return { ...main, controllerPort: port, observer: obsResult };
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/**
 * Compare options for an outbound-socket recording (and its observer). The exceptions are explicit:
 * - the socket app's target: the recording's controller listened on 127.0.0.1:8084, the test on a free port;
 * - `export RFC2822_DATE=<now>` (vanilla dialplan, observer only): the wall-clock date, compared by format.
 */
export function outboundCompareOptions(sim: FreeSwitchSimulator, sc: ManifestScenario, controllerPort: number): CompareOptions {
  const uuids: Record<string, string> = {};
  const caller = sc.ids.uA ?? sc.ids.uC;
  if (caller) uuids[caller] = 'A';
  if (sc.ids.uB) uuids[sc.ids.uB] = 'B';
  // myevents never carries B's events, so B's uuid is known only from Other-Leg-Unique-ID: name the
  // simulator's B leg explicitly (the leg it INVITEd B's phone with)
  const simUuids: Record<string, string> = {};
  const bPhone = sc.phones.find((p) => p.label === 'B');
  const bLeg = bPhone ? sim.invitesTo(bPhone.number)[0] : undefined;
  if (bLeg) simUuids[bLeg.uuid] = 'B';
  return {
    uuids, simUuids,
    valueRewrites: [{
      header: 'Application-Data', from: '127.0.0.1:8084 async full', to: `127.0.0.1:${controllerPort} async full`,
      reason: 'the socket app connects to the controller; the recording used port 8084, the test listens on a free port',
    }],
    valueFormats: [{
      header: 'Application-Data', format: /^RFC2822_DATE=(Sun|Mon|Tue|Wed|Thu|Fri|Sat), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4}$/,
      reason: 'the vanilla dialplan exports the current date (strftime %a, %d %b %Y %T %z)',
    }],
  };
}

async function drive(sock: net.Socket, trace: TraceMsg[], scale: number, opts: ReplayOptions): Promise<ReplayResult> {
  const start = Date.now();
  const recv: Parsed[] = [];
  let closedByServer = false;
  let closed = sock.destroyed;
  let wake: (() => void) | null = null;
  const framer = new Framer((raw) => { const p = parseMsg(raw); recv.push(p); opts.onRecv?.(p); wake?.(); });
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => framer.push(d));
  sock.on('end', () => { closedByServer = true; });
  sock.on('close', () => { closed = true; wake?.(); });
  sock.on('error', () => undefined);
  const waitFor = async (pred: () => boolean, ms: number) => {
    const until = Date.now() + ms;
    while (!pred() && !closed && Date.now() < until) {
      await new Promise<void>((r) => { wake = r; setTimeout(r, 5); });
      wake = null;
    }
  };
  const maxWait = opts.maxWaitMs ?? 5000;
  let recvSeen = 0; let lastRecvT = 0;
  for (const m of trace) {
    if (m.dir === 'recv') { recvSeen++; lastRecvT = m.t_ms; continue; }
    const need = recvSeen;
    await waitFor(() => recv.length >= need, maxWait);
    const gap = Math.max(0, m.t_ms - lastRecvT) * scale;
    if (gap > 0) await new Promise((r) => setTimeout(r, gap));
    if (closed) break;
    sock.write(m.raw);
  }
  await waitFor(() => closed, maxWait);
  if (!closed) sock.destroy();
  return { recv, closedByServer, elapsedMs: Date.now() - start };
}
