/** FreeSWITCH's switch_url_encode: these characters, controls and non-ASCII bytes become %XX. */
const UNSAFE_CHARS = '\r\n "#%&+:;<=>?@[\\]^`{|}';
const HEX = '0123456789ABCDEF';
/** By byte value: 1 where switch_url_encode writes %XX (controls, non-ASCII, UNSAFE_CHARS). */
const ENCODED = new Uint8Array(256).map((_, b) => (b < 32 || b > 126 || UNSAFE_CHARS.includes(String.fromCharCode(b)) ? 1 : 0));

export function urlEncode(s: string): string {
  let simple = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255 || ENCODED[c] === 1) { simple = false; break; }
  }
  if (simple) return s;
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    if (ENCODED[b] === 1) out += `%${HEX.charAt(b >> 4)}${HEX.charAt(b & 15)}`;
    else out += String.fromCharCode(b);
  }
  return out;
}
