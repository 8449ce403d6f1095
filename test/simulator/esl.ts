/**
 * The Event Socket protocol side: the listening server, each connection's parser, the command replies (byte for
 * byte as in the traces), event subscriptions and filters, `api`/`bgapi` commands and their BACKGROUND_JOB.
 */
import * as net from 'net';
import { randomUUID } from 'crypto';
import { nowUs, SIP_HOST, type Channel } from './channel';
import type { SimContext } from './context';
import { dateGmt, dateLocal, Header, SimEvent } from './events';

export const GOODBYE = 'Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n';
const SHUTDOWN_NOTICE = 'The system is being shut down.\n';

/** One ESL connection: inbound (a client connected to the switch) or outbound (the switch connected to a controller). */
export class Conn {
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
      return ev.get('Unique-ID') === this.outboundCh.uuid && ev.name !== 'CHANNEL_DESTROY' && (this.all || this.events.has(ev.name));
    }
    if (!this.format) return false;
    if (!this.all && !this.events.has(ev.name)) return false;
    return this.filters.length === 0 || passesFilters(this.filters, ev);
  }
}

/** What `myevents` subscribes a connection to (mod_event_socket.c, 1.10.12). */
const MYEVENTS_TYPES = [
  'CHANNEL_ANSWER', 'CHANNEL_APPLICATION', 'CHANNEL_BRIDGE', 'CHANNEL_CREATE', 'CHANNEL_DATA', 'CHANNEL_DESTROY', 'CHANNEL_EXECUTE',
  'CHANNEL_EXECUTE_COMPLETE', 'CHANNEL_HANGUP', 'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_ORIGINATE', 'CHANNEL_UUID', 'CHANNEL_OUTGOING',
  'CHANNEL_PARK', 'CHANNEL_PROGRESS', 'CHANNEL_PROGRESS_MEDIA', 'CHANNEL_STATE', 'CHANNEL_UNBRIDGE', 'CHANNEL_UNPARK', 'DETECTED_SPEECH',
  'DTMF', 'NOTALK', 'TALK',
];

/**
 * mod_event_socket's event_handler: once a connection has filters, an event is sent only if a filter on a
 * header it carries admits it. In order: a positive filter (`value`, `+value`) that matches admits it (later
 * positive ones are then skipped); a negative one (`-value`) that matches drops it, whatever came before.
 * Values compare case-insensitively; `/regex/` (flags i, s) is a regular expression.
 */
export function passesFilters(filters: readonly Header[], ev: { get(name: string): string | undefined }): boolean {
  let send = false;
  for (const [name, raw] of filters) {
    const value = ev.get(name) ?? headerCaseless(ev, name);
    if (value === undefined) continue;
    let positive = true;
    let i = 0;
    for (; i < raw.length; i++) {
      if (raw[i] === '+') positive = true;
      else if (raw[i] === '-') positive = false;
      else if (raw[i] !== ' ') break;
    }
    if (send && positive) continue;
    const compareTo = raw.slice(i);
    const match = raw.startsWith('/') ? regexOf(compareTo)?.test(value) ?? false : value.toLowerCase() === compareTo.toLowerCase();
    if (!match) continue;
    if (!positive) return false;
    send = true;
  }
  return send;
}

function headerCaseless(ev: { get(name: string): string | undefined; headers?: Header[] }, name: string): string | undefined {
  const lower = name.toLowerCase();
  return ev.headers?.find(([k]) => k.toLowerCase() === lower)?.[1];
}

/** switch_regex_perform: `/expr/flags`; a missing closing `/` is an error there (no match). */
function regexOf(expression: string): RegExp | undefined {
  if (!expression.startsWith('/')) return new RegExp(expression);
  const end = expression.lastIndexOf('/');
  if (end <= 0) return undefined;
  const flags = expression.slice(end + 1);
  return new RegExp(expression.slice(1, end), (flags.includes('i') ? 'i' : '') + (flags.includes('s') ? 's' : ''));
}

export class EslProtocol {
  private server?: net.Server;
  constructor(private readonly sim: SimContext) {}

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const srv = net.createServer((sock) => this.accept(sock));
      this.server = srv;
      srv.once('error', reject);
      srv.listen(port, host, () => {
        const a = srv.address() as net.AddressInfo;
        resolve({ host, port: a.port });
      });
    });
  }

  /** `fsctl shutdown`: live A legs end with SYSTEM_SHUTDOWN, then every connection gets the shutdown notice. */
  async shutdown(): Promise<void> {
    const live = [...this.sim.chans.values()].filter((c) => !c.hungup && c.role === 'A');
    await this.sim.sleep(900);
    await Promise.all(live.map((c) => this.sim.calls.hangup(c, 'SYSTEM_SHUTDOWN', 'local', '15a')));
    await this.sim.sleep(1200);
    for (const c of this.sim.conns) {
      c.write(`Content-Type: text/disconnect-notice\nContent-Length: ${SHUTDOWN_NOTICE.length}\n\n${SHUTDOWN_NOTICE}`);
      c.closed = true; c.sock.end(); c.sock.destroy();
    }
    this.sim.conns.clear();
    await this.closeServer();
  }

  closeServer(): Promise<void> {
    return new Promise((resolve) => { if (!this.server || !this.server.listening) { resolve(); return; } this.server.close(() => resolve()); });
  }

  private accept(sock: net.Socket): void {
    const c = new Conn(sock);
    this.sim.conns.add(c);
    sock.setNoDelay(true);
    sock.on('data', (d) => this.onData(c, d.toString('utf8')));
    sock.on('close', () => { c.closed = true; this.sim.conns.delete(c); });
    sock.on('error', () => undefined);
    c.write('Content-Type: auth/request\n\n');
  }

  onData(c: Conn, data: string): void {
    c.buf += data;
    for (;;) {
      const i = c.buf.indexOf('\n\n');
      if (i < 0) return;
      const head = c.buf.slice(0, i);
      const m = /(?:^|\n)Content-Length:\s*(\d+)/i.exec(head);
      let body = '';
      let len = i + 2;
      if (m) {
        // Content-Length counts bytes (a sendevent body may be UTF-8 text).
        const n = Number(m[1]);
        const rest = Buffer.from(c.buf.slice(i + 2));
        if (rest.length < n) return;
        body = rest.subarray(0, n).toString('utf8');
        len = i + 2 + body.length;
      }
      c.buf = c.buf.slice(len);
      const lines = head.replace(/\r/g, '').split('\n');
      while (lines.length && lines[0] === '') lines.shift();
      if (!lines.length) continue;
      const cmd = lines[0]!;
      const hdrs: Header[] = [];
      for (const l of lines.slice(1)) { const k = l.indexOf(':'); if (k > 0) hdrs.push([l.slice(0, k).trim(), l.slice(k + 1).trim()]); }
      this.sim.received.push(cmd);
      const raw = body ? `${head}\n\n${body}` : head;
      this.sim.receivedRaw.push(raw);
      const hook = this.sim.commandHook;
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
    this.sim.conns.delete(c);
  }

  private async command(c: Conn, cmd: string, hdrs: Header[], body: string): Promise<void> {
    if (c.closed) return;
    const sp = cmd.indexOf(' ');
    const verb = sp < 0 ? cmd : cmd.slice(0, sp);
    const rest = sp < 0 ? '' : cmd.slice(sp + 1);
    if (!c.authed && !c.outboundCh) {
      if (verb === 'auth') {
        if (rest.trim() === this.sim.password) { c.authed = true; this.reply(c, '+OK accepted'); }
        else {
          this.reply(c, '-ERR invalid');
          c.write(`Content-Type: text/disconnect-notice\nContent-Length: ${GOODBYE.length}\n\n${GOODBYE}`);
          c.closed = true; c.sock.end(); this.sim.conns.delete(c);
        }
      } else if (verb === 'exit') this.bye(c);
      else this.reply(c, '-ERR command not found');
      return;
    }
    switch (verb) {
      case 'exit': {
        const ch = c.outboundCh;
        this.bye(c, ch ? `Controlled-Session-UUID: ${ch.uuid}\nContent-Disposition: disconnect\n` : '');
        if (ch) this.sim.outbound.releaseOutbound(ch);
        return;
      }
      case 'event': {
        const words = rest.split(/\s+/).filter(Boolean);
        let fmt: 'plain' | 'json' = 'plain';
        if (words[0] === 'plain' || words[0] === 'json' || words[0] === 'xml') fmt = words.shift() === 'json' ? 'json' : 'plain';
        c.format = fmt;
        for (const w of words) { if (w === 'ALL') c.all = true; else c.events.add(w); }
        this.reply(c, `+OK event listener enabled ${fmt}`);
        if (c.outboundCh) { c.myevents = true; this.sim.outbound.scheduleSocketPark(c.outboundCh); }
        return;
      }
      case 'myevents':
        c.myevents = true; c.format = c.format ?? 'plain'; this.reply(c, '+OK Events Enabled');
        // mod_event_socket subscribes the connection to these types of the channel's events (nixevent takes them back)
        for (const name of MYEVENTS_TYPES) c.events.add(name);
        if (c.outboundCh) this.sim.outbound.scheduleSocketPark(c.outboundCh);
        return;
      case 'linger': c.linger = true; this.reply(c, '+OK will linger'); return;
      case 'nolinger': c.linger = false; this.reply(c, '+OK will not linger'); return;
      case 'noevents': c.format = null; c.events.clear(); c.all = false; c.myevents = false; this.reply(c, '+OK no longer listening for events'); return;
      case 'nixevent': { for (const w of rest.split(/\s+/).filter(Boolean)) { c.events.delete(w); if (w === 'ALL') { c.all = false; c.events.clear(); } } this.reply(c, '+OK events nixed'); return; }
      case 'filter': {
        const w = rest.split(/\s+/);
        if (w[0] === 'delete') {
          const [, k, v] = w;
          c.filters = k?.toLowerCase() === 'all' ? [] : c.filters.filter(([fk, fv]) => !(fk === k && (v === undefined || fv === v)));
          this.reply(c, `+OK filter deleted. [${k}][${v ?? ''}]`);
        } else {
          const k = w[0] ?? ''; const v = w.slice(1).join(' ');
          c.filters.push([k, v]);
          this.reply(c, `+OK filter added. [${k}]=[${v}]`);
        }
        return;
      }
      case 'sendevent': this.reply(c, this.sim.messages.sendEvent(rest.trim(), hdrs, body)); return;
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
        if (name === 'originate') { this.sim.calls.originate(arg, { id: job, conn: c, cmd: name, arg }); return; }
        void this.api(rest, c).then((out) => this.backgroundJob(job, name, arg, out));
        return;
      }
      case 'sendmsg': {
        const h = new Map(hdrs.map(([k, v]) => [k.toLowerCase(), v]));
        const uuid = rest.trim() || c.outboundCh?.uuid || '';
        const ch = this.sim.chans.get(uuid);
        const cc = h.get('call-command');
        const race = ch && !ch.hungup && cc === 'execute' && h.get('execute-app-name') === 'bridge' ? ch.behaviour.byeRacing : undefined;
        if (race === 'bridge-before') this.sim.calls.phoneBye(ch!);
        if (!ch || ch.hungup) { this.reply(c, `-ERR invalid session id [${uuid}]`); return; }
        this.reply(c, '+OK');
        if (cc === 'execute') {
          const name = h.get('execute-app-name') ?? '';
          const arg = h.get('execute-app-arg') ?? (body || '');
          const appUuid = h.get('event-uuid') ?? randomUUID();
          const delay = ch.bridgeApp && ch.bridgeOk && !ch.hungup ? 220 : 20;
          this.sim.timer(ch, delay, () => { ch.appQueue = ch.appQueue.then(() => this.sim.calls.runApp(ch, { name, arg, uuid: appUuid })); });
          // the app is queued on the channel; the BYE is handled first, and hangup drops what is queued
          if (race === 'bridge-accepted') this.sim.calls.phoneBye(ch);
        } else if (cc === 'hangup') {
          void this.sim.calls.hangup(ch, h.get('hangup-cause') ?? 'NORMAL_CLEARING', 'local');
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
    const up = Date.now() - this.sim.startedAt;
    const s = Math.floor(up / 1000);
    const min = Math.floor(s / 60);
    const live = [...this.sim.chans.values()].filter((c) => !c.hungup).length;
    return `UP 0 years, 0 days, 0 hours, ${min} minute${min === 1 ? '' : 's'}, ${s % 60} seconds, ${up % 1000} milliseconds, 0 microseconds\n` +
      'FreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit) is ready\n' +
      `${this.sim.sessionsSinceStartup} session(s) since startup\n${live} session(s) - peak ${live}, last 5min ${live} \n` +
      '0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n1000 session(s) max\nmin idle cpu 0.00/97.33\nCurrent Stack Size/Max 240K/8192K\n';
  }

  async api(line: string, c: Conn | null): Promise<string> {
    const i = line.indexOf(' ');
    const name = i < 0 ? line.trim() : line.slice(0, i);
    const arg = i < 0 ? '' : line.slice(i + 1).trim();
    const args = arg.split(/\s+/).filter(Boolean);
    switch (name) {
      case 'status': return this.statusText();
      case 'create_uuid': return randomUUID();
      case 'global_getvar': return args[0] === 'core_uuid' ? this.sim.coreUuid : '';
      case 'uuid_exists': { const ch = this.sim.chans.get(args[0] ?? ''); return ch && !ch.destroyed ? 'true' : 'false'; }
      case 'uuid_kill': {
        const ch = this.sim.chans.get(args[0] ?? '');
        if (!ch || ch.hungup) return '-ERR No such channel!\n';
        const cause = args[1] ?? 'NORMAL_CLEARING';
        const delay = ch.answered ? 20 : 0;
        this.sim.timer(ch, delay, () => void this.sim.calls.hangup(ch, cause, 'local'));
        return '+OK\n';
      }
      case 'sched_hangup': {
        const secs = Number((args[0] ?? '+0').replace('+', ''));
        const ch = this.sim.chans.get(args[1] ?? '');
        if (!ch || ch.hungup) return '-ERR No such channel!\n';
        this.sim.timer(ch, secs * 1000, () => void this.sim.calls.hangup(ch, args[2] ?? 'ALLOTTED_TIMEOUT', 'local'));
        return '+OK\n';
      }
      case 'sched_broadcast': {
        // sched_broadcast [+]<secs> <uuid> <path> [aleg|bleg|both]: the playback is queued on the leg(s) when it fires.
        const secs = Number((args[0] ?? '+0').replace('+', ''));
        const ch = this.sim.chans.get(args[1] ?? '');
        const path = args[2] ?? '';
        const legs = args[3] ?? 'aleg';
        if (!ch || ch.hungup || !path) return '-ERR No such channel!\n';
        // Recording 19a: each leg plays it inside the bridge (which goes on), then reports its playback's
        // CHANNEL_EXECUTE_COMPLETE (FILE PLAYED; no Event-UUID of ours); the reply is `+OK Message scheduled`.
        this.sim.timer(ch, secs * 1000, () => {
          const targets = [...(legs === 'bleg' ? [] : [ch]), ...(legs !== 'aleg' && ch.peer ? [ch.peer] : [])];
          for (const t of targets) {
            if (t.hungup) continue;
            this.sim.broadcasts.push({ uuid: t.uuid, number: t.inbound ? t.origNum : t.ep.number, path, at: Date.now() });
            this.sim.timer(t, 1000, () => { if (!t.hungup) this.sim.events.emit(t, 'CHANNEL_EXECUTE_COMPLETE', { name: 'playback', arg: path, uuid: randomUUID(), response: 'FILE PLAYED' }); });
          }
        });
        return '+OK Message scheduled\n';
      }
      case 'uuid_ring_ready': {
        // As the ring_ready app (switch_channel_ring_ready_value): a caller to X gets 180 Ringing once; CHANNEL_PROGRESS.
        const ch = this.sim.chans.get(args[0] ?? '');
        if (!ch || ch.hungup) return '-ERROR\n';
        this.sim.calls.ringReady(ch);
        return '+OK\n';
      }
      case 'uuid_setvar': {
        const ch = this.sim.chans.get(args[0] ?? '');
        if (!ch || ch.hungup) return '-ERR No such channel!\n';
        ch.setVars.set(args[1] ?? '', args.slice(2).join(' '));
        return '+OK\n';
      }
      case 'hash': {
        const [op, realm, key, ...value] = arg.split('/');
        const k = `${realm}/${key}`;
        if (op === 'insert') { this.sim.hashes.set(k, value.join('/')); return '+OK\n'; }
        if (op === 'select') return this.sim.hashes.get(k) ?? '-ERR no reply\n';
        if (op === 'delete') return this.sim.hashes.delete(k) ? '+OK\n' : '-ERR Not found\n';
        return '-ERR Usage: hash [insert|delete|select]/<realm>/<key>/<value>\n';
      }
      case 'hash_dump': {
        // `hash_dump db <realm>`: one `D/<realm>_<key>/<value>` line per entry of the realm (mod_hash)
        const [mode, realm] = args;
        if (mode !== 'db' && mode !== 'all') return 'Usage: all|limit|db [<realm>]\n';
        let out = '';
        for (const [k, v] of this.sim.hashes) {
          const slash = k.indexOf('/');
          const key = `${k.slice(0, slash)}_${k.slice(slash + 1)}`;
          if (realm === undefined || key.includes(`${realm}_`)) out += `D/${key}/${v}\n`;
        }
        return out;
      }
      case 'uuid_getvar': {
        const ch = this.sim.chans.get(args[0] ?? '');
        if (!ch || ch.hungup) return '-ERR No such channel!\n';
        const name = args[1] ?? '';
        // what the last bridge left on the channel (04: SUCCESS; 09b/10b/16a: the failure cause)
        if ((name === 'originate_disposition' || name === 'originate_failed_cause') && ch.bridgeFailCause) return ch.bridgeFailCause;
        if (name === 'originate_disposition' && ch.bridgeOk) return 'SUCCESS';
        return ch.v(name) ?? '_undef_';
      }
      case 'hupall': {
        const cause = args[0] ?? 'MANAGER_REQUEST';
        for (const ch of [...this.sim.chans.values()]) if (!ch.hungup && ch.role === 'A') void this.sim.calls.hangup(ch, cause, 'local');
        return '+OK hangup all channels with cause ' + cause + '\n';
      }
      case 'show': return this.show(args);
      case 'fsctl': if (args[0] === 'shutdown') { void this.shutdown(); return '+OK\n'; } return '+OK\n';
      case 'originate': return new Promise((resolve) => this.sim.calls.originate(arg, { id: '', conn: c, api: resolve, cmd: 'originate', arg }));
      default: return `-ERR ${name} Command not found!\n`;
    }
  }

  private show(args: string[]): string {
    const what = args[0];
    const live = [...this.sim.chans.values()].filter((c) => !c.hungup && nowUs() - c.createdUs > 200_000 * this.sim.scale);
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

  backgroundJob(job: string, cmd: string, arg: string, out: string): void {
    const d = new Date();
    const headers: Header[] = [
      ['Event-Name', 'BACKGROUND_JOB'], ['Core-UUID', this.sim.coreUuid], ['FreeSWITCH-Hostname', 'fs-node-1'], ['FreeSWITCH-Switchname', 'fs-node-1'],
      ['FreeSWITCH-IPv4', '127.0.0.1'], ['FreeSWITCH-IPv6', '::1'], ['Event-Date-Local', dateLocal(d)], ['Event-Date-GMT', dateGmt(d)],
      ['Event-Date-Timestamp', String(nowUs())], ['Event-Calling-File', 'mod_event_socket.c'], ['Event-Calling-Function', 'api_exec'],
      ['Event-Calling-Line-Number', '1572'], ['Event-Sequence', String(++this.sim.seq)], ['Job-UUID', job], ['Job-Command', cmd],
    ];
    if (arg) headers.push(['Job-Command-Arg', arg]);
    this.deliver(new SimEvent('BACKGROUND_JOB', headers, out));
  }

  /** Whether any connection could take an event of this name (before its filters): nobody's events are not rendered. */
  mayWant(name: string): boolean {
    for (const c of this.sim.conns) {
      if (c.closed) continue;
      if ((c.outboundCh ? c.myevents : c.format) && (c.all || c.events.has(name))) return true;
    }
    return false;
  }

  deliver(ev: SimEvent): void {
    for (const c of this.sim.conns) {
      if (c.closed || !c.wants(ev)) continue;
      if (c.outboundCh) {
        const sent = this.sim.socketEvents.get(c.outboundCh.uuid) ?? [];
        sent.push(ev.name);
        this.sim.socketEvents.set(c.outboundCh.uuid, sent);
      }
      c.write(c.format === 'json' ? ev.json() : ev.plain());
    }
  }
}
