/** A channel's state (one leg of a call), the endpoint and `{vars}` parsers, and the simulator's clock in µs. */
import type { Conn } from './esl';
import type { TemplateKey } from './templates';
import type { KeyedDigits, PhoneBehaviour } from './types';

export const SIP_HOST = '127.0.0.1';

export interface Endpoint { channelName: string; number: string; hostPort: string }
export function parseEndpoint(s: string): Endpoint {
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
  const end = endOfBlock(s);
  let body = s.slice(1, end);
  let separator = ',';
  // `{^^;a=b;c=d}`: another separator, for values with commas (switch_event_create_brackets)
  if (body.startsWith('^^') && body.length > 2) { separator = body[2]!; body = body.slice(3); }
  for (const kv of body.split(separator)) {
    if (!kv) continue;
    const i = kv.indexOf('=');
    vars.push(i >= 0 ? [kv.slice(0, i), kv.slice(i + 1)] : [kv, '']);
  }
  return { vars, rest: s.slice(end + 1) };
}

/** Where the `{` block that `s` starts with ends: nested braces (a `${var}` in a value) count (switch_find_end_paren). */
function endOfBlock(s: string): number {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '{') depth++;
    else if (s[i] === '}' && --depth === 0) return i;
  }
  return s.length;
}

/**
 * The `{}` variables an originate (or a bridge) sets on its new leg. A value holding `${` is refused (not set)
 * unless the dial string says origination_nested_vars=true, or the channel that bridges has that variable
 * (switch_ivr_originate: check_vars, switch_string_var_check_const).
 */
export function originateVars(vars: Array<[string, string]>, dialString: string, caller?: Channel): Array<[string, string]> {
  const nested = /origination_nested_vars=true/i.test(dialString) || caller?.v('origination_nested_vars') === 'true';
  return nested ? vars : vars.filter(([, v]) => !/\$\\*\{/.test(v));
}

/**
 * The variables of the bridging channel named in its `export_vars` (comma-separated, `nolocal:` stripped), which
 * the bridge's originate sets on the new leg along with its `{}` (switch_channel_process_export).
 */
export function exportedVars(caller: Channel): Array<[string, string]> {
  const names = caller.v('export_vars');
  if (!names) return [];
  const exported: Array<[string, string]> = [['export_vars', names]];
  for (const name of names.split(',')) {
    const value = caller.v(name);
    if (value) exported.push([name.replace(/^(nolocal:|_nolocal_)/i, ''), value]);
  }
  return exported;
}

/**
 * An app's argument as the switch runs it: `${name}` is the channel's variable (empty when unset), `\$` a
 * literal `$` (switch_channel_expand_variables, run on every app's data before the app).
 */
export function expandAppArg(ch: Channel, arg: string): string {
  if (!arg.includes('$') && !arg.includes('\\')) return arg;
  return arg.replace(/\\\$|\$\{([A-Za-z0-9_]+)\}/g, (m, name: string | undefined) => (name === undefined ? '$' : (ch.v(name) ?? '')));
}

export interface AppRun { name: string; arg: string; uuid: string }
export interface Snapshot { uuid: string; callerName: string; callerNum: string; origName: string; origNum: string; calleeName: string; calleeNum: string; ani: string; number: string; channelName: string }
export function snap(c: Channel): Snapshot { return { uuid: c.uuid, callerName: c.callerName, callerNum: c.callerNum, origName: c.origName, origNum: c.origNum, calleeName: c.calleeName, calleeNum: c.calleeNum, ani: c.ani, number: c.ep.number, channelName: c.ep.channelName }; }

export class Channel {
  uuid: string;
  role: 'A' | 'B';
  tpl: TemplateKey;
  cursor = -1;
  ep: Endpoint;
  vars: Array<[string, string]>;
  setVars = new Map<string, string>();
  /** A caller of X: the digits it keys at each prompt (play_and_get_digits). */
  keys?: KeyedDigits;
  /** The digit of the DTMF event being emitted. */
  dtmfDigit?: string;
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
  /** The rest of the dialplan the originate gave this leg (inline dialplan), run in order as each app ends. */
  dialplanRest: AppRun[] = [];
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

/** How far the simulated switch's clock runs from the system's (FreeSwitchSimulator.skewClock). */
let clockSkewUs = 0;
export function setClockSkewMs(ms: number): void { clockSkewUs = Math.round(ms * 1000); }
/** The switch's clock: every event stamp and `*_uepoch` it gives. */
export function nowUs(): number { return Date.now() * 1000 + clockSkewUs + Math.floor((performance.now() % 1) * 1000); }
