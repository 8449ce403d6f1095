import { parseHeaderLines } from './event';

/** Called once per framed ESL message: the outer headers (url-decoded) and the body, if any. */
export type FrameHandler = (headers: Record<string, string>, body: string | undefined) => void;

const EMPTY = Buffer.alloc(0);

/**
 * What one peer may make us hold: an unterminated header block, or a Content-Length beyond these,
 * stops the reader and reports through onOverflow (the connection then drops the socket).
 */
export interface FrameLimits {
  readonly maxHeaderBytes: number;
  readonly maxBodyBytes: number;
  readonly onOverflow?: (err: Error) => void;
}

/** A CHANNEL_DATA header block with every variable is tens of KB; `show channels` of a busy switch a few MB. */
export const DEFAULT_FRAME_LIMITS: FrameLimits = { maxHeaderBytes: 1 << 20, maxBodyBytes: 64 << 20 };

/**
 * ESL framing: a header block ending in a blank line, then exactly Content-Length bytes.
 *
 * Replaces modesl's Parser, which concatenates the whole buffer on every chunk and scans for the
 * blank line byte by byte in JavaScript. Here the blank line is found with the native
 * Buffer#indexOf, and while a large body is still arriving the chunks are only collected and
 * joined once, when enough bytes are there.
 */
export class FrameReader {
  private buf: Buffer = EMPTY;
  private chunks: Buffer[] = [];
  private total = 0;
  /** Headers of a message whose body is still incomplete. */
  private head: Record<string, string> | undefined;
  private need = 0;
  private failed = false;

  constructor(
    private readonly onFrame: FrameHandler,
    /** Set right after construction (before any data can arrive) by a connection with its own limits. */
    public limits: FrameLimits = DEFAULT_FRAME_LIMITS,
  ) {}

  push(chunk: Buffer): void {
    if (this.failed) return;
    if (this.head !== undefined) {
      // Waiting for a body: collect without copying until it is all there.
      this.chunks.push(chunk);
      this.total += chunk.length;
      if (this.total < this.need) return;
      this.buf = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.total);
      this.chunks = [];
      this.total = 0;
    } else {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    }
    this.drain();
    if (this.head === undefined && this.buf.length > this.limits.maxHeaderBytes) {
      this.fail(`a header block longer than ${this.limits.maxHeaderBytes} bytes`);
    }
  }

  private fail(what: string): void {
    this.failed = true;
    this.buf = EMPTY;
    this.chunks = [];
    this.head = undefined;
    this.limits.onOverflow?.(new Error(`esl: the peer sent ${what}`));
  }

  private drain(): void {
    const buf = this.buf;
    let pos = 0;
    for (;;) {
      if (this.head === undefined) {
        const end = buf.indexOf('\n\n', pos);
        if (end === -1) break;
        const headers: Record<string, string> = {};
        const text = buf.toString('utf8', pos, end);
        parseHeaderLines(text, 0, text.length, headers, true);
        pos = end + 2;
        const len = headers['Content-Length'];
        const n = len === undefined ? 0 : Number(len);
        if (!(n >= 0) || n > this.limits.maxBodyBytes) {
          this.fail(`a body of ${len ?? '?'} bytes (at most ${this.limits.maxBodyBytes})`);
          return;
        }
        if (n > 0) {
          this.head = headers;
          this.need = n;
        } else {
          this.onFrame(headers, undefined);
        }
      } else {
        if (buf.length - pos < this.need) break;
        const headers = this.head;
        const body = buf.toString('utf8', pos, pos + this.need);
        pos += this.need;
        this.head = undefined;
        this.need = 0;
        this.onFrame(headers, body);
      }
    }
    const rest = pos === 0 ? buf : pos >= buf.length ? EMPTY : buf.subarray(pos);
    if (this.head !== undefined) {
      this.buf = EMPTY;
      if (rest.length > 0) {
        this.chunks.push(rest);
        this.total = rest.length;
      }
    } else {
      this.buf = rest;
    }
  }
}
