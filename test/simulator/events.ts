/**
 * Channel events rendered from the recorded events used as templates (fs-templates.json): which template an event
 * takes, and the substitution of uuids, numbers, caller id, `{...}` variables, timestamps and billing variables.
 * `SimEvent` serialises a rendered event once per format (plain url-encoded like switch_url_encode, or json).
 */
import { urlEncode } from './encoding';
import { AppRun, Channel, nowUs, SIP_HOST, snap, Snapshot } from './channel';
import type { SimContext } from './context';
import { findTemplate, templates, TemplateEvent, TemplateKey } from './templates';

export type Header = [string, string];

export const Q850: Record<string, string> = {
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

export const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
export const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
export const p2 = (n: number) => (n < 10 ? `0${n}` : String(n));
export function dateLocal(d: Date): string { return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`; }
export function dateGmt(d: Date): string { return `${DAYS[d.getUTCDay()]}, ${p2(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} GMT`; }

/** A rendered event: headers + optional body; serialized lazily per format. */
export class SimEvent {
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

/** Emits a channel's events: picks the template, renders it, hands it to the ESL connections that want it. */
export class EventRenderer {
  constructor(private readonly sim: SimContext) {}

  emit(ch: Channel, name: string, app?: AppRun & { response?: string }, extra?: Header[]): void {
    if (name === 'CHANNEL_HANGUP_COMPLETE') this.sim.calls.reportingHook(ch);
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
    // An event no connection subscribed to is not rendered (most of the simulator's CPU per call); it
    // still takes its sequence number, as on the switch.
    if (!this.sim.esl.mayWant(name)) {
      this.sim.seq++;
      return;
    }
    const ev = this.render(ch, found.ev, app, extra);
    this.sim.esl.deliver(ev);
  }

  render(ch: Channel, te: TemplateEvent, app?: AppRun & { response?: string }, extra?: Header[]): SimEvent {
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
    // One closure per event, not per header: tsx names every closure it creates (a defineProperty each).
    let name = '';
    const push = (v: string) => out.push([name, v]);
    for (const header of te.h) {
      name = header[0];
      const tv = header[1];
      const alias = CHANNEL_PROFILE_ALIASES.has(name);
      pre = alias ? 'Channel-' : 'Caller-';
      const k = alias ? 'Caller-' + name.slice(8) : name;
      if (NAME_HEADERS.has(k)) continue;
      if (k.startsWith('variable_')) {
        const vn = k.slice(9);
        // the leg's own `{...}` variables come as one block, in the order given, where the first of them is
        if (ORIG_KEYS.has(vn) || ch.vars.some(([name]) => name === vn)) {
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
        case 'Event-Sequence': push(String(++this.sim.seq)); continue;
        case 'Channel-Name': case 'Caller-Channel-Name': push(ch.ep.channelName); continue;
        case 'Unique-ID': case 'Caller-Unique-ID': push(ch.uuid); continue;
        case 'Core-UUID': push(this.sim.coreUuid); continue;
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
        case 'DTMF-Digit': push(ch.dtmfDigit ?? tv); continue;
        default: push(tv.includes('-') ? subUuid(tv) : tv);
      }
    }
    if (extra) out.push(...extra);
    return new SimEvent(te.n, out, te.body);
  }

  /** Value of a channel variable in an event; null = leave it out. */
  varValue(ch: Channel, vn: string, tv: string, te: TemplateEvent): string | null {
    const tf = templates()[ch.tpl];
    const sc = this.sim.scale;
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
      // refused (a CRIT line, unset) when the expanded argument still holds `${` (switch_channel_set_timestamps, var_check)
      case 'last_arg': return ch.lastApp ? (ch.lastApp.arg.includes('${') ? null : ch.lastApp.arg) : tv;
      case 'hangup_cause': return ch.cause || tv;
      case 'hangup_cause_q850': { const tplCause = templateCause(te); return tplCause === undefined || tplCause === ch.cause ? tv : Q850[ch.cause] ?? tv; }
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
      case 'duration': return scaledDuration(endUs - ch.createdUs, sc, 1e6);
      case 'mduration': return scaledDuration(endUs - ch.createdUs, sc, 1e3);
      case 'uduration': return scaledDuration(endUs - ch.createdUs, sc, 1);
      case 'billsec': return ch.answeredUs ? scaledDuration(endUs - ch.answeredUs, sc, 1e6) : '0';
      case 'billmsec': return ch.answeredUs ? scaledDuration(endUs - ch.answeredUs, sc, 1e3) : '0';
      case 'billusec': return ch.answeredUs ? scaledDuration(endUs - ch.answeredUs, sc, 1) : '0';
      case 'answersec': case 'waitsec': return ch.answeredUs ? scaledDuration(ch.answeredUs - ch.createdUs, sc, 1e6) : '0';
      case 'answermsec': case 'waitmsec': return ch.answeredUs ? scaledDuration(ch.answeredUs - ch.createdUs, sc, 1e3) : '0';
      case 'answerusec': case 'waitusec': return ch.answeredUs ? scaledDuration(ch.answeredUs - ch.createdUs, sc, 1) : '0';
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
      case 'record_seconds': return ch.recStartUs ? scaledDuration(endUs - ch.recStartUs, sc, 1e6) : tv;
      case 'record_ms': return ch.recStartUs ? scaledDuration(endUs - ch.recStartUs, sc, 1e3) : tv;
      case 'record_samples': return ch.recStartUs ? scaledDuration(endUs - ch.recStartUs, sc, 125) : tv;
    }
    if (ch.setVars.has(vn)) return ch.setVars.get(vn)!;
    return tv.length > 30 && tv.includes('-') ? subUuidStr(tv, tf.uA, tf.uB, a, b) : tv.length === 36 ? subUuidStr(tv, tf.uA, tf.uB, a, b) : tv;
  }

  /** Caller id sent in the INVITE / visible in sip_from_* of this leg. */
  private inviteCid(ch: Channel): { name: string; num: string } { return { name: ch.fromDisplay, num: ch.fromUser }; }
}

/** Seconds since the epoch from microseconds, as *_epoch variables give them. */
function secs(us: number): string {
  return String(Math.floor(us / 1e6));
}

/** A duration on the simulator's clock (scaled back to the switch's), in the given unit of microseconds. */
function scaledDuration(us: number, scale: number, unit: number): string {
  return String(Math.round(us / scale / unit));
}

/** The hangup cause a template event was recorded with (undefined: none). */
function templateCause(te: TemplateEvent): string | undefined {
  return te.h.find(([k]) => k === 'variable_hangup_cause')?.[1] ?? te.h.find(([k]) => k === 'Hangup-Cause')?.[1];
}

function subUuidStr(v: string, tA: string, tB: string | undefined, a?: Channel, b?: Channel): string {
  if (a && v.includes(tA)) v = v.split(tA).join(a.uuid);
  if (b && tB && v.includes(tB)) v = v.split(tB).join(b.uuid);
  return v;
}
