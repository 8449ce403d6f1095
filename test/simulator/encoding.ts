/** FreeSWITCH's switch_url_encode: these characters, controls and non-ASCII bytes become %XX. */
const UNSAFE = new Set('\r\n "#%&+:;<=>?@[\\]^`{|}'.split(''));
const HEX = '0123456789ABCDEF';

export function urlEncode(s: string): string {
  let simple = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c > 126 || UNSAFE.has(s[i]!)) { simple = false; break; }
  }
  if (simple) return s;
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const ch = String.fromCharCode(b);
    if (b < 32 || b > 126 || UNSAFE.has(ch)) out += `%${HEX.charAt(b >> 4)}${HEX.charAt(b & 15)}`;
    else out += ch;
  }
  return out;
}
