/**
 * The SIP front (kamailio-conf/) with Debian's kamailio: carriers' INVITEs for X are spread over
 * the switches, in-dialog requests follow the switch that took the call, a switch that stops
 * answering is skipped (at once for the call it dropped, by the OPTIONS probes afterwards) and
 * taken back when it answers again, and a sender outside the carriers' network is refused.
 * The switches are stand-ins that answer SIP (fake-switch.ts): what is under test is Kamailio
 * running this configuration. Skipped, saying so, where kamailio or sipp is not installed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { waitUntil } from '../support/wait';
import { FakeSwitch } from './fake-switch';

const CONFIG = resolve(__dirname, '../../kamailio-conf/kamailio.cfg');
const SCENARIO = resolve(__dirname, 'uac-through-front.xml');
const X = '700100000000001';

const installed = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const missing = ['kamailio', 'sipp'].filter((bin) => !installed(bin));
if (missing.length > 0) {
  console.warn(`SIP front tests skipped: ${missing.join(' and ')} not installed (Debian packages kamailio, sip-tester)`);
}
const describeFront = missing.length === 0 ? describe : describe.skip;

async function freeUdpPort(host: string): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, host, r));
  const { port } = socket.address();
  await new Promise<void>((r) => socket.close(() => r()));
  return port;
}

/** sipp as a carrier placing `calls` calls to X through the front, one at a time; resolves with its exit code. */
async function carrierCalls(frontPort: number, calls: number): Promise<number | null> {
  const port = await freeUdpPort('127.0.0.1');
  const child = spawn('sipp', [`127.0.0.1:${String(frontPort)}`, '-sf', SCENARIO, '-s', X, '-i', '127.0.0.1', '-p', String(port),
    '-m', String(calls), '-l', '1', '-r', '20', '-timeout', '30s', '-timeout_error'], { stdio: 'ignore' });
  return new Promise((r) => child.on('exit', (code) => r(code)));
}

/** One INVITE for X sent from `fromHost`; resolves with the first final status the front answers. */
async function finalStatusFor(frontPort: number, fromHost: string): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, fromHost, r));
  const { port } = socket.address();
  const callId = `probe-${String(Date.now())}-${String(Math.random()).slice(2)}@${fromHost}`;
  const invite = [
    `INVITE sip:${X}@127.0.0.1:${String(frontPort)} SIP/2.0`,
    `Via: SIP/2.0/UDP ${fromHost}:${String(port)};branch=z9hG4bK${String(Date.now())};rport`,
    `From: <sip:13800000001@${fromHost}>;tag=raw`,
    `To: <sip:${X}@127.0.0.1>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:13800000001@${fromHost}:${String(port)}>`,
    'Max-Forwards: 70',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  try {
    return await new Promise<number>((resolveStatus, reject) => {
      const timer = setTimeout(() => reject(new Error('no final answer from the front within 10 s')), 10_000);
      socket.on('message', (msg) => {
        const status = Number(/^SIP\/2\.0 (\d{3})/.exec(msg.toString())?.[1]);
        if (status >= 200) {
          clearTimeout(timer);
          resolveStatus(status);
        }
      });
      socket.send(invite, frontPort, '127.0.0.1');
    });
  } finally {
    await new Promise<void>((r) => socket.close(() => r()));
  }
}

describeFront('SIP front: Kamailio dispatcher over the switch fleet', () => {
  const fs1 = new FakeSwitch('fs1');
  const fs2 = new FakeSwitch('fs2');
  let kamailio: ChildProcess | undefined;
  let frontPort = 0;
  let dir = '';
  const stderr: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'numguard-front-'));
    const [p1, p2] = [await fs1.start(), await fs2.start()];
    writeFileSync(join(dir, 'dispatcher.list'), `1 sip:127.0.0.1:${String(p1)} 0 0 name=fs1\n1 sip:127.0.0.1:${String(p2)} 0 0 name=fs2\n`);
    frontPort = await freeUdpPort('127.0.0.1');
    kamailio = spawn('kamailio', ['-DD', '-E', '-f', CONFIG, '-Y', dir,
      '-A', `LISTEN=udp:127.0.0.1:${String(frontPort)}`,
      '-A', `DISPATCHER_LIST="${join(dir, 'dispatcher.list')}"`,
      '-A', 'CARRIER_NET="127.0.0.1/32"',
      '-A', 'PROBE_INTERVAL=1',
      '-A', 'SWITCH_SILENCE_MS=1000'], { stdio: ['ignore', 'ignore', 'pipe'] });
    kamailio.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
    await waitUntil('both switches probed with OPTIONS', () => fs1.log.options > 0 && fs2.log.options > 0, 15_000);
  }, 30_000);

  afterAll(async () => {
    kamailio?.kill('SIGTERM');
    await fs1.stop();
    await fs2.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  afterEach(() => {
    if (expect.getState().assertionCalls === 0) console.log(stderr.join('').slice(-4000));
  });

  it('spreads calls over both switches; ACK and BYE reach the switch that took the INVITE', async () => {
    expect(await carrierCalls(frontPort, 6)).toBe(0);
    expect(fs1.log.invites.length).toBeGreaterThanOrEqual(2);
    expect(fs2.log.invites.length).toBeGreaterThanOrEqual(2);
    expect(fs1.log.invites.length + fs2.log.invites.length).toBe(6);
    for (const sw of [fs1, fs2]) {
      expect([...sw.log.acks].sort()).toEqual([...sw.log.invites].sort());
      expect([...sw.log.byes].sort()).toEqual([...sw.log.invites].sort());
    }
  }, 60_000);

  it('a switch that stops answering is skipped: every call still connects, on the other one', async () => {
    fs2.silent = true;
    const before = { fs1: fs1.log.invites.length, fs2: fs2.log.invites.length };
    expect(await carrierCalls(frontPort, 4)).toBe(0);
    expect(fs1.log.invites.length - before.fs1).toBe(4);
    expect(fs2.log.invites.length - before.fs2).toBe(0);
  }, 60_000);

  it('with no switch answering, the carrier gets 503 (try another route), not a timeout', async () => {
    fs1.silent = true;
    fs2.silent = true;
    expect(await finalStatusFor(frontPort, '127.0.0.1')).toBe(503);
  }, 30_000);

  it('a switch answering the probes again is taken back', async () => {
    fs1.silent = false;
    fs2.silent = false;
    const probes = fs2.log.options;
    await waitUntil('fs2 answering probes again', () => fs2.log.options > probes, 10_000);
    const before = fs2.log.invites.length;
    await waitUntil('fs2 back in the rotation', async () => {
      expect(await carrierCalls(frontPort, 2)).toBe(0);
      return fs2.log.invites.length > before;
    }, 20_000, 500);
  }, 60_000);

  it('refuses an INVITE from outside the carriers network with 403, reaching no switch', async () => {
    const before = fs1.log.invites.length + fs2.log.invites.length;
    expect(await finalStatusFor(frontPort, '127.0.0.3')).toBe(403);
    expect(fs1.log.invites.length + fs2.log.invites.length).toBe(before);
  }, 30_000);
});
