import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * Webhook URLs are chosen by tenants; without this check a tenant could make the platform POST
 * to its own internal services (SSRF). Every address a host resolves to must be public.
 */
const NOT_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [['::', 127], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) NOT_PUBLIC.addSubnet(net, prefix, 'ipv6');

export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return !NOT_PUBLIC.check(mapped[1]!, 'ipv4');
  return !NOT_PUBLIC.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export type HostCheck = { readonly ok: true } | { readonly ok: false; readonly reason: 'not_public' | 'unresolvable' };

/** Whether every address of `hostname` (an IP literal or a name) is public. */
export async function checkPublicHost(hostname: string): Promise<HostCheck> {
  const bare = hostname.replace(/^\[|\]$/g, '');
  if (isIP(bare)) return isPublicAddress(bare) ? { ok: true } : { ok: false, reason: 'not_public' };
  try {
    const addresses = await lookup(bare, { all: true, verbatim: true });
    if (addresses.length === 0) return { ok: false, reason: 'unresolvable' };
    return addresses.every((a) => isPublicAddress(a.address)) ? { ok: true } : { ok: false, reason: 'not_public' };
  } catch {
    return { ok: false, reason: 'unresolvable' };
  }
}
