import dgram, { type Socket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { udpPortBound, waitForUdpBind } from './udp-bind';

const linux = existsSync('/proc/net/udp');
const describeOnLinux = linux ? describe : describe.skip;
if (!linux) process.stderr.write('udp-bind: skipped, no /proc/net/udp on this host\n');

function bind(host: string, port = 0): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(port, host, () => resolve(s));
  });
}

function close(s: Socket): Promise<void> {
  return new Promise((r) => s.close(() => r()));
}

async function freePort(host: string): Promise<number> {
  const s = await bind(host);
  const { port } = s.address();
  await close(s);
  return port;
}

describeOnLinux('udpPortBound: from the kernel tables, without taking the port', () => {
  it('sees a socket bound to that address, or to every address, and not one on another port', async () => {
    const s = await bind('127.0.0.2');
    const { port } = s.address();
    try {
      expect(udpPortBound('127.0.0.2', port)).toBe(true);
      expect(udpPortBound('127.0.0.2', port === 65535 ? port - 1 : port + 1)).toBe(false);
      expect(udpPortBound('127.0.0.3', port)).toBe(false);
    } finally {
      await close(s);
    }
    expect(udpPortBound('127.0.0.2', port)).toBe(false);
    const any = await bind('0.0.0.0');
    try {
      expect(udpPortBound('127.0.0.2', any.address().port)).toBe(true);
    } finally {
      await close(any);
    }
  });

  it('never opens a socket of its own while it polls, so it cannot take the port from the process it waits for', async () => {
    const port = await freePort('127.0.0.2');
    const createSocket = jest.spyOn(dgram, 'createSocket');
    let waiting: Promise<void>;
    try {
      waiting = waitForUdpBind('127.0.0.2', port, 5000);
      await new Promise((r) => setTimeout(r, 150));
      expect(createSocket).not.toHaveBeenCalled();
    } finally {
      createSocket.mockRestore();
    }
    const listener = await bind('127.0.0.2', port);
    try {
      await expect(waiting).resolves.toBeUndefined();
    } finally {
      await close(listener);
    }
  });

  it('gives up after its bound when nothing binds', async () => {
    const port = await freePort('127.0.0.2');
    await expect(waitForUdpBind('127.0.0.2', port, 100)).rejects.toThrow(`nothing bound to 127.0.0.2:${port}/udp after 100 ms`);
  });
});
