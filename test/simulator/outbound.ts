/**
 * The outbound socket: a call to X whose dialplan runs `socket` to the controller. The simulator connects to the
 * controller, answers its `connect` with CHANNEL_DATA, parks the call, records what the calling phone sees, and
 * ends the call when the controller's socket goes away.
 */
import * as net from 'net';
import { randomUUID } from 'crypto';
import { urlEncode } from './encoding';
import { AppRun, Channel, Endpoint, parseVarBlock, SIP_HOST } from './channel';
import type { SimContext } from './context';
import { Conn, GOODBYE } from './esl';
import { DAYS, MONTHS, p2, Q850 } from './events';
import { templates, TemplateKey } from './templates';
import type { OutboundCall, SeenByCaller } from './types';

export class OutboundSocket {
  constructor(private readonly sim: SimContext) {}

  /** A call to X arrives: its dialplan runs set, export and `socket`, which connects to the controller at `target`. */
  async connect(target: { host: string; port: number }, call: OutboundCall): Promise<string> {
    const uuid = randomUUID();
    const ep: Endpoint = { channelName: `sofia/external/${call.callerNumber}@${call.callerAddress ?? '127.0.0.1:5090'}`, number: call.destinationNumber, hostPort: '127.0.0.1:5080' };
    const ch = new Channel('A', uuid, ep, [], call.caller ?? { answer: 'answer' }, '13a');
    ch.inbound = true;
    ch.callerNum = call.callerNumber; ch.callerName = call.callerNumber; ch.origNum = call.callerNumber; ch.origName = call.callerNumber; ch.ani = call.callerNumber;
    ch.calleeName = ''; ch.calleeNum = '';
    ch.fromDisplay = call.callerNumber; ch.fromUser = call.callerNumber;
    ch.keys = call.keys;
    this.sim.chans.set(uuid, ch);
    this.sim.sessionsSinceStartup++;
    this.toCaller(ch, '100 Trying', undefined, false);
    this.sim.events.emit(ch, 'CHANNEL_CREATE');
    // the vanilla `public` context runs its outside_call extension first, then ours: socket (13x observers)
    if (!call.keys) {
      this.dialplanApp(ch, { name: 'set', arg: 'outside_call=true', uuid: randomUUID() });
      this.dialplanApp(ch, { name: 'export', arg: `RFC2822_DATE=${rfc2822Date(new Date())}`, uuid: randomUUID() });
    }
    ch.parkApp = { name: 'socket', arg: `${target.host}:${target.port} async full`, uuid: randomUUID() };
    ch.apps.push(ch.parkApp); ch.curApp = ch.parkApp;
    this.sim.events.emit(ch, 'CHANNEL_EXECUTE', ch.parkApp);
    if (call.keys) {
      // A caller who keys digits (20a-20c, this repository's dialplan, recorded on a less loaded host): the switch
      // parked the call before the controller subscribed, so myevents never carries CHANNEL_PARK.
      ch.tpl = call.keys.via === 'info' ? '20b' : '20a';
      ch.socketParked = true;
      this.sim.events.emit(ch, 'CHANNEL_PARK');
    }
    const sock = net.connect(target.port, target.host);
    sock.setNoDelay(true);
    const c = new Conn(sock);
    c.outboundCh = ch;
    c.authed = true;
    ch.outConn = c;
    this.sim.conns.add(c);
    sock.on('data', (d) => this.onDataOutbound(c, d.toString('utf8')));
    sock.on('close', () => { c.closed = true; this.sim.conns.delete(c); this.releaseOutbound(ch); });
    sock.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => { sock.once('connect', () => resolve()); sock.once('error', reject); });
    return uuid;
  }

  /**
   * Record a SIP message to the calling phone of a call to X. Responses carry the channel's callee id as
   * Remote-Party-ID (13a: B's real number unless the bridge set origination_callee_id_*, 13e); a call
   * answered by the switch itself shows the dialled number (13b/13c).
   */
  toCaller(ch: Channel, message: string, cause?: string, withIdentity = message !== 'BYE'): void {
    const name = ch.calleeName || ch.ep.number; const num = ch.calleeNum || ch.ep.number;
    const seen: SeenByCaller = {
      uuid: ch.uuid, message, at: Date.now(),
      remotePartyId: withIdentity ? `"${name}" <sip:${num}@${SIP_HOST}>;party=calling;privacy=off;screen=no` : null,
      reason: cause ? sipReason(cause) : null,
    };
    const list = this.sim.callerMessages.get(ch.callerNum) ?? [];
    list.push(seen);
    this.sim.callerMessages.set(ch.callerNum, list);
  }

  /** A dialplan app that completes at once (set/export), as run before the `socket` app. */
  private dialplanApp(ch: Channel, app: AppRun): void {
    const i = app.arg.indexOf('=');
    ch.curApp = app;
    this.sim.events.emit(ch, 'CHANNEL_EXECUTE', app);
    if (i > 0) ch.setVars.set(app.arg.slice(0, i), app.arg.slice(i + 1));
    ch.lastApp = app;
    this.sim.events.emit(ch, 'CHANNEL_EXECUTE_COMPLETE', { ...app, response: '_none_' });
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
        this.sim.received.push('connect');
        const data2 = this.sim.events.render(ch, { n: 'CHANNEL_DATA', app: '', h: templates()[ch.tpl].connect ?? [['Event-Name', 'CHANNEL_DATA']] }, undefined);
        let s = '';
        for (const [k, v] of data2.headers) s += k + ': ' + urlEncode(v) + '\n';
        c.write(s + 'Content-Type: command/reply\nReply-Text: %2BOK%0A\nSocket-Mode: async\nControl: full\n\n');
        if (rest) this.sim.esl.onData(c, rest);
        return;
      }
      c.buf += data;
      return;
    }
    this.sim.esl.onData(c, data);
  }

  outboundHungup(ch: Channel): void {
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
  releaseOutbound(ch: Channel): void {
    if (ch.hungup) { this.sim.calls.destroy(ch); return; }
    if (ch.bridgeApp || ch.apps.some((x) => x !== ch.parkApp)) { ch.socketReleased = true; return; }
    void this.sim.calls.hangup(ch, 'NORMAL_CLEARING', 'local');
  }
  /**
   * The socket app parks the call once the controller is connected. In 13a-13e CHANNEL_PARK always
   * follows the controller's subscription (myevents) by ~20 ms; emitting it on a timer from `connect`
   * would lose it whenever `myevents` arrives later. An app sent before any subscription parks first.
   */
  scheduleSocketPark(ch: Channel): void {
    if (ch.socketParked) return;
    this.sim.timer(ch, 20, () => this.socketPark(ch));
  }

  socketPark(ch: Channel): void {
    if (ch.socketParked || ch.hungup) return;
    ch.socketParked = true;
    this.sim.events.emit(ch, 'CHANNEL_PARK');
  }
}

/** The outbound-socket recording whose events a call to X renders, chosen by what the controller runs. */
export function socketTemplate(current: TemplateKey, app: AppRun): TemplateKey {
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

/** Final response to an unanswered incoming call, by hangup cause (404 is recorded in 13c; the rest is sofia's mapping). */
export const FAILURE_STATUS: Record<string, string> = {
  UNALLOCATED_NUMBER: '404 Not Found', NO_ROUTE_DESTINATION: '404 Not Found', USER_BUSY: '486 Busy Here', CALL_REJECTED: '603 Decline',
  NO_ANSWER: '480 Temporarily Unavailable', NO_USER_RESPONSE: '408 Request Timeout', NORMAL_TEMPORARY_FAILURE: '503 Service Unavailable',
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
