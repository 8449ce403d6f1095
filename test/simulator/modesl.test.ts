/** The real modesl client talks to the simulator. */
import { FreeSwitchSimulator } from './FreeSwitchSimulator';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const esl = require('modesl') as { Connection: new (h: string, p: number, pw: string, cb: () => void) => EslConn };
interface EslEvent { getHeader(n: string): string | undefined; getBody(): string }
interface EslConn {
  on(ev: string, cb: (e: EslEvent) => void): void;
  subscribe(evs: string[], cb?: () => void): void;
  bgapi(cmd: string, args: string, cb: (e: EslEvent) => void): void;
  api(cmd: string, cb: (e: EslEvent) => void): void;
  disconnect(): void;
  events(type: string, evs: string | string[], cb?: () => void): void;
}

describe('simulator with modesl 1.2.1', () => {
  it('originate via bgapi, events and job result arrive', async () => {
    const sim = new FreeSwitchSimulator({ timeScale: 0.01 });
    const { host, port } = await sim.start();
    const uuid = '11111111-2222-4333-8444-555555555555';
    const seen: string[] = [];
    const conn = await new Promise<EslConn>((resolve) => { const c: EslConn = new esl.Connection(host, port, 'ClueCon', () => resolve(c)); });
    conn.on('error', () => undefined);
    await new Promise<void>((r) => conn.events('plain', 'CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_PARK BACKGROUND_JOB', () => r()));
    conn.on('esl::event::**', (e) => { seen.push(e.getHeader('Event-Name') ?? '?'); });
    const job = await new Promise<string>((r) => conn.bgapi('originate', `{origination_uuid=${uuid},origination_caller_id_number=700100000000001}sofia/internal/13800000001@127.0.0.1:5090 &park()`, (e) => r(e.getBody())));
    expect(job).toBe(`+OK ${uuid}\n`);
    const exists = await new Promise<string>((r) => conn.api(`uuid_exists ${uuid}`, (e) => r(e.getBody())));
    expect(exists).toBe('true');
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toEqual(expect.arrayContaining(['CHANNEL_CREATE', 'CHANNEL_ANSWER', 'BACKGROUND_JOB', 'CHANNEL_PARK']));
    expect(sim.originateCount(uuid)).toBe(1);
    expect(sim.invitesTo('13800000001')[0]).toMatchObject({ fromUser: '700100000000001', fromDisplay: null });
    conn.disconnect();
    await new Promise((r) => setTimeout(r, 20));
    await sim.stop();
  }, 15000);
});
