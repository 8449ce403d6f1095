import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/**
 * Webhook URLs are chosen by tenants; without this check a tenant could make the platform POST
 * to its own internal services (SSRF). Every address a host resolves to must be public, and the
 * delivery then connects to exactly the addresses that were checked (see pinned-post.ts), so a
 * name that resolves differently a moment later (DNS rebinding) cannot redirect the request.
 */

/** What to do with an address inside a range: refuse it, or judge the IPv4 address it carries. */
export type RangeRule = 'block' | 'embedded_ipv4';

export interface AddressRange {
  readonly cidr: string;
  readonly rule: RangeRule;
  readonly why: string;
}

/**
 * Every non-public range, the one table both families are judged by. IPv6 rows are tried in
 * order and the first match decides, so the IPv4-embedding forms come before the catch-alls;
 * an IPv6 address matching no row is public (it lies in global unicast 2000::/3).
 */
export const NOT_PUBLIC_RANGES: readonly AddressRange[] = [
  // IPv4
  { cidr: '0.0.0.0/8', rule: 'block', why: '"this network"' },
  { cidr: '10.0.0.0/8', rule: 'block', why: 'private (RFC 1918)' },
  { cidr: '100.64.0.0/10', rule: 'block', why: 'carrier-grade NAT shared space' },
  { cidr: '127.0.0.0/8', rule: 'block', why: 'loopback' },
  { cidr: '169.254.0.0/16', rule: 'block', why: 'link-local, cloud metadata (169.254.169.254)' },
  { cidr: '172.16.0.0/12', rule: 'block', why: 'private (RFC 1918)' },
  { cidr: '192.0.0.0/24', rule: 'block', why: 'IETF protocol assignments' },
  { cidr: '192.0.2.0/24', rule: 'block', why: 'documentation (TEST-NET-1)' },
  { cidr: '192.88.99.0/24', rule: 'block', why: '6to4 relay anycast (deprecated)' },
  { cidr: '192.168.0.0/16', rule: 'block', why: 'private (RFC 1918)' },
  { cidr: '198.18.0.0/15', rule: 'block', why: 'benchmarking' },
  { cidr: '198.51.100.0/24', rule: 'block', why: 'documentation (TEST-NET-2)' },
  { cidr: '203.0.113.0/24', rule: 'block', why: 'documentation (TEST-NET-3)' },
  { cidr: '224.0.0.0/4', rule: 'block', why: 'multicast' },
  { cidr: '240.0.0.0/4', rule: 'block', why: 'reserved, and 255.255.255.255 broadcast' },
  // IPv6: forms that carry an IPv4 address are as public as that address
  { cidr: '::ffff:0:0/96', rule: 'embedded_ipv4', why: 'IPv4-mapped' },
  { cidr: '64:ff9b::/96', rule: 'embedded_ipv4', why: 'NAT64 well-known prefix' },
  // IPv6: refused outright
  { cidr: '::/128', rule: 'block', why: 'unspecified' },
  { cidr: '::1/128', rule: 'block', why: 'loopback' },
  { cidr: '::/96', rule: 'block', why: 'IPv4-compatible (deprecated)' },
  { cidr: '::ffff:0:0:0/96', rule: 'block', why: 'IPv4-translated (SIIT)' },
  { cidr: '64:ff9b:1::/48', rule: 'block', why: 'local-use NAT64' },
  { cidr: '100::/64', rule: 'block', why: 'discard-only' },
  { cidr: '2001::/32', rule: 'block', why: 'Teredo (carries an IPv4 address)' },
  { cidr: '2001::/23', rule: 'block', why: 'IETF protocol assignments (ORCHID, benchmarking, …)' },
  { cidr: '2001:db8::/32', rule: 'block', why: 'documentation' },
  { cidr: '2002::/16', rule: 'block', why: '6to4 (carries an IPv4 address; deprecated)' },
  { cidr: '3fff::/20', rule: 'block', why: 'documentation' },
  { cidr: '5f00::/16', rule: 'block', why: 'SRv6 SIDs' },
  { cidr: 'fc00::/7', rule: 'block', why: 'unique local' },
  { cidr: 'fe80::/10', rule: 'block', why: 'link-local' },
  { cidr: 'fec0::/10', rule: 'block', why: 'site-local (deprecated)' },
  { cidr: 'ff00::/8', rule: 'block', why: 'multicast' },
  { cidr: '::/3', rule: 'block', why: 'not global unicast' },
  { cidr: '4000::/2', rule: 'block', why: 'not global unicast' },
  { cidr: '8000::/1', rule: 'block', why: 'not global unicast' },
];

/** An address as a big-endian 32- or 128-bit number. */
function toBigInt(address: string, family: 4 | 6): bigint | null {
  if (family === 4) {
    const parts = address.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return null;
    return parts.reduce((n, p) => (n << 8n) | BigInt(p), 0n);
  }
  let text = address.toLowerCase();
  let tail: bigint[] = [];
  const [, prefix, dottedQuad] = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text) ?? [];
  if (prefix !== undefined && dottedQuad !== undefined) {
    const v4 = toBigInt(dottedQuad, 4);
    if (v4 === null) return null;
    tail = [v4 >> 16n, v4 & 0xffffn];
    text = prefix.endsWith('::') ? prefix : prefix.slice(0, -1);
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): bigint[] | null => {
    if (s === '') return [];
    const out: bigint[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-f]{1,4}$/.test(g)) return null;
      out.push(BigInt(`0x${g}`));
    }
    return out;
  };
  const head = groups(halves[0] ?? '');
  const rest = halves.length === 2 ? groups(halves[1] ?? '') : [];
  if (!head || !rest) return null;
  const known = head.length + rest.length + tail.length;
  if (halves.length === 1 ? known !== 8 : known > 7) return null;
  const all = [...head, ...Array<bigint>(8 - known).fill(0n), ...rest, ...tail];
  return all.reduce((n, g) => (n << 16n) | g, 0n);
}

interface CompiledRange extends AddressRange {
  readonly family: 4 | 6;
  readonly base: bigint;
  readonly mask: bigint;
}

const COMPILED: readonly CompiledRange[] = NOT_PUBLIC_RANGES.map((r) => {
  const [net, bits] = r.cidr.split('/') as [string, string];
  const family = isIP(net) === 4 ? 4 : 6;
  const width = family === 4 ? 32n : 128n;
  const base = toBigInt(net, family);
  const prefix = BigInt(bits);
  if (base === null || prefix < 0n || prefix > width) throw new Error(`bad range ${r.cidr}`);
  const mask = ((1n << width) - 1n) ^ ((1n << (width - prefix)) - 1n);
  if ((base & mask) !== base) throw new Error(`range ${r.cidr} has host bits set`);
  return { ...r, family, base, mask };
});

/** The first table row `address` falls in, or null when it is public. */
export function notPublicRange(address: string): AddressRange | null {
  const family = isIP(address);
  // A zone index (fe80::1%eth0) only exists for link-local and other scoped addresses.
  if (family === 0 || address.includes('%')) return { cidr: address, rule: 'block', why: 'not an IP address' };
  const n = toBigInt(address, family as 4 | 6);
  if (n === null) return { cidr: address, rule: 'block', why: 'not an IP address' };
  for (const r of COMPILED) {
    if (r.family !== family || (n & r.mask) !== r.base) continue;
    if (r.rule === 'block') return r;
    const v4 = n & 0xffffffffn;
    const embedded = [24n, 16n, 8n, 0n].map((s) => String((v4 >> s) & 0xffn)).join('.');
    return notPublicRange(embedded);
  }
  return null;
}

export function isPublicAddress(address: string): boolean {
  return notPublicRange(address) === null;
}

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** Name resolution, injectable so tests can play a rebinding DNS server. */
export type Resolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) => {
  const all = await lookup(hostname, { all: true, verbatim: true });
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

export type HostResolution =
  | { readonly ok: true; readonly addresses: readonly ResolvedAddress[] }
  | { readonly ok: false; readonly reason: 'not_public' | 'unresolvable'; readonly detail: string };

/**
 * Resolves `hostname` (a name, or an IP literal, bracketed or not) once and checks every address.
 * The addresses returned are the ones to connect to, and the only ones. `allowPrivate` skips
 * the public check (WEBHOOK_ALLOW_PRIVATE_URLS) but not the resolution.
 */
export interface ResolveOptions {
  readonly resolve?: Resolver;
  /** WEBHOOK_ALLOW_PRIVATE_URLS */
  readonly allowPrivate?: boolean;
  /** Which addresses count as public (default isPublicAddress); tests let a loopback address play a public one. */
  readonly isAllowedAddress?: (address: string) => boolean;
}

export async function resolveWebhookHost(hostname: string, opts: ResolveOptions = {}): Promise<HostResolution> {
  const bare = hostname.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  let addresses: readonly ResolvedAddress[];
  if (family !== 0) {
    addresses = [{ address: bare, family: family === 6 ? 6 : 4 }];
  } else {
    try {
      addresses = await (opts.resolve ?? systemResolver)(bare);
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown } | null;
      return { ok: false, reason: 'unresolvable', detail: String(e?.code ?? e?.message ?? err) };
    }
    if (addresses.length === 0) return { ok: false, reason: 'unresolvable', detail: 'no addresses' };
  }
  for (const a of addresses) {
    if (isIP(a.address) === 0) return { ok: false, reason: 'unresolvable', detail: `resolver returned "${a.address}"` };
  }
  if (!opts.allowPrivate) {
    for (const a of addresses) {
      if (opts.isAllowedAddress ? opts.isAllowedAddress(a.address) : isPublicAddress(a.address)) continue;
      const range = notPublicRange(a.address);
      return { ok: false, reason: 'not_public', detail: `${a.address} is not public${range ? `: ${range.cidr} (${range.why})` : ''}` };
    }
  }
  return { ok: true, addresses };
}

export type HostCheck = { readonly ok: true } | { readonly ok: false; readonly reason: 'not_public' | 'unresolvable' };

/** Whether every address of `hostname` (an IP literal or a name) is public. */
export async function checkPublicHost(hostname: string, resolve?: Resolver): Promise<HostCheck> {
  const r = await resolveWebhookHost(hostname, { resolve });
  return r.ok ? { ok: true } : { ok: false, reason: r.reason };
}
