/**
 * How a text becomes short-message parts and back (3GPP TS 23.038 / 23.040), independent of the
 * carrier that moves them:
 *  - GSM 7-bit when every character is in the default alphabet (its extension table counts two
 *    septets), else UCS-2 (UTF-16 code units, so an emoji is two);
 *  - one part holds 160 septets or 70 UCS-2 units; a concatenated part, after its 6-octet UDH
 *    (IEI 0x00, 8-bit reference), holds 153 or 67. A part never ends between the halves of a
 *    surrogate pair nor between an escape and its extension character.
 */
export type TextEncoding = 'gsm7' | 'ucs2';

const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM_EXTENSION = '^{}\\[~]|€\f';

const SINGLE = { gsm7: 160, ucs2: 70 } as const;
const CONCATENATED = { gsm7: 153, ucs2: 67 } as const;
/** At most this many parts per message (the 8-bit UDH counts to 255; carriers take far fewer). */
export const MAX_PARTS = 16;

function units(ch: string, encoding: TextEncoding): number {
  if (encoding === 'ucs2') return ch.length;
  return GSM_EXTENSION.includes(ch) ? 2 : 1;
}

export function encodingFor(text: string): TextEncoding {
  for (const ch of text) {
    if (ch === '\u001b' || (!GSM_BASIC.includes(ch) && !GSM_EXTENSION.includes(ch))) return 'ucs2';
  }
  return 'gsm7';
}

/** Septets (GSM 7-bit) or UTF-16 units (UCS-2) the text takes. */
export function lengthIn(text: string, encoding: TextEncoding): number {
  let n = 0;
  for (const ch of text) n += units(ch, encoding);
  return n;
}

/** Characters as a reader counts them (code points: an emoji is one). */
export function characterCount(text: string): number {
  return Array.from(text).length;
}

export interface Segmented {
  readonly encoding: TextEncoding;
  readonly parts: readonly string[];
}

/** Splits a text into the parts a handset reassembles. Throws RangeError past MAX_PARTS. */
export function segmentText(text: string): Segmented {
  const encoding = encodingFor(text);
  if (lengthIn(text, encoding) <= SINGLE[encoding]) return { encoding, parts: [text] };
  const size = CONCATENATED[encoding];
  const parts: string[] = [];
  let current = '';
  let used = 0;
  // Iterating by code point keeps surrogate pairs whole; units() keeps escapes with their character.
  for (const ch of text) {
    const u = units(ch, encoding);
    if (used + u > size) {
      parts.push(current);
      current = '';
      used = 0;
    }
    current += ch;
    used += u;
  }
  if (current !== '') parts.push(current);
  if (parts.length > MAX_PARTS) throw new RangeError(`a text of ${parts.length} parts is longer than ${MAX_PARTS} parts`);
  return { encoding, parts };
}

/** One part of a concatenated message as a carrier delivered it. */
export interface ReceivedPart {
  /** The sender's reference shared by every part of one message. */
  readonly reference: number;
  readonly total: number;
  /** 1-based. */
  readonly sequence: number;
  readonly text: string;
}

/** The concatenation data of a UDH (IEI 0x00 8-bit or 0x08 16-bit reference), or null when it has none. */
export function concatenationOf(udh: readonly Buffer[]): Omit<ReceivedPart, 'text'> | null {
  for (const ie of udh) {
    if (ie[0] === 0x00 && ie[1] === 3 && ie.length >= 5) return checked(ie[2] ?? 0, ie[3] ?? 0, ie[4] ?? 0);
    if (ie[0] === 0x08 && ie[1] === 4 && ie.length >= 6) return checked(((ie[2] ?? 0) << 8) | (ie[3] ?? 0), ie[4] ?? 0, ie[5] ?? 0);
  }
  return null;
}

/** The same from SMPP's sar_ TLVs. */
export function concatenationFromSar(ref: number | undefined, total: number | undefined, seq: number | undefined): Omit<ReceivedPart, 'text'> | null {
  if (ref === undefined || total === undefined || seq === undefined) return null;
  return checked(ref, total, seq);
}

function checked(reference: number, total: number, sequence: number): Omit<ReceivedPart, 'text'> | null {
  if (total < 1 || total > MAX_PARTS || sequence < 1 || sequence > total) return null;
  return { reference, total, sequence };
}

/** The UDH of part `sequence` of `total` with an 8-bit reference (the form every handset reads). */
export function concatenationUdh(reference: number, total: number, sequence: number): Buffer {
  return Buffer.from([0x05, 0x00, 0x03, reference & 0xff, total, sequence]);
}

/** The whole text once every part is there (in sequence order), else null. */
export function reassemble(parts: readonly ReceivedPart[]): string | null {
  const first = parts[0];
  if (!first) return null;
  const bySequence = new Map<number, string>();
  for (const p of parts) bySequence.set(p.sequence, p.text);
  if (bySequence.size !== first.total) return null;
  let text = '';
  for (let i = 1; i <= first.total; i++) {
    const t = bySequence.get(i);
    if (t === undefined) return null;
    text += t;
  }
  return text;
}
