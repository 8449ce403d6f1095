/**
 * Recorded FreeSWITCH 1.10.12 events used as templates (see tools/extract-templates.ts).
 * Loaded once per process; nothing is read from disk per event.
 */
import * as fs from 'fs';
import * as path from 'path';

export interface TemplateEvent { n: string; app: string; h: Array<[string, string]>; body?: string }
export interface TemplateFile {
  uA: string; uB?: string; A: TemplateEvent[]; B: TemplateEvent[]; X: TemplateEvent[];
  /** Outbound socket (13x): the CHANNEL_DATA headers of the `connect` reply, decoded, without the reply's own headers. */
  connect?: Array<[string, string]>;
}
export type TemplateKey = '03' | '04' | '05' | '06' | '07' | '08' | '09' | '09b' | '10' | '10b' | '10c' | '11' | '11b' | '12' | '14' | '15a' | '13a' | '13b' | '13c' | '13d' | '13e' | '16a' | '16b' | '17a' | '17b' | '20a' | '20b' | '20c';

let cache: Record<TemplateKey, TemplateFile> | null = null;

export function templates(): Record<TemplateKey, TemplateFile> {
  if (!cache) {
    cache = JSON.parse(fs.readFileSync(path.join(__dirname, 'fs-templates.json'), 'utf8')) as Record<TemplateKey, TemplateFile>;
  }
  return cache;
}

/** Find a template event for a leg: first match after `cursor`, else the first match anywhere. */
export function findTemplate(file: TemplateKey, leg: 'A' | 'B', name: string, app: string | undefined, cursor: number): { ev: TemplateEvent; idx: number } | null {
  const list = templates()[file][leg];
  for (let i = cursor + 1; i < list.length; i++) if (isTemplateFor(list[i]!, name, app)) return { ev: list[i]!, idx: i };
  for (let i = 0; i < list.length; i++) if (isTemplateFor(list[i]!, name, app)) return { ev: list[i]!, idx: i };
  return null;
}

function isTemplateFor(e: TemplateEvent, name: string, app: string | undefined): boolean {
  return e.n === name && (app === undefined || e.app === app);
}
