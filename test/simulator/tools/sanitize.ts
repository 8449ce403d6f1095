/** As the shared traces: host name and non-loopback addresses replaced, every Content-Length recomputed. */
export function sanitize(raw: string): string {
  const i = raw.indexOf('\n\n');
  if (i < 0) return raw;
  let head = raw.slice(0, i);
  let body = raw.slice(i + 2);
  const subst = (s: string): string =>
    s
      .replace(/^(FreeSWITCH-(?:Hostname|Switchname)): .*$/gm, '$1: fs-node-1')
      .replace(/^(FreeSWITCH-IPv4): .*$/gm, '$1: 127.0.0.1')
      .replace(/^(FreeSWITCH-IPv6): .*$/gm, '$1: %3A%3A1');
  if (!/Content-Type: text\/event-plain/.test(head)) return raw;
  const j = body.indexOf('\n\n');
  let inner = j >= 0 ? body.slice(0, j) : body;
  const rest = j >= 0 ? body.slice(j + 2) : '';
  inner = subst(inner);
  if (rest) inner = inner.replace(/^Content-Length: \d+$/m, `Content-Length: ${Buffer.byteLength(rest)}`);
  body = j >= 0 ? `${inner}\n\n${rest}` : inner;
  head = head.replace(/^Content-Length: \d+$/m, `Content-Length: ${Buffer.byteLength(body)}`);
  return `${head}\n\n${body}`;
}
