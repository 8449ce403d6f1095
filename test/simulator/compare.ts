/**
 * Compares what the simulator sent with what FreeSWITCH sent in a recording.
 * Returns human-readable differences; an empty list means "conforms".
 */
import { Parsed, parseMsg, TraceMsg } from './trace-replay';

const EVENT_CT = new Set(['text/event-plain', 'text/event-json']);
/** Header values compared for every event (when present in the recording). */
export const VALUE_HEADERS = [
  'Unique-ID', 'Other-Leg-Unique-ID', 'Caller-Caller-ID-Number', 'Caller-Caller-ID-Name', 'Caller-Callee-ID-Number', 'Caller-Callee-ID-Name',
  'Hangup-Cause', 'Application', 'Application-Data', 'Application-Response', 'Application-UUID', 'Job-UUID', 'Job-Command', 'Job-Command-Arg',
  'variable_hangup_cause', 'variable_sip_hangup_disposition', 'variable_DIALSTATUS', 'variable_originate_disposition',
  'variable_last_bridge_hangup_cause', 'variable_bridge_hangup_cause', 'variable_billsec', 'Record-File-Path', 'Answer-State', 'Channel-State',
  'Channel-Call-State', 'Call-Direction', 'Channel-Name', 'Caller-Destination-Number', 'Caller-Orig-Caller-ID-Number', 'Caller-ANI',
  // outbound socket: the connect reply and the disconnect notices
  'Socket-Mode', 'Control', 'Controlled-Session-UUID', 'Content-Disposition', 'Linger-Time',
];
/**
 * Variables whose presence may differ between simulator and recording: values that depend on
 * media/RTP statistics or on apps whose side effects the simulator does not model variable-for-variable.
 * Everything else (all non-variable headers, and every other variable) must match by name and order.
 */
export const VARIABLE_ALLOWLIST = new Set<string>([]);

export interface CompareOptions {
  uuids: Record<string, string>;          // trace uuid → label (A, B)
  eventUuids?: Set<string>;               // Application-UUIDs the client chose (Event-UUID) → compare, others are random
  checkHeaderNames?: boolean;
  simUuids?: Record<string, string>;      // simulator uuid → label, for legs whose events the connection never carries (B behind myevents)
  /**
   * Per-trace value rewrites, applied to the recorded value before comparing: for values that depend on
   * the test setup rather than on FreeSWITCH (each use must say why).
   */
  valueRewrites?: Array<{ header: string; from: string; to: string; reason: string }>;
  /**
   * Per-trace values FreeSWITCH derives from the wall clock: where the recorded value matches `format`,
   * the simulator's value must match `format` too instead of being equal (each use must say why).
   */
  valueFormats?: Array<{ header: string; format: RegExp; reason: string }>;
}

function label(uuids: Record<string, string>, simUuids: Record<string, string>, u: string | undefined): string {
  if (!u) return '';
  return uuids[u] ?? simUuids[u] ?? 'other:' + u.slice(0, 8);
}

function eventKey(p: Parsed): string {
  const h = (n: string) => p.headers.find(([k]) => k === n)?.[1] ?? '';
  const app = h('Application');
  return h('Event-Name') + (app ? `(${app})` : '');
}

export function normaliseReply(p: Parsed): string {
  const h = (n: string) => p.headers.find(([k]) => k === n)?.[1] ?? '';
  if (p.ct === 'command/reply') {
    const rt = h('Reply-Text');
    if (rt.startsWith('+OK Job-UUID: ')) return 'command/reply +OK Job-UUID: <job>';
    if (h('Event-Name') === 'CHANNEL_DATA') return 'command/reply [CHANNEL_DATA] ' + rt;
    return 'command/reply ' + rt;
  }
  if (p.ct === 'api/response') {
    if (p.body.startsWith('UP ')) return 'api/response <status>';
    if (p.body.startsWith('{"row_count":')) {
      const j = JSON.parse(p.body) as { row_count: number; rows?: Array<Record<string, string>> };
      return `api/response rows=${j.row_count} keys=${Object.keys(j.rows?.[0] ?? {}).join(',')}`;
    }
    return 'api/response ' + JSON.stringify(p.body);
  }
  if (p.ct === 'text/disconnect-notice') return 'disconnect ' + JSON.stringify(p.body) + ' ' + (h('Content-Disposition') || '');
  return p.ct;
}

export function compareStreams(trace: TraceMsg[], got: Parsed[], opts: CompareOptions): string[] {
  const diffs: string[] = [];
  const want = trace.filter((m) => m.dir === 'recv').map((m) => parseMsg(m.raw));
  // 1) replies, in order
  const wr = want.filter((p) => !EVENT_CT.has(p.ct)).map(normaliseReply);
  const gr = got.filter((p) => !EVENT_CT.has(p.ct)).map(normaliseReply);
  if (JSON.stringify(wr) !== JSON.stringify(gr)) diffs.push(`replies differ:\n  want ${JSON.stringify(wr)}\n  got  ${JSON.stringify(gr)}`);
  // learn the simulator's uuids for legs the client did not name (B in 05): by order of first appearance
  const simUuids: Record<string, string> = { ...opts.simUuids };
  const wantOrder: string[] = []; const gotOrder: string[] = [];
  for (const p of want) { const u = p.headers.find(([k]) => k === 'Unique-ID')?.[1]; if (u && !wantOrder.includes(u)) wantOrder.push(u); }
  for (const p of got) { const u = p.headers.find(([k]) => k === 'Unique-ID')?.[1]; if (u && !gotOrder.includes(u)) gotOrder.push(u); }
  const uuids = { ...opts.uuids };
  wantOrder.forEach((u, i) => { if (!uuids[u]) uuids[u] = `leg${i}`; });
  gotOrder.forEach((u, i) => { if (!uuids[u] && !simUuids[u]) simUuids[u] = uuids[wantOrder[i] ?? ''] ?? `leg${i}`; });
  const compareMessage = (tag: string, we: Parsed, ge: Parsed) => {
    if (opts.checkHeaderNames !== false) {
      const wn = we.headers.map(([k]) => k).filter((k) => !VARIABLE_ALLOWLIST.has(k));
      const gn = ge.headers.map(([k]) => k).filter((k) => !VARIABLE_ALLOWLIST.has(k));
      if (JSON.stringify(wn) !== JSON.stringify(gn)) {
        const missing = wn.filter((k) => !gn.includes(k)); const extra = gn.filter((k) => !wn.includes(k));
        diffs.push(`${tag} header names differ: missing=${JSON.stringify(missing)} extra=${JSON.stringify(extra)}${!missing.length && !extra.length ? ' (order)' : ''}`);
      }
    }
    // the outbound `connect` reply carries the channel's CHANNEL_DATA as url-encoded reply headers
    const decode = we.ct === 'command/reply' ? (v: string | undefined) => (v === undefined ? v : decodeURIComponent(v)) : (v: string | undefined) => v;
    for (const name of VALUE_HEADERS) {
      const wv = decode(we.headers.find(([k]) => k === name)?.[1]);
      const gv = decode(ge.headers.find(([k]) => k === name)?.[1]);
      if (wv === undefined) continue;
      let a = wv; let b = gv;
      if (name === 'Unique-ID' || name === 'Other-Leg-Unique-ID' || name === 'Controlled-Session-UUID') { a = label(uuids, simUuids, wv); b = label(uuids, simUuids, gv); }
      if (name === 'Application-UUID' && !(opts.eventUuids?.has(wv))) continue;
      if (name === 'Job-UUID' && !(opts.eventUuids?.has(wv))) continue;
      // FreeSWITCH derives billsec from whole-second epochs, so it depends on the wall clock's fraction: ±1 s
      if (name === 'variable_billsec' && b !== undefined && Math.abs(Number(a) - Number(b)) <= 1) continue;
      for (const r of opts.valueRewrites ?? []) if (r.header === name && a === r.from) a = r.to;
      const format = opts.valueFormats?.find((f) => f.header === name && f.format.test(wv));
      if (format) { if (b === undefined || !format.format.test(b)) diffs.push(`${tag} ${name}: want the format ${String(format.format)} got ${JSON.stringify(b)}`); continue; }
      if (a !== b) diffs.push(`${tag} ${name}: want ${JSON.stringify(a)} got ${JSON.stringify(b)}`);
    }
  };
  // 1b) each reply's header names (in order) and key values, once the reply sequence matches
  if (!diffs.length) {
    const wantReplies = want.filter((p) => !EVENT_CT.has(p.ct)); const gotReplies = got.filter((p) => !EVENT_CT.has(p.ct));
    wantReplies.forEach((we, i) => compareMessage(`[reply] #${i} ${wr[i]!.slice(0, 60)}`, we, gotReplies[i]!));
  }
  // 2) events per leg (uuid label), in order
  const perLeg = (list: Parsed[]) => {
    const m = new Map<string, Parsed[]>();
    for (const p of list) {
      if (!EVENT_CT.has(p.ct)) continue;
      const u = p.headers.find(([k]) => k === 'Unique-ID')?.[1];
      const l = u ? label(uuids, simUuids, u) : 'global';
      if (!m.has(l)) m.set(l, []);
      m.get(l)!.push(p);
    }
    return m;
  };
  const W = perLeg(want); const G = perLeg(got);
  for (const leg of new Set([...W.keys(), ...G.keys()])) {
    const w = W.get(leg) ?? []; const g = G.get(leg) ?? [];
    const wk = w.map(eventKey); const gk = g.map(eventKey);
    if (JSON.stringify(wk) !== JSON.stringify(gk)) { diffs.push(`[${leg}] event order differs:\n  want ${wk.join(' ')}\n  got  ${gk.join(' ')}`); continue; }
    for (let i = 0; i < w.length; i++) {
      const we = w[i]!; const ge = g[i]!;
      compareMessage(`[${leg}] #${i} ${wk[i]}`, we, ge);
      if (eventKey(we) === 'BACKGROUND_JOB' && we.body !== ge.body && !we.body.startsWith('UP ')) diffs.push(`[${leg}] #${i} ${wk[i]} body: want ${JSON.stringify(we.body)} got ${JSON.stringify(ge.body)}`);
    }
  }
  return diffs;
}
