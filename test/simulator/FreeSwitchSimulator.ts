/**
 * A FreeSWITCH 1.10.12 simulator that speaks the Event Socket protocol over TCP, for tests and
 * benchmarks. Behaviour and bytes follow the recorded traces in shared/fs-traces (see README.md here).
 */
import * as net from 'net';
import { randomUUID } from 'crypto';
import { urlEncode } from './encoding';
import { findTemplate, templates, TemplateEvent, TemplateKey } from './templates';

export interface PhoneBehaviour {
  /**
   * `refused`: the switch cannot create this phone's channel (no SIP is sent): an originate to it ends with
   * `-ERR <refuseCause>`; a bridge to it completes at once with that cause, B's channel only shows
   * CHANNEL_DESTROY (recording 16b, `sofia/<unknown profile>/…`). A bridge to the endpoint
   * `error/<CAUSE>` behaves the same without any B event (recording 16a).
   */
  answer?: 'answer' | 'busy' | 'decline' | 'no-answer' | 'unreachable' | 'refused';
  ringMs?: number;
  hangupAfterMs?: number;
  /** With `answer: 'refused'`: the cause (default DESTINATION_OUT_OF_ORDER). */
  refuseCause?: string;
  /** A leg only: the phone's BYE reaches the switch at exactly this point of the controller's call (see ByeRace). */
  byeRacing?: ByeRace;
}
/**
 * Where an A phone's BYE lands relative to the controller's steps, for replaying races deterministically:
 * - `originate-reply-before`: A answers, then hangs up before the originate's BACKGROUND_JOB (which still says +OK);
 * - `originate-reply-after`: right after the BACKGROUND_JOB `+OK`, before anything the controller sends next;
 * - `bridge-before`: just before the switch takes the controller's `sendmsg … bridge` (→ `-ERR invalid session id`);
 * - `bridge-accepted`: the switch has answered that sendmsg `+OK` but A's BYE is handled before the queued app
 *   starts: the bridge never runs, no CHANNEL_EXECUTE / EXECUTE_COMPLETE for it (what real FreeSWITCH does when
 *   the private event is still queued at hangup);
 * - `bridge-started`: right after B's channel is created (B is cancelled with ORIGINATOR_CANCEL);
 * - `b-answer-before` / `b-answer-after`: just before B's 200 OK (B is cancelled) / just after CHANNEL_BRIDGE;
 * - `bridge-failed`: just after the EXECUTE_COMPLETE of a bridge that failed (busy, no answer, refused): the
 *   carrier ends A instead of letting it hear the controller's prompt.
 */
export type ByeRace =
  | 'originate-reply-before' | 'originate-reply-after' | 'bridge-before' | 'bridge-accepted' | 'bridge-started'
  | 'b-answer-before' | 'b-answer-after' | 'bridge-failed';
export interface SeenInvite {
  uuid: string; number: string; fromDisplay: string | null; fromUser: string; remotePartyId: string | null; pAssertedIdentity: string | null; at: number;
}
/**
 * A SIP message FreeSWITCH sent to the phone that called X (the outbound-socket call), as that phone saw it:
 * `message` is the status (`180 Ringing`) or the request method (`BYE`).
 */
export interface SeenByCaller { uuid: string; message: string; remotePartyId: string | null; reason: string | null; at: number }
export interface SimulatorOptions { password?: string; host?: string; port?: number; timeScale?: number }
/** A call to X that FreeSWITCH hands to the controller's outbound socket; `caller` is the calling phone (UAC). */
export interface OutboundCall {
  callerNumber: string; destinationNumber: string;
  /** The caller's SIP host:port, as in its channel name `sofia/external/<number>@<address>` (default 127.0.0.1:5090). */
  callerAddress?: string;
  /** Only `hangupAfterMs` applies: the caller sends BYE that long after its call is answered. */
  caller?: PhoneBehaviour;
}

type Header = [string, string];
const GOODBYE = 'Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n';
const SHUTDOWN_NOTICE = 'The system is being shut down.\n';
const SIP_HOST = '127.0.0.1';

const Q850: Record<string, string> = {
  UNALLOCATED_NUMBER: '1', NO_ROUTE_DESTINATION: '3', NORMAL_CLEARING: '16', USER_BUSY: '17', NO_USER_RESPONSE: '18',
  NO_ANSWER: '19', CALL_REJECTED: '21', ORIGINATOR_CANCEL: '487', ALLOTTED_TIMEOUT: '602', SYSTEM_SHUTDOWN: '503',
};
const DIALSTATUS: Record<string, string> = { USER_BUSY: 'BUSY', NO_ANSWER: 'NOANSWER', CALL_REJECTED: 'CALL_REJECTED', ALLOTTED_TIMEOUT: 'ALLOTTED_TIMEOUT', NO_ROUTE_DESTINATION: 'INVALIDARGS', ORIGINATOR_CANCEL: 'CANCEL',
  // switch_ivr_originate.c: a channel that could not be created (16a, 16b)
  DESTINATION_OUT_OF_ORDER: 'INVALIDARGS', INVALID_PROFILE: 'INVALIDARGS' };
/** Variables that come from `{...}` originate/bridge blocks; rendered from the real call, in its order. */
const ORIG_KEYS = new Set(['origination_uuid', 'origination_caller_id_number', 'origination_caller_id_name', 'origination_callee_id_number', 'origination_callee_id_name', 'originate_timeout', 'hangup_after_bridge', 'continue_on_fail', 'leg_timeout', 'sip_cid_type']);
const NAME_HEADERS = new Set(['Caller-Caller-ID-Name', 'Caller-Orig-Caller-ID-Name', 'Caller-Callee-ID-Name', 'Other-Leg-Caller-ID-Name', 'Other-Leg-Orig-Caller-ID-Name', 'Other-Leg-Callee-ID-Name']);
/** CHANNEL_DATA repeats the caller profile as `Channel-*` (before `Caller-*`); these are rendered like their `Caller-*` twin. */
const CHANNEL_PROFILE_ALIASES = new Set(['Channel-Caller-ID-Name', 'Channel-Caller-ID-Number', 'Channel-Orig-Caller-ID-Name', 'Channel-Orig-Caller-ID-Number',
  'Channel-ANI', 'Channel-Destination-Number', 'Channel-Unique-ID', 'Channel-Channel-Name', 'Channel-Profile-Created-Time', 'Channel-Channel-Created-Time',
  'Channel-Channel-Answered-Time', 'Channel-Channel-Progress-Time', 'Channel-Channel-Hangup-Time', 'Channel-Channel-Bridged-Time']);

/** Where an app's EXECUTE/EXECUTE_COMPLETE template is taken from when the current flow has none. */
const APP_TEMPLATE_FILES: TemplateKey[] = ['05', '09b', '14', '13b', '13c', '13a'];

interface Endpoint { channelName: string; number: string; hostPort: string }
function parseEndpoint(s: string): Endpoint {
  // sofia/<profile>/<number>@host:port  |  sofia/gateway/<gw>/<number>
  const m = /^sofia\/gateway\/([^/]+)\/([^@]+)/.exec(s);
  if (m) return { channelName: s, number: m[2]!, hostPort: m[1]! };
  const parts = s.split('/');
  const rest = parts.slice(2).join('/');
  const at = rest.indexOf('@');
  return { channelName: s, number: at >= 0 ? rest.slice(0, at) : rest, hostPort: at >= 0 ? rest.slice(at + 1) : SIP_HOST };
}

/** `{a=b,c=d}rest` → vars + rest. Values may not contain commas (as in FreeSWITCH without ^^). */
export function parseVarBlock(s: string): { vars: Array<[string, string]>; rest: string } {
  s = s.trim();
  const vars: Array<[string, string]> = [];
  if (!s.startsWith('{')) return { vars, rest: s };
  const end = s.indexOf('}');
  for (const kv of s.slice(1, end).split(',')) {
    if (!kv) continue;
    const i = kv.indexOf('=');
    vars.push(i >= 0 ? [kv.slice(0, i), kv.slice(i + 1)] : [kv, '']);
  }
  return { vars, rest: s.slice(end + 1) };
}

interface AppRun { name: string; arg: string; uuid: string }
interface Snapshot { uuid: string; callerName: string; callerNum: string; origName: string; origNum: string; calleeName: string; calleeNum: string; ani: string; number: string; channelName: string }
function snap(c: Channel): Snapshot { return { uuid: c.uuid, callerName: c.callerName, callerNum: c.callerNum, origName: c.origName, origNum: c.origNum, calleeName: c.calleeName, calleeNum: c.calleeNum, ani: c.ani, number: c.ep.number, channelName: c.ep.channelName }; }

class Channel {
  uuid: string;
  role: 'A' | 'B';
  tpl: TemplateKey;
  cursor = -1;
  ep: Endpoint;
  vars: Array<[string, string]>;
  setVars = new Map<string, string>();
  answered = false;
  ringing = false;
  hungup = false;
  destroyed = false;
  cause = '';
  disposition = '';
  flipped = false;
  callerName: string; callerNum: string; calleeName: string; calleeNum: string; origName: string; origNum: string; ani: string;
  fromDisplay: string;
  createdUs: number; progressUs = 0; answeredUs = 0; bridgedUs = 0; hangupUs = 0;
  peer?: Channel;               // B for A (while/after bridging), A for B
  job?: { id: string; conn: Conn | null; api?: (body: string) => void; cmd: string; arg: string };
  apps: AppRun[] = [];          // running apps, outermost first
  parkApp?: AppRun;
  bridgeApp?: AppRun;
  bridgeOk = false;
  bridgeFailCause = '';
  /** The last bridge failed because B's channel could not be created (16a/16b): no B-leg variables. */
  bridgeRefused = false;
  recording?: string;
  timers: NodeJS.Timeout[] = [];
  behaviour: PhoneBehaviour;
  appQueue: Promise<void> = Promise.resolve();
  lastApp?: AppRun;
  curApp?: AppRun;
  fromUser = '';
  otherSnap?: Snapshot;
  recStartUs?: number;
  inbound?: boolean;
  outConn?: Conn;
  socketParked = false;          // CHANNEL_PARK of the `socket` app has been emitted
  /** The controller's socket went away while an app (bridge, playback) ran: the call goes on until that app ends. */
  socketReleased = false;
  reported = false;              // api_reporting_hook has run
  constructor(role: 'A' | 'B', uuid: string, ep: Endpoint, vars: Array<[string, string]>, behaviour: PhoneBehaviour, tpl: TemplateKey) {
    this.role = role; this.uuid = uuid; this.ep = ep; this.vars = vars; this.behaviour = behaviour; this.tpl = tpl;
    this.createdUs = nowUs();
    this.callerName = ''; this.callerNum = ''; this.calleeName = 'Outbound Call'; this.calleeNum = ep.number;
    this.origName = ''; this.origNum = ''; this.ani = ''; this.fromDisplay = '';
  }
  v(name: string): string | undefined {
    for (const [k, val] of this.vars) if (k === name) return val;
    return this.setVars.get(name);
  }
}

function nowUs(): number { return Date.now() * 1000 + Math.floor((performance.now() % 1) * 1000); }


const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => (n < 10 ? `0${n}` : String(n));
function dateLocal(d: Date): string { return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`; }
function dateGmt(d: Date): string { return `${DAYS[d.getUTCDay()]}, ${p2(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} GMT`; }

/** A rendered event: headers + optional body; serialized lazily per format. */
class SimEvent {
  private plainBuf?: string;
  private jsonBuf?: string;
  constructor(readonly name: string, readonly headers: Header[], readonly body?: string) {}
  get(n: string): string | undefined { for (const [k, v] of this.headers) if (k === n) return v; return undefined; }
  plain(): string {
    if (this.plainBuf === undefined) {
      let s = '';
      for (const [k, v] of this.headers) s += k + ': ' + urlEncode(v) + '\n';
      if (this.body !== undefined) s += `Content-Length: ${Buffer.byteLength(this.body)}\n\n${this.body}`;
      else s += '\n';
      this.plainBuf = `Content-Length: ${Buffer.byteLength(s)}\nContent-Type: text/event-plain\n\n${s}`;
    }
    return this.plainBuf;
  }
  json(): string {
    if (this.jsonBuf === undefined) {
      const parts: string[] = [];
      for (const [k, v] of this.headers) parts.push(JSON.stringify(k) + ':' + JSON.stringify(v));
      if (this.body !== undefined) { parts.push('"Content-Length":' + JSON.stringify(String(Buffer.byteLength(this.body)))); parts.push('"_body":' + JSON.stringify(this.body)); }
      const s = '{' + parts.join(',') + '}';
      this.jsonBuf = `Content-Length: ${Buffer.byteLength(s)}\nContent-Type: text/event-json\n\n${s}`;
    }
    return this.jsonBuf;
  }
}

class Conn {
  authed = false;
  format: 'plain' | 'json' | null = null;
  events = new Set<string>();
  all = false;
  filters: Header[] = [];
  buf = '';
  closed = false;
  queue: Promise<void> = Promise.resolve();
  // outbound mode
  outboundCh?: Channel;
  myevents = false;
  linger = false;
  connected?: boolean;
  constructor(readonly sock: net.Socket) {}
  write(s: string): void { if (!this.closed && !this.sock.destroyed) this.sock.write(s); }
  wants(ev: SimEvent): boolean {
    if (this.outboundCh) {
      if (!this.myevents) return false;
      return ev.get('Unique-ID') === this.outboundCh.uuid && ev.name !== 'CHANNEL_DESTROY';
    }
    if (!this.format) return false;
    if (!this.all && !this.events.has(ev.name)) return false;
    if (this.filters.length) {
      let ok = false;
      for (const [k, v] of this.filters) if (ev.get(k) === v) { ok = true; break; }
      if (!ok) return false;
    }
    return true;
  }
}

export class FreeSwitchSimulator {
  readonly received: string[] = [];
  /** Every message received on any socket (inbound and outbound), whole: headers and body. */
  readonly receivedRaw: string[] = [];
  private server?: net.Server;
  private conns = new Set<Conn>();
  private chans = new Map<string, Channel>();
  private phones = new Map<string, PhoneBehaviour>();
  private invites = new Map<string, SeenInvite[]>();
  private callerMessages = new Map<string, SeenByCaller[]>();
  private originates = new Map<string, number>();
  private originateTotal = 0;
  private seq = 1000;
  private sessionsSinceStartup = 0;
  private readonly password: string;
  private readonly host: string;
  private readonly port: number;
  private readonly scale: number;
  private readonly startedAt = Date.now();
  /** mod_hash: `hash insert|select|delete/<realm>/<key>[/<value>]`. */
  private readonly hashes = new Map<string, string>();
  /** This switch's identity, as every event's Core-UUID and `global_getvar core_uuid` give it. */
  readonly coreUuid = randomUUID();
  private stopping = false;

  constructor(opts: SimulatorOptions = {}) {
    this.password = opts.password ?? 'ClueCon';
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port ?? 0;
    this.scale = opts.timeScale ?? 1;
    templates();
  }

  // ---------------------------------------------------------------- public API
  start(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const srv = net.createServer((sock) => this.accept(sock));
      this.server = srv;
      srv.once('error', reject);
      srv.listen(this.port, this.host, () => {
        const a = srv.address() as net.AddressInfo;
        resolve({ host: this.host, port: a.port });
      });
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const ch of this.chans.values()) for (const t of ch.timers) clearTimeout(t);
    this.chans.clear();
    for (const c of this.conns) { c.closed = true; c.sock.destroy(); }
    this.conns.clear();
    await this.closeServer();
  }

  setPhone(number: string, behaviour: PhoneBehaviour): void { this.phones.set(number, behaviour); }
  /**
   * Runs `hook` with each message a client sends (whole, as in receivedRaw) before the switch handles it, and
   * holds that connection's later messages until it resolves: a test acts at an exact point of the conversation
   * (e.g. just before an originate reaches the switch). The hook must not wait for anything sent on the same
   * connection. `undefined` removes it.
   */
  onCommand(hook: ((raw: string) => void | Promise<void>) | undefined): void { this.commandHook = hook; }
  private commandHook: ((raw: string) => void | Promise<void>) | undefined;
  invitesTo(number: string): SeenInvite[] { return [...(this.invites.get(number) ?? [])]; }
  /** What the phone `number` received while calling X (connectOutbound): responses to its INVITE, BYE. */
  seenByCaller(number: string): SeenByCaller[] { return [...(this.callerMessages.get(number) ?? [])]; }
  channels(): Array<{ uuid: string; number: string; state: string; answered: boolean }> {
    return [...this.chans.values()].filter((c) => !c.hungup).map((c) => ({ uuid: c.uuid, number: c.ep.number, state: c.answered ? 'CS_EXECUTE' : 'CS_CONSUME_MEDIA', answered: c.answered }));
  }
  originateCount(uuid?: string): number { return uuid === undefined ? this.originateTotal : this.originates.get(uuid) ?? 0; }
  dropConnections(): void { for (const c of this.conns) { c.closed = true; c.sock.destroy(); } this.conns.clear(); }

  async shutdown(): Promise<void> {
    const live = [...this.chans.values()].filter((c) => !c.hungup && c.role === 'A');
    await this.sleep(900);
    await Promise.all(live.map((c) => this.hangup(c, 'SYSTEM_SHUTDOWN', 'local', '15a')));
    await this.sleep(1200);
    for (const c of this.conns) {
      c.write(`Content-Type: text/disconnect-notice\nContent-Length: ${SHUTDOWN_NOTICE.length}\n\n${SHUTDOWN_NOTICE}`);
      c.closed = true; c.sock.end(); c.sock.destroy();
    }
    this.conns.clear();
    await this.closeServer();
  }

  floodEvents(count: number): void {
    const t = templates();
    const pool: TemplateEvent[] = [...t['04'].A, ...t['04'].B];
    for (let i = 0; i < count; i++) {
      const te = pool[i % pool.length]!;
      const headers: Header[] = te.h.map(([k, v]) => [k, k === 'Event-Sequence' ? String(++this.seq) : v]);
      this.deliver(new SimEvent(te.n, headers, te.body));
    }
  }

  connectOutbound(target: { host: string; port: number }, call: OutboundCall): Promise<string> {
    return this.outbound(target, call);
  }

  // ---------------------------------------------------------------- plumbing
  private closeServer(): Promise<void> {
    return new Promise((resolve) => { if (!this.server || !this.server.listening) { resolve(); return; } this.server.close(() => resolve()); });
  }
  private now(): number { return this.dueUs ?? nowUs(); }
  private sleep(ms: number): Promise<void> { const t = ms * this.scale; return new Promise((r) => (t < 1 ? setImmediate(r) : setTimeout(r, t))); }
  /**
   * Inside a timer's callback the clock reads the time the timer was due, not the time it fired: a phone scripted to hang
   * up 2 s after answering gives billsec 2 however late a loaded host runs the timer (time is scaled, so lag is magnified).
   */
  private dueUs: number | undefined;
  private timer(ch: Channel, ms: number, fn: () => void): void {
    const dueUs = this.now() + ms * this.scale * 1000;
    const t = setTimeout(() => {
      ch.timers = ch.timers.filter((x) => x !== t);
      this.dueUs = dueUs;
      try { fn(); } finally { this.dueUs = undefined; }
    }, ms * this.scale);
    ch.timers.push(t);
  }

  private accept(sock: net.Socket): void {
    const c = new Conn(sock);
    this.conns.add(c);
    sock.setNoDelay(true);
    sock.on('data', (d) => this.onData(c, d.toString('utf8')));
    sock.on('close', () => { c.closed = true; this.conns.delete(c); });
    sock.on('error', () => undefined);
    c.write('Content-Type: auth/request\n\n');
  }

  private onData(c: Conn, data: string): void {
    c.buf += data;
    for (;;) {
      const i = c.buf.indexOf('\n\n');
      if (i < 0) return;
      const head = c.buf.slice(0, i);
      const m = /(?:^|\n)Content-Length:\s*(\d+)/i.exec(head);
      let body = '';
      let len = i + 2;
      if (m) {
        const n = Number(m[1]);
        if (c.buf.length < i + 2 + n) return;
        body = c.buf.slice(i + 2, i + 2 + n);
        len = i + 2 + n;
      }
      c.buf = c.buf.slice(len);
      const lines = head.replace(/\r/g, '').split('\n');
      while (lines.length && lines[0] === '') lines.shift();
      if (!lines.length) continue;
      const cmd = lines[0]!;
      const hdrs: Header[] = [];
      for (const l of lines.slice(1)) { const k = l.indexOf(':'); if (k > 0) hdrs.push([l.slice(0, k).trim(), l.slice(k + 1).trim()]); }
      this.received.push(cmd);
      const raw = body ? `${head}\n\n${body}` : head;
      this.receivedRaw.push(raw);
      const hook = this.commandHook;
      c.queue = c.queue.then(async () => {
        if (hook) await hook(raw);
        return this.command(c, cmd, hdrs, body);
      }).catch(() => undefined);
    }
  }

  private reply(c: Conn, text: string, extra = ''): void { c.write(`Content-Type: command/reply\nReply-Text: ${text}\n${extra}\n`); }
  private apiReply(c: Conn, body: string): void { c.write(`Content-Type: api/response\nContent-Length: ${Buffer.byteLength(body)}\n\n${body}`); }
  private bye(c: Conn, extraHeaders = ''): void {
    this.reply(c, '+OK bye');
    c.write(`Content-Type: text/disconnect-notice\n${extraHeaders}Content-Length: ${GOODBYE.length}\n\n${GOODBYE}`);
    c.closed = true;
    c.sock.end();
    this.conns.delete(c);
  }

  private async command(c: Conn, cmd: string, hdrs: Header[], body: string): Promise<void> {
    if (c.closed) return;
    const sp = cmd.indexOf(' ');
    const verb = sp < 0 ? cmd : cmd.slice(0, sp);
    const rest = sp < 0 ? '' : cmd.slice(sp + 1);
    if (!c.authed && !c.outboundCh) {
      if (verb === 'auth') {
        if (rest.trim() === this.password) { c.authed = true; this.reply(c, '+OK accepted'); }
        else {
          this.reply(c, '-ERR invalid');
          c.write(`Content-Type: text/disconnect-notice\nContent-Length: ${GOODBYE.length}\n\n${GOODBYE}`);
          c.closed = true; c.sock.end(); this.conns.delete(c);
        }
      } else if (verb === 'exit') this.bye(c);
      else this.reply(c, '-ERR command not found');
      return;
    }
    switch (verb) {
      case 'exit': {
        const ch = c.outboundCh;
        this.bye(c, ch ? `Controlled-Session-UUID: ${ch.uuid}\nContent-Disposition: disconnect\n` : '');
        if (ch) this.releaseOutbound(ch);
        return;
      }
      case 'event': {
        const words = rest.split(/\s+/).filter(Boolean);
        let fmt: 'plain' | 'json' = 'plain';
        if (words[0] === 'plain' || words[0] === 'json' || words[0] === 'xml') fmt = words.shift() === 'json' ? 'json' : 'plain';
        c.format = fmt;
        for (const w of words) { if (w === 'ALL') c.all = true; else c.events.add(w); }
        this.reply(c, `+OK event listener enabled ${fmt}`);
        if (c.outboundCh) { c.myevents = true; this.scheduleSocketPark(c.outboundCh); }
        return;
      }
      case 'myevents':
        c.myevents = true; c.format = c.format ?? 'plain'; this.reply(c, '+OK Events Enabled');
        if (c.outboundCh) this.scheduleSocketPark(c.outboundCh);
        return;
      case 'linger': c.linger = true; this.reply(c, '+OK will linger'); return;
      case 'nolinger': c.linger = false; this.reply(c, '+OK will not linger'); return;
      case 'noevents': c.format = null; c.events.clear(); c.all = false; c.myevents = false; this.reply(c, '+OK no longer listening for events'); return;
      case 'nixevent': { for (const w of rest.split(/\s+/).filter(Boolean)) { c.events.delete(w); if (w === 'ALL') c.all = false; } this.reply(c, '+OK events nixed'); return; }
      case 'filter': {
        const w = rest.split(/\s+/);
        if (w[0] === 'delete') {
          const [, k, v] = w;
          c.filters = c.filters.filter(([fk, fv]) => !(fk === k && (v === undefined || fv === v)));
          this.reply(c, `+OK filter deleted. [${k}][${v ?? ''}]`);
        } else {
          const k = w[0] ?? ''; const v = w.slice(1).join(' ');
          c.filters.push([k, v]);
          this.reply(c, `+OK filter added. [${k}]=[${v}]`);
        }
        return;
      }
      case 'api': {
        const res = await this.api(rest, c);
        this.apiReply(c, res);
        return;
      }
      case 'bgapi': {
        const job = hdrs.find(([k]) => k.toLowerCase() === 'job-uuid')?.[1] ?? randomUUID();
        this.reply(c, `+OK Job-UUID: ${job}`, `Job-UUID: ${job}\n`);
        const i = rest.indexOf(' ');
        const name = i < 0 ? rest : rest.slice(0, i);
        const arg = i < 0 ? '' : rest.slice(i + 1);
        if (name === 'originate') { this.originate(arg, { id: job, conn: c, cmd: name, arg }); return; }
        void this.api(rest, c).then((out) => this.backgroundJob(job, name, arg, out));
        return;
      }
      case 'sendmsg': {
        const h = new Map(hdrs.map(([k, v]) => [k.toLowerCase(), v]));
        const uuid = rest.trim() || c.outboundCh?.uuid || '';
        const ch = this.chans.get(uuid);
        const cc = h.get('call-command');
        const race = ch && !ch.hungup && cc === 'execute' && h.get('execute-app-name') === 'bridge' ? ch.behaviour.byeRacing : undefined;
        if (race === 'bridge-before') this.phoneBye(ch!);
        if (!ch || ch.hungup) { this.reply(c, `-ERR invalid session id [${uuid}]`); return; }
        this.reply(c, '+OK');
        if (cc === 'execute') {
          const name = h.get('execute-app-name') ?? '';
          const arg = h.get('execute-app-arg') ?? (body || '');
          const appUuid = h.get('event-uuid') ?? randomUUID();
          const delay = ch.bridgeApp && ch.bridgeOk && !ch.hungup ? 220 : 20;
          this.timer(ch, delay, () => { ch.appQueue = ch.appQueue.then(() => this.runApp(ch, { name, arg, uuid: appUuid })); });
          // the app is queued on the channel; the BYE is handled first, and hangup drops what is queued
          if (race === 'bridge-accepted') this.phoneBye(ch);
        } else if (cc === 'hangup') {
          void this.hangup(ch, h.get('hangup-cause') ?? 'NORMAL_CLEARING', 'local');
        }
        return;
      }
      case 'connect': this.reply(c, '+OK'); return;
      default:
        this.reply(c, '-ERR command not found');
    }
  }

  // ---------------------------------------------------------------- api commands
  private statusText(): string {
    const up = Date.now() - this.startedAt;
    const s = Math.floor(up / 1000);
    const min = Math.floor(s / 60);
    const live = [...this.chans.values()].filter((c) => !c.hungup).length;
    return `UP 0 years, 0 days, 0 hours, ${min} minute${min === 1 ? '' : 's'}, ${s % 60} seconds, ${up % 1000} milliseconds, 0 microseconds\n` +
      'FreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit) is ready\n' +
      `${this.sessionsSinceStartup} session(s) since startup\n${live} session(s) - peak ${live}, last 5min ${live} \n` +
      '0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n1000 session(s) max\nmin idle cpu 0.00/97.33\nCurrent Stack Size/Max 240K/8192K\n';
  }

  private async api(line: string, c: Conn | null): Promise<string> {
    const i = line.indexOf(' ');
    const name = i < 0 ? line.trim() : line.slice(0, i);
    const arg = i < 0 ? '' : line.slice(i + 1).trim();
    const args = arg.split(/\s+/).filter(Boolean);
    switch (name) {
      case 'status': return this.statusText();
      case 'create_uuid': return randomUUID();
      case 'global_getvar': return args[0] === 'core_uuid' ? this.coreUuid : '';
      case 'uuid_exists': { const ch = this.chans.get(args[0] ?? ''); return ch && !ch.destroyed ? 'true' : 'false'; }
      case 'uuid_kill': {
        const ch = this.chans.get(args[0] ?? '');
        if (!ch || ch.hungup) return '-ERR No such channel!\n';
        const cause = args[1] ?? 'NORMAL_CLEARING';
        const delay = ch.answered ? 20 : 0;
        this.timer(ch, delay, () => void this.hangup(ch, cause, 'local'));
        return '+OK\n';
      }
      case 'sched_hangup': {
        const secs = Number((args[0] ?? '+0').replace('+', ''));
        const ch = this.chans.get(args[1] ?? '');
        if (!ch || ch.hungup) return '-ERR No such channel!\n';
        this.timer(ch, secs * 1000, () => void this.hangup(ch, args[2] ?? 'ALLOTTED_TIMEOUT', 'local'));
        return '+OK\n';
      }
      case 'uuid_setvar': {
        const ch = this.chans.get(args[0] ?? '');
        if (!ch || ch.hungup) return '-ERR No such channel!\n';
        ch.setVars.set(args[1] ?? '', args.slice(2).join(' '));
        return '+OK\n';
      }
      case 'hash': {
        const [op, realm, key, ...value] = arg.split('/');
        const k = `${realm}/${key}`;
        if (op === 'insert') { this.hashes.set(k, value.join('/')); return '+OK\n'; }
        if (op === 'select') return this.hashes.get(k) ?? '-ERR no reply\n';
        if (op === 'delete') return this.hashes.delete(k) ? '+OK\n' : '-ERR Not found\n';
        return '-ERR Usage: hash [insert|delete|select]/<realm>/<key>/<value>\n';
      }
      case 'uuid_getvar': {
        const ch = this.chans.get(args[0] ?? '');
        if (!ch || ch.hungup) return '-ERR No such channel!\n';
        const name = args[1] ?? '';
        // what the last bridge left on the channel (04: SUCCESS; 09b/10b/16a: the failure cause)
        if ((name === 'originate_disposition' || name === 'originate_failed_cause') && ch.bridgeFailCause) return ch.bridgeFailCause;
        if (name === 'originate_disposition' && ch.bridgeOk) return 'SUCCESS';
        return ch.v(name) ?? '_undef_';
      }
      case 'hupall': {
        const cause = args[0] ?? 'MANAGER_REQUEST';
        for (const ch of [...this.chans.values()]) if (!ch.hungup && ch.role === 'A') void this.hangup(ch, cause, 'local');
        return '+OK hangup all channels with cause ' + cause + '\n';
      }
      case 'show': return this.show(args);
      case 'fsctl': if (args[0] === 'shutdown') { void this.shutdown(); return '+OK\n'; } return '+OK\n';
      case 'originate': return new Promise((resolve) => this.originate(arg, { id: '', conn: c, api: resolve, cmd: 'originate', arg }));
      default: return `-ERR ${name} Command not found!\n`;
    }
  }

  private show(args: string[]): string {
    const what = args[0];
    const live = [...this.chans.values()].filter((c) => !c.hungup && Date.now() - c.createdUs / 1000 > 200 * this.scale);
    const hostname = 'fs-node-1';
    const row = (c: Channel) => ({
      uuid: c.uuid, direction: 'outbound', created: dateLocal(new Date(c.createdUs / 1000)), created_epoch: String(Math.floor(c.createdUs / 1e6)),
      name: c.ep.channelName, state: c.answered ? 'CS_EXECUTE' : 'CS_CONSUME_MEDIA', cid_name: c.callerName, cid_num: c.callerNum, ip_addr: '', dest: c.ep.number,
      application: c.apps[c.apps.length - 1]?.name ?? '', application_data: c.apps[c.apps.length - 1]?.arg ?? '', dialplan: '', context: 'default',
      read_codec: 'PCMU', read_rate: '8000', read_bit_rate: '64000', write_codec: 'PCMU', write_rate: '8000', write_bit_rate: '64000', secure: '', hostname,
      presence_id: '', presence_data: '', accountcode: '', callstate: c.answered ? 'ACTIVE' : 'RINGING', callee_name: c.calleeName, callee_num: c.calleeNum,
      callee_direction: c.bridgeOk ? 'SEND' : 'RECV', call_uuid: c.role === 'A' ? c.uuid : c.peer?.uuid ?? c.uuid, sent_callee_name: '', sent_callee_num: '',
      initial_cid_name: c.origName, initial_cid_num: c.origNum, initial_ip_addr: '', initial_dest: c.ep.number, initial_dialplan: '', initial_context: 'default',
    });
    let rows: unknown[];
    if (what === 'calls') {
      rows = live.filter((c) => c.role === 'A' && c.bridgeOk && c.peer && !c.peer.hungup).map((c) => {
        const b = c.peer!;
        return {
          uuid: c.uuid, direction: 'outbound', created: dateLocal(new Date(c.createdUs / 1000)), created_epoch: String(Math.floor(c.createdUs / 1e6)), name: c.ep.channelName,
          state: 'CS_EXECUTE', cid_name: c.callerName, cid_num: c.callerNum, ip_addr: '', dest: c.ep.number, presence_id: '', presence_data: '', accountcode: '',
          callstate: 'ACTIVE', callee_name: c.calleeName, callee_num: c.calleeNum, callee_direction: 'SEND', call_uuid: c.uuid, hostname,
          sent_callee_name: b.calleeName, sent_callee_num: b.calleeNum, b_uuid: b.uuid, b_direction: 'outbound', b_created: dateLocal(new Date(b.createdUs / 1000)),
          b_created_epoch: String(Math.floor(b.createdUs / 1e6)), b_name: b.ep.channelName, b_state: 'CS_EXCHANGE_MEDIA', b_cid_name: b.callerName, b_cid_num: b.callerNum,
          b_ip_addr: SIP_HOST, b_dest: b.ep.number, b_presence_id: '', b_presence_data: '', b_accountcode: '', b_callstate: 'ACTIVE', b_callee_name: b.calleeName,
          b_callee_num: b.calleeNum, b_callee_direction: 'SEND', b_sent_callee_name: b.calleeName, b_sent_callee_num: b.callerNum, call_created_epoch: String(Math.floor(c.bridgedUs / 1e6)),
        };
      });
    } else if (what === 'channels') rows = live.map(row);
    else return `-ERR Unknown show ${what}\n`;
    if (!rows.length) return '{"row_count": 0}\n';
    return JSON.stringify({ row_count: rows.length, rows });
  }

  private backgroundJob(job: string, cmd: string, arg: string, out: string): void {
    const d = new Date();
    const headers: Header[] = [
      ['Event-Name', 'BACKGROUND_JOB'], ['Core-UUID', this.coreUuid], ['FreeSWITCH-Hostname', 'fs-node-1'], ['FreeSWITCH-Switchname', 'fs-node-1'],
      ['FreeSWITCH-IPv4', '127.0.0.1'], ['FreeSWITCH-IPv6', '::1'], ['Event-Date-Local', dateLocal(d)], ['Event-Date-GMT', dateGmt(d)],
      ['Event-Date-Timestamp', String(nowUs())], ['Event-Calling-File', 'mod_event_socket.c'], ['Event-Calling-Function', 'api_exec'],
      ['Event-Calling-Line-Number', '1572'], ['Event-Sequence', String(++this.seq)], ['Job-UUID', job], ['Job-Command', cmd],
    ];
    if (arg) headers.push(['Job-Command-Arg', arg]);
    this.deliver(new SimEvent('BACKGROUND_JOB', headers, out));
  }

  private deliver(ev: SimEvent): void {
    for (const c of this.conns) {
      if (c.closed || !c.wants(ev)) continue;
      c.write(c.format === 'json' ? ev.json() : ev.plain());
    }
  }

  // ---------------------------------------------------------------- event rendering
  private emit(ch: Channel, name: string, app?: AppRun & { response?: string }, extra?: Header[]): void {
    if (name === 'CHANNEL_HANGUP_COMPLETE') this.reportingHook(ch);
    const leg = ch.role;
    const appName = name === 'CHANNEL_EXECUTE' || name === 'CHANNEL_EXECUTE_COMPLETE' ? app?.name : undefined;
    let found = findTemplate(ch.tpl, leg, name, appName, ch.cursor);
    if (!found && appName) {
      for (const f of APP_TEMPLATE_FILES) { found = findTemplate(f, leg, name, appName, -1); if (found) { found = { ev: found.ev, idx: ch.cursor }; break; } }
      if (!found) found = findTemplate('05', leg, name, 'set', -1);
      if (found) found = { ev: found.ev, idx: ch.cursor };
    }
    if (!found) found = findTemplate(leg === 'A' ? '09b' : '04', leg, name, undefined, -1) ?? findTemplate('05', 'A', name, undefined, -1);
    if (!found) return;
    if (found.idx > ch.cursor) ch.cursor = found.idx;
    const ev = this.render(ch, found.ev, app, extra);
    this.deliver(ev);
  }

  private render(ch: Channel, te: TemplateEvent, app?: AppRun & { response?: string }, extra?: Header[]): SimEvent {
    const tf = templates()[ch.tpl];
    const tA = tf.uA; const tB = tf.uB ?? '\u0000';
    const a = ch.role === 'A' ? ch : ch.peer; const b = ch.role === 'B' ? ch : ch.peer;
    const subUuid = (v: string) => {
      if (v.includes(tA) && a) v = v.split(tA).join(a.uuid);
      if (v.includes(tB) && b) v = v.split(tB).join(b.uuid);
      return v;
    };
    const d = new Date();
    const out: Header[] = [];
    let origDone = false;
    const other: Snapshot | undefined = ch.otherSnap ?? (ch.peer ? snap(ch.peer) : undefined);
    const nameFor = (h: string): string => {
      switch (h) {
        case 'Caller-Caller-ID-Name': return ch.callerName;
        case 'Caller-Orig-Caller-ID-Name': return ch.origName;
        case 'Caller-Callee-ID-Name': return ch.calleeName;
        case 'Other-Leg-Caller-ID-Name': return other?.callerName ?? '';
        case 'Other-Leg-Orig-Caller-ID-Name': return other?.origName ?? '';
        case 'Other-Leg-Callee-ID-Name': return other?.calleeName ?? '';
      }
      return '';
    };
    let pre = 'Caller-';
    const pushName = (h: string) => { const v = nameFor(h); if (v) out.push([pre === 'Caller-' ? h : pre + h.slice(7), v]); };
    for (const [name, tv] of te.h) {
      const alias = CHANNEL_PROFILE_ALIASES.has(name);
      pre = alias ? 'Channel-' : 'Caller-';
      const k = alias ? 'Caller-' + name.slice(8) : name;
      const push = (v: string) => out.push([name, v]);
      if (NAME_HEADERS.has(k)) continue;
      if (k.startsWith('variable_')) {
        const vn = k.slice(9);
        if (ORIG_KEYS.has(vn)) {
          if (!origDone) { origDone = true; for (const [ok, ov] of ch.vars) out.push(['variable_' + ok, ov]); }
          continue;
        }
        const val = this.varValue(ch, vn, tv, te);
        if (val === null) continue;
        out.push([k, val]);
        continue;
      }
      switch (k) {
        case 'Caller-Caller-ID-Number': pushName('Caller-Caller-ID-Name'); push(ch.callerNum); continue;
        case 'Caller-Orig-Caller-ID-Number': pushName('Caller-Orig-Caller-ID-Name'); push(ch.origNum); continue;
        case 'Caller-Callee-ID-Number': pushName('Caller-Callee-ID-Name'); push(ch.calleeNum); continue;
        case 'Other-Leg-Caller-ID-Number': pushName('Other-Leg-Caller-ID-Name'); push(other?.callerNum ?? tv); continue;
        case 'Other-Leg-Orig-Caller-ID-Number': pushName('Other-Leg-Orig-Caller-ID-Name'); push(other?.origNum ?? tv); continue;
        case 'Other-Leg-Callee-ID-Number': pushName('Other-Leg-Callee-ID-Name'); push(other?.calleeNum ?? tv); continue;
        case 'Event-Date-Local': push(dateLocal(d)); continue;
        case 'Event-Date-GMT': push(dateGmt(d)); continue;
        case 'Event-Date-Timestamp': push(String(nowUs())); continue;
        case 'Event-Sequence': push(String(++this.seq)); continue;
        case 'Channel-Name': case 'Caller-Channel-Name': push(ch.ep.channelName); continue;
        case 'Unique-ID': case 'Caller-Unique-ID': push(ch.uuid); continue;
        case 'Core-UUID': push(this.coreUuid); continue;
        case 'Channel-Call-UUID': push(ch.role === 'A' ? ch.uuid : ch.peer?.uuid ?? ch.uuid); continue;
        case 'Caller-ANI': push(ch.ani); continue;
        case 'Caller-Destination-Number': push(ch.ep.number); continue;
        case 'Caller-Profile-Created-Time': case 'Caller-Channel-Created-Time': push(String(ch.createdUs)); continue;
        case 'Caller-Channel-Answered-Time': push(String(ch.answeredUs)); continue;
        case 'Caller-Channel-Progress-Time': push(String(ch.progressUs)); continue;
        case 'Caller-Channel-Hangup-Time': push(String(ch.hangupUs)); continue;
        case 'Caller-Channel-Bridged-Time': push(String(ch.bridgedUs)); continue;
        case 'Hangup-Cause': push(ch.cause || tv); continue;
        case 'Other-Leg-Unique-ID': push(other?.uuid ?? subUuid(tv)); continue;
        case 'Other-Leg-Destination-Number': push(other?.number ?? tv); continue;
        case 'Other-Leg-Channel-Name': push(other?.channelName ?? tv); continue;
        case 'Other-Leg-ANI': push(other?.ani ?? tv); continue;
        case 'Bridge-A-Unique-ID': push(a?.uuid ?? tv); continue;
        case 'Bridge-B-Unique-ID': push(b?.uuid ?? tv); continue;
        case 'Application': push(app?.name ?? tv); if (app && app.arg) out.push(['Application-Data', app.arg]); continue;
        case 'Application-Data': if (!app) push(tv); continue;
        case 'Application-Response': push(app?.response ?? tv); continue;
        case 'Application-UUID': push(app?.uuid ?? tv); continue;
        case 'Record-File-Path': push(ch.recording ?? tv); continue;
        default: push(tv.includes('-') ? subUuid(tv) : tv);
      }
    }
    if (extra) out.push(...extra);
    return new SimEvent(te.n, out, te.body);
  }

  /** Value of a channel variable in an event; null = leave it out. */
  private varValue(ch: Channel, vn: string, tv: string, te: TemplateEvent): string | null {
    const tf = templates()[ch.tpl];
    const tplCause = te.h.find(([k]) => k === 'variable_hangup_cause')?.[1] ?? te.h.find(([k]) => k === 'Hangup-Cause')?.[1];
    const sameCause = tplCause === undefined || tplCause === ch.cause;
    const secs = (us: number) => String(Math.floor(us / 1e6));
    const sc = this.scale;
    const D = (us: number, unit: number) => String(Math.round(us / sc / unit));
    const endUs = ch.hangupUs || nowUs();
    const a = ch.role === 'A' ? ch : ch.peer;
    const b = ch.role === 'B' ? ch : ch.peer;
    switch (vn) {
      case 'uuid': return ch.uuid;
      case 'call_uuid': return ch.role === 'A' ? ch.uuid : ch.peer?.uuid ?? ch.uuid;
      case 'channel_name': return ch.ep.channelName;
      case 'sip_destination_url': return `sip:${ch.ep.number}@${ch.ep.hostPort}`;
      case 'sip_req_uri': case 'sip_to_uri': return `${ch.ep.number}@${ch.ep.hostPort}`;
      case 'sip_to_user': return ch.ep.number;
      case 'sip_full_to': return tv.replace(/sip:[^@]+@/, `sip:${ch.ep.number}@`);
      case 'sip_from_user': return this.inviteCid(ch).num;
      case 'sip_from_uri': return `${this.inviteCid(ch).num}@${SIP_HOST}`;
      case 'sip_from_display': { const n = this.inviteCid(ch).name; return n ? n : null; }
      case 'sip_full_from': { const c = this.inviteCid(ch); return `${c.name ? `"${c.name}" ` : ''}<sip:${c.num}@${SIP_HOST}>` + (tv.match(/;tag=.*$/)?.[0] ?? ''); }
      case 'pre_transfer_caller_id_name': return ch.origName || null;
      case 'pre_transfer_caller_id_number': return ch.origNum;
      case 'caller_id': return `"${ch.callerName}" <${ch.callerNum}>`;
      case 'current_application': return ch.curApp?.name ?? tv;
      case 'current_application_data': { const ap = ch.curApp; return ap ? (ap.arg || null) : tv; }
      case 'ringback': return ch.setVars.get('ringback') ?? null;
      case 'last_app': return ch.lastApp?.name ?? tv;
      case 'last_arg': return ch.lastApp ? ch.lastApp.arg : tv;
      case 'hangup_cause': return ch.cause || tv;
      case 'hangup_cause_q850': return sameCause ? tv : Q850[ch.cause] ?? tv;
      case 'sip_hangup_disposition': return ch.disposition || tv;
      case 'originate_disposition': case 'originate_failed_cause': case 'last_bridge_hangup_cause':
        if (vn === 'last_bridge_hangup_cause' && ch.role === 'A' && ch.bridgeRefused) return null;
        if (ch.role === 'A' && ch.bridgeFailCause) return ch.bridgeFailCause;
        if (vn === 'last_bridge_hangup_cause' && ch.role === 'B' && a) return a.cause || tv;
        if (vn === 'last_bridge_hangup_cause' && ch.role === 'A' && b) return b.cause || tv;
        return tv;
      case 'DIALSTATUS': if (ch.role === 'A' && ch.bridgeFailCause) return DIALSTATUS[ch.bridgeFailCause] ?? ch.bridgeFailCause; return tv;
      case 'originate_causes': return ch.bridgeFailCause && b ? `${b.uuid};${ch.bridgeFailCause}` : subUuidStr(tv, tf.uA, tf.uB, a, b);
      case 'bridge_hangup_cause': return (ch.role === 'A' ? b?.cause : a?.cause) || tv;
      case 'duration': return D(endUs - ch.createdUs, 1e6);
      case 'mduration': return D(endUs - ch.createdUs, 1e3);
      case 'uduration': return D(endUs - ch.createdUs, 1);
      case 'billsec': return ch.answeredUs ? D(endUs - ch.answeredUs, 1e6) : '0';
      case 'billmsec': return ch.answeredUs ? D(endUs - ch.answeredUs, 1e3) : '0';
      case 'billusec': return ch.answeredUs ? D(endUs - ch.answeredUs, 1) : '0';
      case 'answersec': case 'waitsec': return ch.answeredUs ? D(ch.answeredUs - ch.createdUs, 1e6) : '0';
      case 'answermsec': case 'waitmsec': return ch.answeredUs ? D(ch.answeredUs - ch.createdUs, 1e3) : '0';
      case 'answerusec': case 'waitusec': return ch.answeredUs ? D(ch.answeredUs - ch.createdUs, 1) : '0';
      case 'start_epoch': case 'profile_start_epoch': return secs(ch.createdUs);
      case 'start_uepoch': case 'profile_start_uepoch': return String(ch.createdUs);
      case 'answer_epoch': return secs(ch.answeredUs);
      case 'answer_uepoch': return String(ch.answeredUs);
      case 'bridge_epoch': return secs(ch.bridgedUs);
      case 'bridge_uepoch': return String(ch.bridgedUs);
      case 'progress_epoch': return secs(ch.progressUs);
      case 'progress_uepoch': return String(ch.progressUs);
      case 'end_epoch': return secs(endUs);
      case 'end_uepoch': return String(endUs);
      case 'record_seconds': return ch.recStartUs ? D(endUs - ch.recStartUs, 1e6) : tv;
      case 'record_ms': return ch.recStartUs ? D(endUs - ch.recStartUs, 1e3) : tv;
      case 'record_samples': return ch.recStartUs ? D(endUs - ch.recStartUs, 125) : tv;
    }
    if (ch.setVars.has(vn)) return ch.setVars.get(vn)!;
    return tv.length > 30 && tv.includes('-') ? subUuidStr(tv, tf.uA, tf.uB, a, b) : tv.length === 36 ? subUuidStr(tv, tf.uA, tf.uB, a, b) : tv;
  }

  /** Caller id sent in the INVITE / visible in sip_from_* of this leg. */
  private inviteCid(ch: Channel): { name: string; num: string } { return { name: ch.fromDisplay, num: ch.fromUser }; }

  // ---------------------------------------------------------------- call flows
  private behaviourOf(num: string): PhoneBehaviour { return this.phones.get(num) ?? { answer: 'answer' }; }

  private recordInvite(ch: Channel): void {
    const pid = ch.v('sip_cid_type') === 'pid';
    const name = ch.fromDisplay;
    const uri = `<sip:${ch.fromUser}@${SIP_HOST}>`;
    const ident = (name ? `"${name}" ` : '') + uri;
    const inv: SeenInvite = {
      uuid: ch.uuid, number: ch.ep.number, fromDisplay: name || null, fromUser: ch.fromUser,
      remotePartyId: pid ? null : `${ident};party=calling;screen=yes;privacy=off`, pAssertedIdentity: pid ? ident : null, at: Date.now(),
    };
    const list = this.invites.get(ch.ep.number) ?? [];
    list.push(inv);
    this.invites.set(ch.ep.number, list);
  }

  /** `originate {vars}endpoint &app(arg)` (api or bgapi). */
  private originate(arg: string, job: NonNullable<Channel['job']>): void {
    const { vars, rest } = parseVarBlock(arg);
    const m = /^(\S+)\s+(.*)$/.exec(rest.trim());
    const endpoint = m ? m[1]! : rest.trim();
    let appStr = m ? m[2]!.trim() : 'park';
    let appName = 'park'; let appArg = '';
    if (appStr.startsWith('&')) {
      appStr = appStr.slice(1);
      const p = appStr.indexOf('(');
      if (p >= 0) { appName = appStr.slice(0, p); appArg = appStr.slice(p + 1, appStr.lastIndexOf(')')); } else { appName = appStr; }
    }
    const ep = parseEndpoint(endpoint);
    const uuid = vars.find(([k]) => k === 'origination_uuid')?.[1] ?? randomUUID();
    this.originateTotal++;
    this.originates.set(uuid, (this.originates.get(uuid) ?? 0) + 1);
    const beh = this.behaviourOf(ep.number);
    const ch = new Channel('A', uuid, ep, vars, beh, appName === 'bridge' ? '04' : '03');
    const vmap = new Map(vars);
    ch.callerNum = vmap.get('origination_caller_id_number') ?? '0000000000';
    ch.callerName = vmap.get('origination_caller_id_name') ?? '';
    ch.origNum = ch.callerNum; ch.origName = ch.callerName; ch.ani = ch.callerNum;
    ch.fromDisplay = ch.callerName; ch.fromUser = ch.callerNum;
    if (vmap.has('origination_callee_id_name')) ch.calleeName = vmap.get('origination_callee_id_name')!;
    if (vmap.has('origination_callee_id_number')) ch.calleeNum = vmap.get('origination_callee_id_number')!;
    ch.job = job;
    this.chans.set(uuid, ch);
    this.sessionsSinceStartup++;
    const firstApp: AppRun = { name: appName, arg: appArg, uuid: randomUUID() };
    setImmediate(() => void this.runA(ch, firstApp));
  }

  private finishJob(ch: Channel, out: string): void {
    const j = ch.job;
    if (!j) return;
    ch.job = undefined;
    if (j.api) j.api(out);
    else this.backgroundJob(j.id, j.cmd, j.arg, out);
  }

  private async runA(ch: Channel, firstApp: AppRun): Promise<void> {
    const beh = ch.behaviour;
    const mode = beh.answer ?? 'answer';
    const refused = refusedCause(ch.ep, beh);
    if (refused) {
      // no channel was created: no events, only the job's result (16a: the same for a bridge)
      ch.hungup = true; ch.destroyed = true; this.chans.delete(ch.uuid);
      this.finishJob(ch, `-ERR ${refused}\n`);
      return;
    }
    this.emit(ch, 'CHANNEL_CREATE');
    if (mode === 'unreachable') { ch.tpl = '06'; await this.failOriginate(ch, 'NO_ROUTE_DESTINATION', 'recv_refuse', 0); return; }
    await this.sleep(20);
    if (ch.hungup) return;
    this.recordInvite(ch);
    if (mode === 'busy' || mode === 'decline') {
      ch.tpl = mode === 'busy' ? '06' : '08';
      await this.failOriginate(ch, mode === 'busy' ? 'USER_BUSY' : 'CALL_REJECTED', 'recv_refuse', 20);
      return;
    }
    ch.ringing = true; ch.progressUs = nowUs();
    this.emit(ch, 'CHANNEL_PROGRESS');
    const timeout = Number(ch.v('originate_timeout') ?? 60) * 1000;
    if (mode === 'no-answer' || (beh.ringMs ?? 0) >= timeout) {
      this.timer(ch, timeout, () => {
        if (ch.hungup) return;
        ch.tpl = '07';
        void this.failOriginate(ch, 'NO_ANSWER', 'send_cancel', 0, true);
      });
      return;
    }
    if (beh.ringMs) { await this.sleep(beh.ringMs); if (ch.hungup) return; }
    this.answer(ch);
    await this.sleep(20);
    if (ch.hungup) return;
    if (beh.byeRacing === 'originate-reply-before') {
      // answered, so the originate succeeded; its reply comes after the hangup's events
      const job = ch.job; ch.job = undefined;
      await this.hangup(ch, 'NORMAL_CLEARING', 'remote');
      ch.job = job;
      this.finishJob(ch, `+OK ${ch.uuid}\n`);
      return;
    }
    this.finishJob(ch, `+OK ${ch.uuid}\n`);
    if (beh.byeRacing === 'originate-reply-after') { this.phoneBye(ch); return; }
    ch.appQueue = ch.appQueue.then(() => this.runApp(ch, firstApp, true));
  }

  private answer(ch: Channel): void {
    ch.answered = true; ch.ringing = false; ch.answeredUs = nowUs();
    this.emit(ch, 'CHANNEL_ANSWER');
    if (ch.inbound) this.toCaller(ch, '200 OK');
    if (ch.behaviour.hangupAfterMs !== undefined) {
      this.timer(ch, ch.behaviour.hangupAfterMs, () => void this.hangup(ch, 'NORMAL_CLEARING', 'remote'));
    }
  }

  private async failOriginate(ch: Channel, cause: string, disposition: string, destroyDelay: number, jobFirst = false): Promise<void> {
    ch.hungup = true; ch.cause = cause; ch.disposition = disposition; ch.hangupUs = this.now();
    for (const t of ch.timers) clearTimeout(t);
    this.emit(ch, 'CHANNEL_HANGUP');
    if (jobFirst) this.finishJob(ch, `-ERR ${cause}\n`);
    this.emit(ch, 'CHANNEL_HANGUP_COMPLETE');
    this.finishJob(ch, `-ERR ${cause}\n`);
    // A call to X refused before answer (trace 13c): the linger notice follows CHANNEL_HANGUP_COMPLETE.
    if (ch.inbound) this.outboundHungup(ch);
    if (destroyDelay) await this.sleep(destroyDelay);
    this.destroy(ch);
  }

  private destroy(ch: Channel): void {
    if (ch.destroyed) return;
    ch.destroyed = true;
    this.emit(ch, 'CHANNEL_DESTROY');
    this.chans.delete(ch.uuid);
  }

  /** Execute one dialplan app on an A leg. */
  private async runApp(ch: Channel, app: AppRun, isOriginateApp = false): Promise<void> {
    if (ch.hungup) return;
    if (ch.answered && !ch.flipped && ch.role === 'A' && !ch.inbound) {
      ch.flipped = true;
      const [n, nm] = [ch.callerNum, ch.callerName];
      ch.callerNum = ch.calleeNum; ch.callerName = ch.calleeName; ch.calleeNum = n; ch.calleeName = nm;
    }
    if (ch.inbound) {
      this.socketPark(ch);
      ch.tpl = socketTemplate(ch.tpl, app);
    } else {
      if (app.name === 'bridge' && !isOriginateApp && ch.tpl === '03') ch.tpl = ch.setVars.has('ringback') ? '05' : '09';
      if (app.name === 'bridge' && !isOriginateApp) { const t = refusedTemplate(app.arg, this.behaviourOf(parseEndpoint(parseVarBlock(app.arg).rest.trim()).number)); if (t) ch.tpl = t; }
      if (app.name === 'record_session') ch.tpl = '14';
      if (app.name === 'playback' || app.name === 'hangup') { if (!['09b', '10b', '10c', '16a', '16b'].includes(ch.tpl)) ch.tpl = '09b'; }
    }
    ch.apps.push(app);
    ch.curApp = app;
    this.emit(ch, 'CHANNEL_EXECUTE', app);
    const done = (response = '_none_') => {
      ch.apps = ch.apps.filter((x) => x !== app);
      ch.lastApp = app;
      if (!ch.hungup) this.emit(ch, 'CHANNEL_EXECUTE_COMPLETE', { ...app, response });
      if (ch.socketReleased && !ch.hungup) this.releaseOutbound(ch);
    };
    switch (app.name) {
      case 'park':
        ch.parkApp = app;
        this.emit(ch, 'CHANNEL_PARK');
        return; // completes at hangup
      case 'set': case 'export': {
        const i = app.arg.indexOf('=');
        if (i > 0) ch.setVars.set(app.arg.slice(0, i), app.arg.slice(i + 1));
        done(); return;
      }
      case 'answer':
        if (!ch.answered) { this.emit(ch, 'CHANNEL_PROGRESS_MEDIA'); this.answer(ch); }
        done(); return;
      case 'pre_answer':
        this.emit(ch, 'CHANNEL_PROGRESS_MEDIA');
        if (ch.inbound && !ch.answered) this.toCaller(ch, '183 Session Progress');
        done(); return;
      case 'ring_ready':
        this.emit(ch, 'CHANNEL_PROGRESS'); done(); return;
      case 'sleep':
        await this.sleep(Number(app.arg) || 0); done(); return;
      case 'playback': {
        await this.sleep(playbackMs(app.arg));
        done(ch.hungup ? 'FILE NOT PLAYED' : 'FILE PLAYED'); return;
      }
      case 'record_session': {
        ch.recording = app.arg; ch.recStartUs = nowUs();
        await this.sleep(20);
        if (ch.hungup) return;
        this.emit(ch, 'RECORD_START', undefined);
        done(); return;
      }
      case 'hangup':
        await this.hangup(ch, app.arg || 'NORMAL_CLEARING', 'local', undefined, app);
        return;
      case 'bridge':
        await this.bridge(ch, app, isOriginateApp);
        return;
      default:
        done(); return;
    }
  }

  private async bridge(a: Channel, app: AppRun, oneShot: boolean): Promise<void> {
    a.bridgeApp = app;
    const { vars, rest } = parseVarBlock(app.arg);
    const ep = parseEndpoint(rest.trim());
    const vmap = new Map(vars);
    const uuid = vmap.get('origination_uuid') ?? randomUUID();
    this.originateTotal++;
    this.originates.set(uuid, (this.originates.get(uuid) ?? 0) + 1);
    const refused = refusedCause(ep, this.behaviourOf(ep.number));
    if (refused) { await this.refusedBridge(a, app, ep, uuid, refused, oneShot); return; }
    const b = new Channel('B', uuid, ep, vars, this.behaviourOf(ep.number), a.inbound ? a.tpl : a.tpl === '04' ? '04' : '05');
    b.callerNum = vmap.get('origination_caller_id_number') ?? a.callerNum;
    b.callerName = vmap.get('origination_caller_id_name') ?? a.callerName;
    b.origNum = a.origNum; b.origName = a.origName;
    b.ani = a.ani; b.fromDisplay = b.callerName; b.fromUser = b.callerNum;
    b.otherSnap = snap(a);
    if (vmap.has('origination_callee_id_name')) b.calleeName = vmap.get('origination_callee_id_name')!;
    if (vmap.has('origination_callee_id_number')) b.calleeNum = vmap.get('origination_callee_id_number')!;
    b.peer = a; a.peer = b;
    this.chans.set(uuid, b);
    this.sessionsSinceStartup++;
    if (!oneShot) await this.sleep(20);
    if (a.hungup) return;
    this.emit(b, 'CHANNEL_CREATE');
    const beh = b.behaviour;
    const mode = beh.answer ?? 'answer';
    if (mode !== 'unreachable') this.recordInvite(b);
    if (a.behaviour.byeRacing === 'bridge-started') { this.phoneBye(a); return; }
    const cof = a.v('continue_on_fail') === 'true';
    const failB = async (cause: string, disp: string, tpl: TemplateKey) => {
      b.tpl = tpl; a.tpl = tpl === '09' ? (cof ? '09b' : '09') : tpl;
      if (tpl === '10' && cof) a.tpl = '10b';
      b.hungup = true; b.cause = cause; b.disposition = disp; b.hangupUs = this.now();
      for (const t of b.timers) clearTimeout(t);
      this.emit(b, 'CHANNEL_HANGUP');
      this.emit(b, 'CHANNEL_HANGUP_COMPLETE');
      await this.sleep(20);
      this.destroy(b);
      a.bridgeFailCause = cause;
      a.bridgeApp = undefined;
      if (a.hungup) return;
      if (cof) {
        a.apps = a.apps.filter((x) => x !== app); a.lastApp = app;
        this.emit(a, 'CHANNEL_EXECUTE_COMPLETE', { ...app, response: '_none_' });
        if (oneShot) await this.hangup(a, 'NORMAL_CLEARING', 'local');
        else if (a.behaviour.byeRacing === 'bridge-failed') this.phoneBye(a);
      } else {
        await this.hangup(a, cause, 'local', undefined, undefined, true);
      }
    };
    if (mode === 'unreachable') { await failB('NO_ROUTE_DESTINATION', 'recv_refuse', '09'); return; }
    await this.sleep(oneShot ? 0 : 0);
    if (mode === 'busy' || mode === 'decline') { await failB(mode === 'busy' ? 'USER_BUSY' : 'CALL_REJECTED', 'recv_refuse', '09'); return; }
    b.ringing = true; b.progressUs = nowUs();
    this.emit(b, 'CHANNEL_PROGRESS');
    a.calleeName = b.calleeName; a.calleeNum = b.calleeNum;
    // a call to X: FreeSWITCH relays B's 180 to the caller (13a: A's CHANNEL_PROGRESS)
    if (a.inbound && !a.answered && !a.ringing) { a.ringing = true; a.progressUs = nowUs(); this.emit(a, 'CHANNEL_PROGRESS'); this.toCaller(a, '180 Ringing'); }
    const leg = vmap.get('leg_timeout'); const ot = vmap.get('originate_timeout');
    const timeoutMs = (leg ? Number(leg) : ot ? Number(ot) : 60) * 1000;
    const timeoutCause = leg ? 'ALLOTTED_TIMEOUT' : 'NO_ANSWER';
    const ring = mode === 'no-answer' ? Infinity : beh.ringMs ?? 0;
    if (ring >= timeoutMs) {
      await new Promise<void>((r) => this.timer(b, timeoutMs, r));
      if (a.hungup || b.hungup) return;
      await failB(timeoutCause, 'send_cancel', timeoutCause === 'ALLOTTED_TIMEOUT' ? '10' : '10c');
      return;
    }
    if (ring) { await new Promise<void>((r) => this.timer(b, ring, r)); if (a.hungup || b.hungup) return; }
    if (a.behaviour.byeRacing === 'b-answer-before') { this.phoneBye(a); return; }
    this.answer(b);
    // ... and B's 200 OK: the caller's leg is answered now (13a: PROGRESS_MEDIA, ANSWER, then BRIDGE)
    if (a.inbound && !a.answered) { this.emit(a, 'CHANNEL_PROGRESS_MEDIA'); this.answer(a); }
    a.bridgeOk = true; a.bridgedUs = b.bridgedUs = nowUs();
    if (a.tpl === '09') a.tpl = '05';
    this.emit(a, 'CHANNEL_BRIDGE');
    if (a.behaviour.byeRacing === 'b-answer-after') this.phoneBye(a);
    // the bridge ends through hangup() of either leg
  }

  /**
   * Hang up a leg. by = 'remote' (the phone sent BYE) or 'local' (FreeSWITCH hangs up: uuid_kill,
   * sched_hangup, hangup app, bridge consequences, shutdown).
   */
  private async hangup(ch: Channel, cause: string, by: 'remote' | 'local', tpl?: TemplateKey, hangupApp?: AppRun, afterFailedBridge = false): Promise<void> {
    if (ch.hungup) return;
    if (ch.role === 'B') return this.hangupB(ch, cause, by);
    const a = ch;
    if (!a.answered && !a.inbound) {
      // cancel while ringing (11/11b)
      a.tpl = cause === 'ORIGINATOR_CANCEL' ? '11b' : '11';
      await this.failOriginate(a, cause, 'send_cancel', 0);
      return;
    }
    const b = a.peer && !a.peer.hungup && a.bridgeApp ? a.peer : undefined;
    if (tpl) a.tpl = tpl;
    else if (a.inbound) { /* a call to X keeps the outbound-socket recording chosen by its apps */ }
    else if (b && a.bridgeOk && by === 'local' && !hangupApp) { a.tpl = '12'; b.tpl = '12'; }
    else if (b && a.bridgeOk && by === 'remote') { a.tpl = '05'; b.tpl = '05'; }
    else if (!afterFailedBridge && !b && !a.bridgeFailCause && !hangupApp && a.tpl !== '14') a.tpl = a.parkApp ? '03' : a.tpl;
    if (a.tpl === '10c' && afterFailedBridge) a.tpl = '10';
    a.hungup = true; a.cause = cause; a.hangupUs = this.now();
    a.disposition = by === 'remote' ? 'recv_bye' : 'send_bye';
    // a call to X refused before answer gets a final error response (13c: 404), not a BYE
    if (a.inbound && !a.answered) a.disposition = by === 'remote' ? 'recv_cancel' : 'send_refuse';
    if (a.inbound) {
      // 13b: BYE with the cause; 13c (not answered): a final error response; 13a: 200 OK to the caller's BYE
      if (by === 'local') this.toCaller(a, a.answered ? 'BYE' : FAILURE_STATUS[cause] ?? '480 Temporarily Unavailable', cause);
      else if (a.answered) this.toCaller(a, '200 OK', undefined, false);
    }
    for (const t of a.timers) clearTimeout(t);
    this.emit(a, 'CHANNEL_HANGUP');
    if (b && a.bridgeOk) {
      b.hungup = true; b.cause = 'NORMAL_CLEARING'; b.hangupUs = this.now(); b.disposition = 'send_bye';
      for (const t of b.timers) clearTimeout(t);
      this.emit(b, 'CHANNEL_HANGUP');
      if (by === 'local') this.emit(b, 'CHANNEL_HANGUP_COMPLETE');
      await this.sleep(by === 'local' ? 20 : 1);
      this.emit(a, 'CHANNEL_UNBRIDGE');
    } else if (b) {
      // B still ringing: cancel it (the bridge then fails with ORIGINATOR_CANCEL)
      a.bridgeFailCause = 'ORIGINATOR_CANCEL';
      b.hungup = true; b.cause = 'ORIGINATOR_CANCEL'; b.hangupUs = this.now(); b.disposition = 'send_cancel';
      for (const t of b.timers) clearTimeout(t);
      this.emit(b, 'CHANNEL_HANGUP');
      this.emit(b, 'CHANNEL_HANGUP_COMPLETE');
    }
    // running apps complete, innermost first
    for (const ap of [...a.apps].reverse()) {
      a.apps = a.apps.filter((x) => x !== ap);
      a.lastApp = ap;
      // the socket app parked the call; it unparks before the socket app itself completes (13a-13e)
      if (a.inbound && ap === a.parkApp) this.emit(a, 'CHANNEL_UNPARK');
      this.emit(a, 'CHANNEL_EXECUTE_COMPLETE', { ...ap, response: ap.name === 'playback' ? 'FILE NOT PLAYED' : '_none_' });
    }
    // CS_EXECUTE -> CS_HANGUP -> CS_REPORTING; only myevents (ALL) subscribers see these
    if (a.inbound) { this.emit(a, 'CHANNEL_STATE'); this.emit(a, 'CHANNEL_STATE'); }
    if (b) {
      if (a.bridgeOk && by === 'remote') this.emit(b, 'CHANNEL_HANGUP_COMPLETE');
      this.destroy(b);
    }
    if (a.recording) this.emit(a, 'RECORD_STOP');
    this.emit(a, 'CHANNEL_HANGUP_COMPLETE');
    this.finishJob(a, `-ERR ${cause}\n`);
    if (a.inbound) this.outboundHungup(a);
    // a lingering outbound socket holds the session: CHANNEL_DESTROY comes once it is released (13a observer)
    if (!a.inbound || !a.outConn || a.outConn.closed) this.destroy(a);
  }

  /** The phone of an A leg sends BYE now. */
  private phoneBye(ch: Channel): void { void this.hangup(ch, 'NORMAL_CLEARING', 'remote'); }

  /**
   * A bridge whose B channel cannot be created (recordings 16a/16b): nothing reaches B's phone; with a sofia
   * endpoint the half-made session only shows CHANNEL_DESTROY; the bridge completes at once with the cause in
   * originate_disposition / originate_failed_cause / DIALSTATUS, and without continue_on_fail A is hung up with it.
   */
  private async refusedBridge(a: Channel, app: AppRun, ep: Endpoint, uuid: string, cause: string, oneShot: boolean): Promise<void> {
    if (!ep.channelName.startsWith('error/')) {
      // the session was never named nor attached to A (16b: Channel-Name N/A, its own Channel-Call-UUID)
      const b = new Channel('B', uuid, { ...ep, channelName: 'N/A' }, parseVarBlock(app.arg).vars, this.behaviourOf(ep.number), '16b');
      b.hungup = true;
      this.emit(b, 'CHANNEL_DESTROY');
      b.destroyed = true;
    }
    a.bridgeFailCause = cause; a.bridgeRefused = true; a.bridgeApp = undefined;
    if (a.hungup) return;
    if (a.v('continue_on_fail') === 'true') {
      a.apps = a.apps.filter((x) => x !== app); a.lastApp = app;
      this.emit(a, 'CHANNEL_EXECUTE_COMPLETE', { ...app, response: '_none_' });
      if (oneShot) await this.hangup(a, 'NORMAL_CLEARING', 'local');
      else if (a.behaviour.byeRacing === 'bridge-failed') this.phoneBye(a);
    } else {
      await this.hangup(a, cause, 'local', undefined, undefined, true);
    }
  }

  /** B leg hangs up (its phone sent BYE) while bridged. */
  private async hangupB(b: Channel, cause: string, by: 'remote' | 'local'): Promise<void> {
    const a = b.peer!;
    b.hungup = true; b.cause = cause; b.hangupUs = this.now(); b.disposition = by === 'remote' ? 'recv_bye' : 'send_bye';
    for (const t of b.timers) clearTimeout(t);
    if (a.tpl !== '14') { a.tpl = '04'; b.tpl = '04'; } else b.tpl = '14';
    this.emit(b, 'CHANNEL_HANGUP');
    this.emit(b, 'CHANNEL_HANGUP_COMPLETE');
    await this.sleep(20);
    if (a.hungup) { this.destroy(b); return; }
    this.emit(a, 'CHANNEL_UNBRIDGE');
    const app = a.bridgeApp;
    a.bridgeApp = undefined;
    const oneShot = !a.parkApp;
    if (a.v('hangup_after_bridge') === 'true' || oneShot) {
      a.hungup = true; a.cause = 'NORMAL_CLEARING'; a.hangupUs = this.now(); a.disposition = 'send_bye';
      for (const t of a.timers) clearTimeout(t);
      this.emit(a, 'CHANNEL_HANGUP');
      for (const ap of [...a.apps].reverse()) {
        a.apps = a.apps.filter((x) => x !== ap); a.lastApp = ap;
        this.emit(a, 'CHANNEL_EXECUTE_COMPLETE', { ...ap, response: '_none_' });
      }
      this.destroy(b);
      if (a.recording) this.emit(a, 'RECORD_STOP');
      this.emit(a, 'CHANNEL_HANGUP_COMPLETE');
      this.destroy(a);
      if (a.inbound) this.outboundHungup(a);
    } else if (app) {
      a.apps = a.apps.filter((x) => x !== app); a.lastApp = app;
      this.emit(a, 'CHANNEL_EXECUTE_COMPLETE', { ...app, response: '_none_' });
      this.destroy(b);
      if (a.socketReleased) this.releaseOutbound(a);
    }
  }

  // ---------------------------------------------------------------- outbound socket (basic)
  private async outbound(target: { host: string; port: number }, call: OutboundCall): Promise<string> {
    const uuid = randomUUID();
    const ep: Endpoint = { channelName: `sofia/external/${call.callerNumber}@${call.callerAddress ?? '127.0.0.1:5090'}`, number: call.destinationNumber, hostPort: '127.0.0.1:5080' };
    const ch = new Channel('A', uuid, ep, [], call.caller ?? { answer: 'answer' }, '13a');
    ch.inbound = true;
    ch.callerNum = call.callerNumber; ch.callerName = call.callerNumber; ch.origNum = call.callerNumber; ch.origName = call.callerNumber; ch.ani = call.callerNumber;
    ch.calleeName = ''; ch.calleeNum = '';
    ch.fromDisplay = call.callerNumber; ch.fromUser = call.callerNumber;
    this.chans.set(uuid, ch);
    this.sessionsSinceStartup++;
    this.toCaller(ch, '100 Trying', undefined, false);
    this.emit(ch, 'CHANNEL_CREATE');
    // the vanilla `public` context runs its outside_call extension first, then ours: socket (13x observers)
    this.dialplanApp(ch, { name: 'set', arg: 'outside_call=true', uuid: randomUUID() });
    this.dialplanApp(ch, { name: 'export', arg: `RFC2822_DATE=${rfc2822Date(new Date())}`, uuid: randomUUID() });
    ch.parkApp = { name: 'socket', arg: `${target.host}:${target.port} async full`, uuid: randomUUID() };
    ch.apps.push(ch.parkApp); ch.curApp = ch.parkApp;
    this.emit(ch, 'CHANNEL_EXECUTE', ch.parkApp);
    const sock = net.connect(target.port, target.host);
    sock.setNoDelay(true);
    const c = new Conn(sock);
    c.outboundCh = ch;
    c.authed = true;
    ch.outConn = c;
    this.conns.add(c);
    sock.on('data', (d) => this.onDataOutbound(c, d.toString('utf8')));
    sock.on('close', () => { c.closed = true; this.conns.delete(c); this.releaseOutbound(ch); });
    sock.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => { sock.once('connect', () => resolve()); sock.once('error', reject); });
    return uuid;
  }

  /**
   * Record a SIP message to the calling phone of a call to X. Responses carry the channel's callee id as
   * Remote-Party-ID (13a: B's real number unless the bridge set origination_callee_id_*, 13e); a call
   * answered by the switch itself shows the dialled number (13b/13c).
   */
  private toCaller(ch: Channel, message: string, cause?: string, withIdentity = message !== 'BYE'): void {
    const name = ch.calleeName || ch.ep.number; const num = ch.calleeNum || ch.ep.number;
    const seen: SeenByCaller = {
      uuid: ch.uuid, message, at: Date.now(),
      remotePartyId: withIdentity ? `"${name}" <sip:${num}@${SIP_HOST}>;party=calling;privacy=off;screen=no` : null,
      reason: cause ? sipReason(cause) : null,
    };
    const list = this.callerMessages.get(ch.callerNum) ?? [];
    list.push(seen);
    this.callerMessages.set(ch.callerNum, list);
  }

  /** A dialplan app that completes at once (set/export), as run before the `socket` app. */
  private dialplanApp(ch: Channel, app: AppRun): void {
    const i = app.arg.indexOf('=');
    ch.curApp = app;
    this.emit(ch, 'CHANNEL_EXECUTE', app);
    if (i > 0) ch.setVars.set(app.arg.slice(0, i), app.arg.slice(i + 1));
    ch.lastApp = app;
    this.emit(ch, 'CHANNEL_EXECUTE_COMPLETE', { ...app, response: '_none_' });
  }

  private onDataOutbound(c: Conn, data: string): void {
    const ch = c.outboundCh!;
    if (!c.connected) {
      // the first message must be `connect`
      const i = (c.buf + data).indexOf('\n\n');
      if (i >= 0 && (c.buf + data).startsWith('connect')) {
        c.connected = true;
        const rest = (c.buf + data).slice(i + 2);
        c.buf = '';
        this.received.push('connect');
        const data2 = this.render(ch, { n: 'CHANNEL_DATA', app: '', h: templates()[ch.tpl].connect ?? [['Event-Name', 'CHANNEL_DATA']] }, undefined);
        let s = '';
        for (const [k, v] of data2.headers) s += k + ': ' + urlEncode(v) + '\n';
        c.write(s + 'Content-Type: command/reply\nReply-Text: %2BOK%0A\nSocket-Mode: async\nControl: full\n\n');
        if (rest) this.onData(c, rest);
        return;
      }
      c.buf += data;
      return;
    }
    this.onData(c, data);
  }

  private outboundHungup(ch: Channel): void {
    const c = ch.outConn;
    if (!c || c.closed) return;
    if (c.linger) {
      c.write(`Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${ch.uuid}\nContent-Disposition: linger\nChannel-Name: ${ch.ep.channelName}\nLinger-Time: -1\nContent-Length: 0\n\n`);
    } else {
      c.write(`Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${ch.uuid}\nContent-Disposition: disconnect\nContent-Length: ${GOODBYE.length}\n\n${GOODBYE}`);
      c.closed = true; c.sock.end();
    }
  }

  /**
   * The controller's socket is gone. As FreeSWITCH does, an app the controller started (a bridge, ringing
   * or bridged; a playback) runs to its end, then the `socket` app returns and the dialplan, which has
   * nothing after it in the recordings' setup, ends the call (NORMAL_CLEARING); an idle call ends now.
   */
  private releaseOutbound(ch: Channel): void {
    if (ch.hungup) { this.destroy(ch); return; }
    if (ch.bridgeApp || ch.apps.some((x) => x !== ch.parkApp)) { ch.socketReleased = true; return; }
    void this.hangup(ch, 'NORMAL_CLEARING', 'local');
  }

  /** `api_reporting_hook`: the API command it names runs, its `${variables}` expanded, in the channel's reporting state. */
  private reportingHook(ch: Channel): void {
    const hook = ch.v('api_reporting_hook');
    if (!hook || ch.reported) return;
    ch.reported = true;
    const te: TemplateEvent = { n: 'CHANNEL_HANGUP_COMPLETE', app: '', h: [] };
    const expanded = hook.replace(/\$\{([A-Za-z0-9_]+)\}/g, (_m, name: string) => this.varValue(ch, name, '', te) ?? '');
    void this.api(expanded, null);
  }

  /**
   * The socket app parks the call once the controller is connected. In 13a-13e CHANNEL_PARK always
   * follows the controller's subscription (myevents) by ~20 ms; emitting it on a timer from `connect`
   * would lose it whenever `myevents` arrives later. An app sent before any subscription parks first.
   */
  private scheduleSocketPark(ch: Channel): void {
    if (ch.socketParked) return;
    this.timer(ch, 20, () => this.socketPark(ch));
  }

  private socketPark(ch: Channel): void {
    if (ch.socketParked || ch.hungup) return;
    ch.socketParked = true;
    this.emit(ch, 'CHANNEL_PARK');
  }
}

/** The cause with which the switch refuses to create a channel to `ep` (`error/<CAUSE>`, or a phone set to `refused`), or undefined. */
function refusedCause(ep: Endpoint, beh: PhoneBehaviour): string | undefined {
  if (ep.channelName.startsWith('error/')) return ep.channelName.slice(6) || 'USER_BUSY';
  if (beh.answer === 'refused') return beh.refuseCause ?? 'DESTINATION_OUT_OF_ORDER';
  return undefined;
}

/** The recording a bridge to a channel that cannot be created renders: 16a (error/ endpoint, no B event) or 16b (sofia). */
function refusedTemplate(arg: string, beh: PhoneBehaviour): TemplateKey | undefined {
  const ep = parseEndpoint(parseVarBlock(arg).rest.trim());
  if (!refusedCause(ep, beh)) return undefined;
  return ep.channelName.startsWith('error/') ? '16a' : '16b';
}

/** The outbound-socket recording whose events a call to X renders, chosen by what the controller runs. */
function socketTemplate(current: TemplateKey, app: AppRun): TemplateKey {
  if (app.name === 'answer') return '13b';
  if (app.name === 'pre_answer') return '13c';
  if (app.name === 'bridge') {
    const vars = new Map(parseVarBlock(app.arg).vars);
    if (vars.has('origination_callee_id_number') || vars.has('origination_callee_id_name')) return '13e';
    if (vars.has('origination_caller_id_name')) return '13d';
    return '13a';
  }
  return current;
}

function subUuidStr(v: string, tA: string, tB: string | undefined, a?: Channel, b?: Channel): string {
  if (a && v.includes(tA)) v = v.split(tA).join(a.uuid);
  if (b && tB && v.includes(tB)) v = v.split(tB).join(b.uuid);
  return v;
}

/** Duration of a playback: tone_stream://%(on,off,f1,f2);loops=N → (on+off)*N ms; files: 1 s. */
function playbackMs(arg: string): number {
  const m = /%\((\d+),(\d+)[^)]*\)(?:;loops=(\d+))?/.exec(arg);
  if (m) return (Number(m[1]) + Number(m[2])) * Number(m[3] ?? 1);
  return 1000;
}

/** Final response to an unanswered incoming call, by hangup cause (404 is recorded in 13c; the rest is sofia's mapping). */
const FAILURE_STATUS: Record<string, string> = {
  UNALLOCATED_NUMBER: '404 Not Found', NO_ROUTE_DESTINATION: '404 Not Found', USER_BUSY: '486 Busy Here', CALL_REJECTED: '603 Decline',
  NO_ANSWER: '480 Temporarily Unavailable', NO_USER_RESPONSE: '408 Request Timeout',
};
/** Reason header FreeSWITCH puts on a BYE/CANCEL/error response (10, 11b, 12, 15 use SIP causes; the rest Q.850). */
function sipReason(cause: string): string {
  const sip: Record<string, string> = { ALLOTTED_TIMEOUT: '802', ORIGINATOR_CANCEL: '487', SYSTEM_SHUTDOWN: '701' };
  if (sip[cause]) return `SIP;cause=${sip[cause]};text="${cause}"`;
  return `Q.850;cause=${Q850[cause] ?? '16'};text="${cause}"`;
}

/** strftime `%a, %d %b %Y %T %z` in local time, as the vanilla dialplan's RFC2822_DATE export. */
function rfc2822Date(d: Date): string {
  const off = -d.getTimezoneOffset();
  const abs = Math.abs(off);
  return `${DAYS[d.getDay()]}, ${p2(d.getDate())} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${off < 0 ? '-' : '+'}${p2(Math.floor(abs / 60))}${p2(abs % 60)}`;
}
