import { ValidationError } from './errors';

/**
 * Real phone numbers (A, B) and privacy numbers (X), normalized to one canonical
 * digit string so that bindings, limits and lookups compare like with like:
 *  - Chinese mobile:       11 digits, 1[3-9]xxxxxxxxx           (from +86 / 0086 / 86 prefixes too)
 *  - Chinese fixed line:   0 + area code + subscriber, 10-12 digits
 *  - 700 privacy numbers:  15 digits, 700 + 12 digits
 *  - 95xxx service numbers (legacy pool numbers only)
 *  - Other countries:      +<E.164>, kept with its leading '+'
 */
export type NumberKind = 'mobile' | 'fixed' | 'x700' | 'service95' | 'e164';

export interface PhoneNumber {
  readonly digits: string;
  readonly kind: NumberKind;
}

const MOBILE = /^1[3-9]\d{9}$/;
const FIXED = /^0[1-9]\d{8,10}$/;
const X700 = /^700\d{12}$/;
const SERVICE95 = /^95\d{3,6}$/;
const E164 = /^\+[1-9]\d{6,14}$/;

export function parsePhoneNumber(input: unknown, field: string): PhoneNumber {
  if (typeof input !== 'string' || input.trim() === '') {
    throw new ValidationError(field, `${field} must be a phone number string`, 'invalid_phone_number');
  }
  const n = normalizePhoneNumber(input);
  if (n) return n;
  throw new ValidationError(
    field,
    `${field} is not a valid phone number (Chinese mobile, fixed line with area code, 700 number or +E.164)`,
    'invalid_phone_number',
  );
}

/** parsePhoneNumber without the error: null when the text is not a number. */
export function normalizePhoneNumber(input: string): PhoneNumber | null {
  const compact = input.trim().replace(/[\s\-().]/g, '');
  let s = compact;
  if (s.startsWith('0086')) s = s.slice(4);
  else if (s.startsWith('+86')) s = s.slice(3);
  else if (s.startsWith('86') && s.length === 13 && MOBILE.test(s.slice(2))) s = s.slice(2);

  if (MOBILE.test(s)) return { digits: s, kind: 'mobile' };
  if (X700.test(s)) return { digits: s, kind: 'x700' };
  if (FIXED.test(s)) return { digits: s, kind: 'fixed' };
  if (SERVICE95.test(s)) return { digits: s, kind: 'service95' };
  // A Chinese fixed line written internationally (+86 10 xxxx) lost its trunk 0 above.
  if (/^(\+86|0086)[1-9]\d{8,10}$/.test(compact)) return { digits: `0${s}`, kind: 'fixed' };
  if (E164.test(s)) return { digits: s, kind: 'e164' };
  if (s.startsWith('00') && E164.test(`+${s.slice(2)}`)) return { digits: `+${s.slice(2)}`, kind: 'e164' };
  return null;
}

/** A number a real person answers: what A and B may be. */
export function parseRealNumber(input: unknown, field: string): string {
  const n = parsePhoneNumber(input, field);
  if (n.kind === 'x700' || n.kind === 'service95') {
    throw new ValidationError(field, `${field} must be a real subscriber number, not a privacy or service number`, 'invalid_phone_number');
  }
  return n.digits;
}

/** A privacy number X. Legacy (non-700) numbers only where the pool allows them. */
export function parsePrivacyNumber(input: unknown, field: string, allowLegacy = false): string {
  const n = parsePhoneNumber(input, field);
  if (n.kind !== 'x700' && !allowLegacy) {
    throw new ValidationError(field, `${field} must be a 15-digit 700 number`, 'invalid_privacy_number');
  }
  return n.digits;
}

/** 13812345678 -> 138****5678. Keeps enough to recognise a number, never enough to call it. */
export function maskPhone(value: string): string {
  const plus = value.startsWith('+') ? '+' : '';
  const d = plus ? value.slice(1) : value;
  if (d.length <= 4) return '*'.repeat(d.length);
  if (d.length <= 7) return `${plus}${d.slice(0, 1)}${'*'.repeat(d.length - 3)}${d.slice(-2)}`;
  const head = d.length >= 11 ? 3 : 2;
  return `${plus}${d.slice(0, head)}${'*'.repeat(d.length - head - 4)}${d.slice(-4)}`;
}

/**
 * Numbers inside free text (audit details, logged errors) are masked, written however a person
 * writes them: `13812345678`, `138 1234 5678`, `138-1234-5678`, `+86 138 1234 5678`,
 * `(010) 1234-5678`, `0044 20 7946 0958`. Two passes:
 *  1. Formatted numbers: digit groups joined by a space, dash or dot, or parentheses, with an
 *     optional leading + (or a 00/86 country code), are read as one number when the groups make a
 *     Chinese mobile or fixed-line number, a +/00 international number, or a 7-8 digit local
 *     number written 3-4 + 4 (`1234-5678`). Longest match first, so text after a number is not
 *     swallowed into it. A date (2026-11-20), an amount or a version is none of those and stays.
 *  2. Any remaining free-standing run of 7+ digits (optionally +) is masked, whatever it is.
 * Digits inside identifiers (uuid segments, words) are left alone, and so are 700 numbers: they
 * are platform numbers, not a person's.
 */
const FORMATTED = /(?<!\w|\w-)[+(]?\d[\d ().-]{0,40}\d\)?(?!\w|-\w)/g;
/** What may stand between two digit groups of one number. */
const GAP = /^\)? ?[-.]? ?\(?$/;
const DIGIT_RUN = /(?<![\w-])\+?\d{7,}(?![\w-])/g;

type Masking = 'mask' | 'keep' | null;

function formattedNumber(plus: boolean, groups: readonly string[]): Masking {
  // Only a country code may be a single digit (+1 555 …): `0 1 2 3 …` is a list, not a number.
  if (groups.slice(1).some((g) => g.length < 2)) return null;
  const digits = groups.join('');
  const n = normalizePhoneNumber(`${plus ? '+' : ''}${digits}`);
  if (n?.kind === 'x700') return 'keep';
  if (n && (n.kind === 'mobile' || n.kind === 'fixed' || n.kind === 'e164')) return 'mask';
  if (groups.length === 1) return null;
  const [local, subscriber] = groups;
  if (!plus && groups.length === 2 && /^\d{3,4}$/.test(local ?? '') && /^\d{4}$/.test(subscriber ?? '')) return 'mask';
  return null;
}

function maskFormatted(candidate: string): string {
  const groups = [...candidate.matchAll(/\d+/g)].map((m) => ({ text: m[0], start: m.index, end: m.index + m[0].length }));
  const group = (i: number): { text: string; start: number; end: number } => {
    const g = groups[i];
    if (!g) throw new RangeError(`no digit group ${i}`);
    return g;
  };
  let out = '';
  let copied = 0;
  let s = 0;
  while (s < groups.length) {
    // The longest run of groups from s whose gaps are all separators, then shorter ones.
    let last = s;
    while (last + 1 < groups.length && GAP.test(candidate.slice(group(last).end, group(last + 1).start))) last++;
    let matched = -1;
    let verdict: Masking = null;
    const plus = s === 0 && candidate.startsWith('+');
    for (let e = last; e >= s && matched < 0; e--) {
      verdict = formattedNumber(plus, groups.slice(s, e + 1).map((g) => g.text));
      if (verdict) matched = e;
    }
    if (matched < 0) {
      s++;
      continue;
    }
    if (verdict === 'mask') {
      const start = plus ? 0 : s === 0 && candidate.startsWith('(') ? 0 : group(s).start;
      let end = group(matched).end;
      if (candidate[end] === ')' && candidate.lastIndexOf('(', group(matched).start) >= start) end++;
      const digits = groups.slice(s, matched + 1).map((g) => g.text).join('');
      out += candidate.slice(copied, start) + maskPhone(`${plus ? '+' : ''}${digits}`);
      copied = end;
    }
    s = matched + 1;
  }
  return out + candidate.slice(copied);
}

export function maskPhonesInText(text: string): string {
  return text
    .replace(FORMATTED, maskFormatted)
    .replace(DIGIT_RUN, (m) => (X700.test(m) ? m : maskPhone(m)));
}
