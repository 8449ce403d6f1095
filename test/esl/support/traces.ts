/** Loads the recorded FreeSWITCH 1.10.12 transcripts (shared/fs-traces). */
import fs from 'node:fs';
import path from 'node:path';

export const TRACES_DIR = process.env.FS_TRACES_DIR ?? path.resolve(__dirname, '../../../../shared/fs-traces');

export interface TraceMessage {
  dir: 'send' | 'recv';
  t_ms: number;
  raw: string;
}

const cache = new Map<string, TraceMessage[]>();

/** All messages of a transcript; `name` is the file stem prefix, e.g. '01a' or '13a-outbound-socket-bound-call'. */
export function trace(name: string): TraceMessage[] {
  let msgs = cache.get(name);
  if (!msgs) {
    const file = fs
      .readdirSync(TRACES_DIR)
      .filter((f) => f.endsWith('.esl.jsonl'))
      .find((f) => f === `${name}.esl.jsonl` || (f.startsWith(name + '-') && !f.includes('observer')));
    if (!file) throw new Error(`no trace ${name} in ${TRACES_DIR}`);
    msgs = fs
      .readFileSync(path.join(TRACES_DIR, file), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as TraceMessage);
    cache.set(name, msgs);
  }
  return msgs;
}

export function recv(name: string): string[] {
  return trace(name)
    .filter((m) => m.dir === 'recv')
    .map((m) => m.raw);
}

/** The first received message of `name` matching `pred`; throws if absent (a test on a missing fixture must fail). */
export function recvWhere(name: string, pred: (raw: string) => boolean): string {
  const m = recv(name).find(pred);
  if (m === undefined) throw new Error(`no matching message in trace ${name}`);
  return m;
}

/** Body (after the outer header block) of a framed message. */
export function bodyOf(raw: string): string {
  return raw.substring(raw.indexOf('\n\n') + 2);
}

/** Plain-event messages (text/event-plain) of a trace. */
export function plainEvents(name: string): string[] {
  return recv(name).filter((r) => r.includes('\nContent-Type: text/event-plain\n'));
}

export function jsonEvents(name: string): string[] {
  return recv(name).filter((r) => r.includes('\nContent-Type: text/event-json\n'));
}

export function eventName(raw: string): string {
  const m = /Event-Name(?:: |":")([A-Z_:]+)/.exec(raw);
  return m?.[1] ?? '';
}
