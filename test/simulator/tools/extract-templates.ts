/**
 * Builds test/simulator/fs-templates.json from the recorded FreeSWITCH traces.
 * Run: npx tsx test/simulator/tools/extract-templates.ts [path-to-fs-traces]
 * The simulator uses the recorded events as templates (header names, order, values that do not
 * matter), so it never has to read the traces at runtime.
 */
import * as fs from 'fs';
import * as path from 'path';
import { urlEncode } from '../encoding';

const sharedDir = process.argv[2] ?? path.resolve(__dirname, '../../../../shared/fs-traces');
/** Recordings made for this repository (tools/record-b-refused.ts), in the same format as the shared traces. */
const localDir = path.resolve(__dirname, '../recordings');
const FILES = ['03', '04', '05', '06', '07', '08', '09', '09b', '10', '10b', '10c', '11', '11b', '12', '14', '15a', '13a', '13b', '13c', '13d', '13e'];
const LOCAL_FILES = ['16a', '16b', '17a', '17b', '20a', '20b', '20c'];

interface Ev { n: string; app: string; h: Array<[string, string]>; body?: string }

function parsePlain(raw: string): Ev | null {
  const i = raw.indexOf('\n\n');
  const outer = raw.slice(0, i);
  if (!outer.includes('text/event-plain')) return null;
  const body = raw.slice(i + 2);
  const j = body.indexOf('\n\n');
  const head = j >= 0 ? body.slice(0, j) : body;
  const h: Array<[string, string]> = [];
  for (const line of head.split('\n')) {
    if (!line) continue;
    const k = line.indexOf(': ');
    const name = line.slice(0, k);
    const enc = line.slice(k + 2);
    const dec = decodeURIComponent(enc);
    if (urlEncode(dec) !== enc) throw new Error(`encoding mismatch for ${name}: ${enc} vs ${urlEncode(dec)}`);
    h.push([name, dec]);
  }
  const get = (n: string) => h.find((x) => x[0] === n)?.[1] ?? '';
  const ev: Ev = { n: get('Event-Name'), app: get('Application'), h };
  const rest = j >= 0 ? body.slice(j + 2) : '';
  if (rest) ev.body = rest;
  return ev;
}

type Scenario = { scenario: string; ids: Record<string, string>; transcripts: Array<{ file: string }>; dir: string };
const manifestOf = (dir: string): Scenario[] =>
  (JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Scenario[]).map((s) => ({ ...s, dir }));
const manifest = [...manifestOf(sharedDir), ...manifestOf(localDir)];
const seqOf = (ev: Ev) => Number(ev.h.find((x) => x[0] === 'Event-Sequence')?.[1] ?? 0);
const out: Record<string, unknown> = {};
for (const key of [...FILES, ...LOCAL_FILES]) {
  const sc = manifest.find((s) => s.transcripts.some((t) => t.file.startsWith(key + '-')));
  if (!sc) throw new Error('no scenario ' + key);
  const recvMessages = (file: string): string[] => fs.readFileSync(path.join(sc.dir, file), 'utf8').split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as { dir: string; raw: string }).filter((m) => m.dir === 'recv').map((m) => m.raw);
  const t = sc.transcripts.find((x) => x.file.startsWith(key + '-') && !x.file.includes('-observer.'))!;
  // Outbound socket (13x): the controller's socket sees only its channel (myevents), the observer also
  // the dialplan apps before `socket`, the B leg and CHANNEL_DESTROY. The same event has the same
  // Event-Sequence (and bytes) in both, so the union ordered by Event-Sequence is the channel's full story.
  const observer = sc.transcripts.find((x) => x.file.startsWith(key + '-') && x.file.includes('-observer.'));
  let events: Ev[] = [];
  for (const file of [t.file, ...(observer ? [observer.file] : [])]) {
    for (const raw of recvMessages(file)) { const ev = parsePlain(raw); if (ev) events.push(ev); }
  }
  if (observer) {
    const bySeq = new Map<number, Ev>();
    for (const ev of events) if (!bySeq.has(seqOf(ev))) bySeq.set(seqOf(ev), ev);
    events = [...bySeq.entries()].sort((x, y) => x[0] - y[0]).map(([, ev]) => ev);
  }
  const legs: Record<string, Ev[]> = { A: [], B: [], X: [] };
  const uA = sc.ids.uA ?? sc.ids.uC;
  let uB = sc.ids.uB;
  for (const ev of events) {
    const uid = ev.h.find((x) => x[0] === 'Unique-ID')?.[1];
    if (!uB && uid && uid !== uA) uB = uid;
    (uid === uA ? legs.A : uid && uid === uB ? legs.B : legs.X)!.push(ev);
  }
  const entry: Record<string, unknown> = { uA, uB, ...legs };
  // the outbound socket's `connect` reply: the channel's CHANNEL_DATA as url-encoded reply headers
  const connectReply = observer ? recvMessages(t.file)[0] : undefined;
  if (connectReply) {
    entry.connect = connectReply.slice(0, connectReply.indexOf('\n\n')).split('\n')
      .map((line) => { const k = line.indexOf(': '); return [line.slice(0, k), decodeURIComponent(line.slice(k + 2))]; })
      .filter(([k]) => k !== 'Content-Type' && k !== 'Reply-Text' && k !== 'Socket-Mode' && k !== 'Control');
  }
  out[key] = entry;
}
const target = path.resolve(__dirname, '../fs-templates.json');
fs.writeFileSync(target, JSON.stringify(out));
console.log('wrote', target, fs.statSync(target).size, 'bytes');
