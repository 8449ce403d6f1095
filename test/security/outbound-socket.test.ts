import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { EslOutboundServer, peerMatcher } from '../../src/esl/outbound-server';
import { startTestSystem, type TestSystem } from '../support/system';

/**
 * The outbound socket is where a switch hands the controller a call to X. Whoever reaches it and
 * is believed gets a bridge to a real number. It listens on loopback by default, drops peers that
 * are not switches before reading a byte, bounds what a peer can make it buffer, and acts only on
 * channel data that names a switch the controller drives.
 */

/** A peer that plays a switch's side of the outbound socket: answers connect/myevents/nixevent/linger. */
function fakeSwitch(
  target: { host: string; port: number },
  channelData: Record<string, string>,
  enough: (received: string) => boolean = () => false,
): Promise<{ received: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(target.port, target.host);
    let received = '';
    const headers = Object.entries(channelData).map(([k, v]) => `${k}: ${encodeURIComponent(v)}`).join('\n');
    socket.on('data', (d) => {
      const before = received;
      received += d.toString();
      if (!before.includes('connect\n\n') && received.includes('connect\n\n')) {
        socket.write(`Content-Type: command/reply\nReply-Text: %2BOK%0A\nSocket-Mode: async\nControl: full\n${headers}\n\n`);
      }
      for (const cmd of ['myevents', 'nixevent', 'linger']) {
        if (!new RegExp(`(^|\n)${cmd}[^\n]*\n\n`).test(before) && new RegExp(`(^|\n)${cmd}[^\n]*\n\n`).test(received)) {
          socket.write('Content-Type: command/reply\nReply-Text: +OK\n\n');
        }
      }
      if (enough(received)) {
        resolve({ received, closed: false });
        socket.destroy();
      }
    });
    socket.on('close', () => resolve({ received, closed: true }));
    socket.on('error', () => undefined);
  });
}

function channelData(coreUuid: string, caller: string, x: string): Record<string, string> {
  const uuid = randomUUID();
  return {
    'Event-Name': 'CHANNEL_DATA', 'Core-UUID': coreUuid, 'Unique-ID': uuid, 'Channel-Unique-ID': uuid,
    'Caller-Caller-ID-Number': caller, 'Caller-Destination-Number': x, 'Channel-Name': `sofia/external/${caller}@127.0.0.1`,
  };
}

describe('the outbound socket trusts only the switches it drives', () => {
  it('listens on loopback by default; the allow-list is validated and names the variable', () => {
    const config = loadConfig({ ESL_PASSWORD: 'x', ESL_HOST: '10.1.2.3' });
    expect(config.outboundSocket.host).toBe('127.0.0.1');
    expect(config.outboundSocket.allowedPeers).toEqual(['127.0.0.0/8', '::1', '10.1.2.3']);
    expect(loadConfig({ ESL_PASSWORD: 'x', OUTBOUND_SOCKET_ALLOW: '10.0.0.0/24, 10.0.1.7' }).outboundSocket.allowedPeers).toEqual(['10.0.0.0/24', '10.0.1.7']);
    expect(() => loadConfig({ ESL_PASSWORD: 'x', OUTBOUND_SOCKET_ALLOW: 'fs1.example.com' })).toThrow(/OUTBOUND_SOCKET_ALLOW/);
    expect(() => loadConfig({ ESL_PASSWORD: 'x', OUTBOUND_SOCKET_ALLOW: '10.0.0.0/33' })).toThrow(/OUTBOUND_SOCKET_ALLOW/);
  });

  it('drops a peer that is not an allowed switch address before sending or reading anything', async () => {
    const server = new EslOutboundServer({ host: '127.0.0.1', port: 0, logger: createLogger('silent'), commandTimeoutMs: 2000, allowedPeers: peerMatcher(['10.9.9.9']) });
    let sessions = 0;
    server.on('session', () => sessions++);
    const addr = await server.listen();
    try {
      const { received, closed } = await fakeSwitch(addr, channelData(randomUUID(), '13800000001', '700100000000001'));
      expect(closed).toBe(true);
      expect(received).toBe('');
      expect(sessions).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('drops a peer that sends an endless header block instead of buffering it', async () => {
    const server = new EslOutboundServer({ host: '127.0.0.1', port: 0, logger: createLogger('silent'), commandTimeoutMs: 30_000 });
    const addr = await server.listen();
    try {
      const socket = net.connect(addr.port, addr.host);
      socket.on('error', () => undefined);
      const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(written)));
      let written = 0;
      const line = `X-Filler: ${'a'.repeat(1000)}\n`;
      const pump = (): void => {
        while (!socket.destroyed && written < 8 << 20) {
          written += line.length;
          if (!socket.write(line)) return void socket.once('drain', pump);
        }
      };
      socket.once('connect', pump);
      // Closed by the server well before the 8 MB are sent (its limit is 256 KB), not by a timeout.
      expect(await closed).toBeLessThan(8 << 20);
    } finally {
      await server.close();
    }
  });

  describe('with the whole controller', () => {
    let sys: TestSystem;
    beforeAll(async () => {
      sys = await startTestSystem();
      await sys.app.bindings.importNumbers(sys.tenantId, [{ x: '700100000006001', area: '010' }]);
      await sys.app.bindings.bind({ tenantId: sys.tenantId, mode: 'axb', a: '13800006001', b: '13900006001', x: '700100000006001' });
    });
    afterAll(async () => {
      await sys?.stop();
    });

    it("ignores channel data that names no switch of the fleet: no bridge, the real number goes nowhere", async () => {
      const forged = await fakeSwitch(sys.app.outboundAddress, channelData(randomUUID(), '13800006001', '700100000006001'));
      expect(forged.closed).toBe(true);
      expect(forged.received).not.toContain('sendmsg');
      expect(forged.received).not.toContain('13900006001');

      // The same call from the switch the controller is connected to is routed.
      sys.sim.setPhone('13900006001', { answer: 'answer', hangupAfterMs: 100 });
      const genuine = await fakeSwitch(sys.app.outboundAddress, channelData(sys.sim.coreUuid, '13800006001', '700100000006001'), (r) =>
        r.includes('execute-app-name: bridge'),
      );
      expect(genuine.received).toContain('execute-app-name: bridge');
    });
  });
});
