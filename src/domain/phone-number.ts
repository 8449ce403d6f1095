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
  let s = input.trim().replace(/[\s\-().]/g, '');
  if (s.startsWith('0086')) s = s.slice(4);
  else if (s.startsWith('+86')) s = s.slice(3);
  else if (s.startsWith('86') && s.length === 13 && MOBILE.test(s.slice(2))) s = s.slice(2);

  if (MOBILE.test(s)) return { digits: s, kind: 'mobile' };
  if (X700.test(s)) return { digits: s, kind: 'x700' };
  if (FIXED.test(s)) return { digits: s, kind: 'fixed' };
  if (SERVICE95.test(s)) return { digits: s, kind: 'service95' };
  // A Chinese fixed line written internationally (+86 10 xxxx) lost its trunk 0 above.
  if (input.trim().replace(/[\s\-().]/g, '').match(/^(\+86|0086)[1-9]\d{8,10}$/)) {
    return { digits: `0${s}`, kind: 'fixed' };
  }
  if (E164.test(s)) return { digits: s, kind: 'e164' };
  if (s.startsWith('00') && E164.test(`+${s.slice(2)}`)) return { digits: `+${s.slice(2)}`, kind: 'e164' };
  throw new ValidationError(
    field,
    `${field} is not a valid phone number (Chinese mobile, fixed line with area code, 700 number or +E.164)`,
    'invalid_phone_number',
  );
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
 * Any free-standing run of 7+ digits (optionally +) inside free text is masked; runs inside
 * identifiers (uuid segments, words) are left alone. 700 numbers are platform numbers, not a
 * person's, and stay readable.
 */
const DIGIT_RUN = /(?<![\w-])\+?\d{7,}(?![\w-])/g;
export function maskPhonesInText(text: string): string {
  return text.replace(DIGIT_RUN, (m) => (X700.test(m) ? m : maskPhone(m)));
}
