/**
 * Whether something is bound to host:port/udp, read from Linux's /proc/net/udp and udp6 instead of
 * by binding the port: a probe that binds it holds it for a moment, and a sipp starting in that
 * moment fails with EADDRINUSE (one bench:switch run of 8 December was lost so).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/** true or false from the kernel's socket tables; undefined where there are none (not Linux). */
export function udpPortBound(host: string, port: number): boolean | undefined {
  if (!existsSync('/proc/net/udp')) return undefined;
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  // The kernel prints an IPv4 address as one 32-bit word in the host's byte order.
  const octets = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? host.split('.') : undefined;
  const ipHex = octets
    ? (endianness() === 'LE' ? octets.reverse() : octets).map((o) => Number(o).toString(16).toUpperCase().padStart(2, '0')).join('')
    : undefined;
  return [readFileSync('/proc/net/udp', 'utf8'), existsSync('/proc/net/udp6') ? readFileSync('/proc/net/udp6', 'utf8') : '']
    .join('\n')
    .split('\n')
    .some((line) => {
      const local = line.trim().split(/\s+/)[1];
      if (!local?.endsWith(`:${portHex}`)) return false;
      return ipHex === undefined || local.startsWith(`${ipHex}:`) || /^0+:/.test(local);
    });
}

/** Resolves once host:port/udp is bound (by `child`, which must not exit first); not on Linux, after half a second. */
export async function waitForUdpBind(host: string, port: number, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`sipp exited (code ${child.exitCode})`);
    const bound = udpPortBound(host, port);
    if (bound === undefined) {
      await sleep(500);
      return;
    }
    if (bound) return;
    if (Date.now() > deadline) throw new Error(`nothing bound to ${host}:${port}/udp after ${timeoutMs} ms`);
    await sleep(25);
  }
}
