/**
 * Typed FreeSWITCH events.
 *
 * Plain events are parsed lazily: `name` and `uuid` are found with two native string searches
 * when the event arrives (enough to route it), a single `header()` call looks the one header up
 * in the raw text, and the full header map is decoded only when `headers` is read. That keeps the
 * ingest path far below modesl's ~155 µs per event (see bench/esl-ingest.ts for the figures).
 */
export interface EslEvent {
  /** Event-Name */
  readonly name: string;
  /** Unique-ID (the channel); undefined for events without one (BACKGROUND_JOB, ...). */
  readonly uuid: string | undefined;
  /**
   * Every header, url-decoded. A repeated header (Hangup-Cause in HANGUP_COMPLETE) keeps its last
   * value here. For plain events this map is built on first access (~35 µs for a 200-header event):
   * prefer header()/variable(), which look up one header without building it.
   */
  readonly headers: Readonly<Record<string, string>>;
  /** The event body (BACKGROUND_JOB output), undefined when the event has none. */
  readonly body: string | undefined;
  header(name: string): string | undefined;
  /** headers['variable_' + name] */
  variable(name: string): string | undefined;
}

/** Url-decodes a plain header value. FreeSWITCH encodes with switch_url_encode; `/` stays literal. */
export function decodeValue(v: string): string {
  if (v.indexOf('%') === -1) return v;
  try {
    return decodeURIComponent(v);
  } catch {
    return v; // malformed escape: keep the raw text rather than lose the header
  }
}

/** Parses `Name: value` lines from `start` to `end` of `text` into `out`. */
export function parseHeaderLines(text: string, start: number, end: number, out: Record<string, string>, decode: boolean): void {
  let pos = start;
  while (pos < end) {
    let nl = text.indexOf('\n', pos);
    if (nl === -1 || nl > end) nl = end;
    const sep = text.indexOf(': ', pos);
    if (sep !== -1 && sep < nl) {
      const value = text.substring(sep + 2, nl);
      out[text.substring(pos, sep)] = decode ? decodeValue(value) : value;
    } else if (nl > pos) {
      const colon = text.indexOf(':', pos);
      if (colon !== -1 && colon < nl) out[text.substring(pos, colon)] = '';
    }
    pos = nl + 1;
  }
}

abstract class BaseEvent implements EslEvent {
  abstract readonly name: string;
  abstract readonly uuid: string | undefined;
  abstract readonly headers: Readonly<Record<string, string>>;
  abstract readonly body: string | undefined;
  header(name: string): string | undefined {
    return this.headers[name];
  }
  variable(name: string): string | undefined {
    return this.header('variable_' + name);
  }
  toJSON(): Record<string, unknown> {
    return { name: this.name, uuid: this.uuid, headers: this.headers, body: this.body };
  }
}

/** A `text/event-plain` body, decoded on demand. */
class PlainEvent extends BaseEvent {
  readonly name: string;
  readonly uuid: string | undefined;
  private readonly text: string;
  /** Index of the blank line ending the header block (text.length when there is no body). */
  private readonly headEnd: number;
  private parsed: Record<string, string> | undefined;
  private bodyText: string | undefined;

  constructor(text: string) {
    super();
    this.text = text;
    const blank = text.indexOf('\n\n');
    this.headEnd = blank === -1 ? text.length : blank;
    if (text.startsWith('Event-Name: ')) {
      const nl = text.indexOf('\n');
      this.name = text.substring(12, nl === -1 ? text.length : nl);
    } else {
      this.name = this.find('Event-Name') ?? '';
    }
    this.uuid = this.find('Unique-ID');
  }

  /**
   * One header's value straight from the text (a forward native search; no full decode).
   * A repeated header (Hangup-Cause in HANGUP_COMPLETE) carried the same value twice in every
   * recording; this returns the first, the full map keeps the last.
   */
  private find(name: string): string | undefined {
    const text = this.text;
    let valueStart: number;
    if (text.startsWith(name + ': ')) {
      valueStart = name.length + 2;
    } else {
      const needle = '\n' + name + ': ';
      const at = text.indexOf(needle);
      if (at === -1 || at >= this.headEnd) return undefined;
      valueStart = at + needle.length;
    }
    const nl = text.indexOf('\n', valueStart);
    return decodeValue(text.substring(valueStart, nl === -1 || nl > this.headEnd ? this.headEnd : nl));
  }

  get headers(): Readonly<Record<string, string>> {
    if (this.parsed === undefined) {
      const h: Record<string, string> = {};
      parseHeaderLines(this.text, 0, this.headEnd, h, true);
      this.parsed = h;
    }
    return this.parsed;
  }

  get body(): string | undefined {
    if (this.bodyText !== undefined || this.headEnd >= this.text.length - 2) return this.bodyText;
    const len = this.find('Content-Length');
    if (len === undefined) return undefined;
    // Content-Length counts bytes; the text is already decoded, so cut by bytes when non-ASCII.
    const rest = this.text.substring(this.headEnd + 2);
    const n = Number(len);
    this.bodyText = Buffer.byteLength(rest) === rest.length ? rest.substring(0, n) : Buffer.from(rest).subarray(0, n).toString('utf8');
    return this.bodyText;
  }

  override header(name: string): string | undefined {
    return this.parsed !== undefined ? this.parsed[name] : this.find(name);
  }
}

/** An event whose headers are already a decoded record (json events, CHANNEL_DATA of `connect`). */
export class RecordEvent extends BaseEvent {
  readonly name: string;
  readonly uuid: string | undefined;
  constructor(
    readonly headers: Readonly<Record<string, string>>,
    readonly body: string | undefined,
  ) {
    super();
    this.name = headers['Event-Name'] ?? '';
    this.uuid = headers['Unique-ID'];
  }
}

/** Parses the body of a `text/event-plain` message (header lines, blank line, optional body). */
export function parsePlainEvent(text: string): EslEvent {
  return new PlainEvent(text);
}

/** Parses the body of a `text/event-json` message. `_body` becomes `body`; all other keys are headers. */
export function parseJsonEvent(text: string): EslEvent {
  const obj = JSON.parse(text) as Record<string, string>;
  const body = obj._body;
  if (body !== undefined) delete obj._body;
  return new RecordEvent(obj, body);
}
