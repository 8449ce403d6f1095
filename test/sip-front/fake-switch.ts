import { createSocket, type Socket } from 'node:dgram';

/** What one stand-in switch saw, by request method, as Call-IDs. */
export interface SwitchLog {
  readonly invites: string[];
  readonly acks: string[];
  readonly byes: string[];
  options: number;
}

/**
 * A switch's external profile reduced to what the SIP front relies on: it answers OPTIONS
 * probes, answers INVITEs with 200 OK (keeping the Record-Route set, as a UAS must), and
 * answers BYE. `silent` makes it drop everything, like a switch that has died.
 */
export class FakeSwitch {
  readonly log: SwitchLog = { invites: [], acks: [], byes: [], options: 0 };
  silent = false;
  private readonly socket: Socket = createSocket('udp4');
  private tag = 0;

  constructor(readonly name: string) {}

  async start(host = '127.0.0.1'): Promise<number> {
    this.socket.on('message', (msg, from) => {
      this.handle(msg.toString('utf8'), from.address, from.port);
    });
    await new Promise<void>((resolve) => this.socket.bind(0, host, resolve));
    return this.socket.address().port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private handle(text: string, address: string, port: number): void {
    if (this.silent || text.startsWith('SIP/2.0')) return;
    const [startLine = '', ...rest] = text.split('\r\n');
    const method = startLine.split(' ')[0] ?? '';
    const headers = rest.slice(0, rest.indexOf(''));
    const all = (name: string): string[] =>
      headers.filter((h) => h.toLowerCase().startsWith(`${name.toLowerCase()}:`));
    const callId = (all('Call-ID')[0] ?? '').replace(/^[^:]*:\s*/, '');
    switch (method) {
      case 'OPTIONS':
        this.log.options++;
        this.reply(headers, '200 OK', address, port, false);
        return;
      case 'INVITE':
        this.log.invites.push(callId);
        this.reply(headers, '200 OK', address, port, true);
        return;
      case 'ACK':
        this.log.acks.push(callId);
        return;
      case 'BYE':
        this.log.byes.push(callId);
        this.reply(headers, '200 OK', address, port, false);
        return;
      default:
        this.reply(headers, '405 Method Not Allowed', address, port, false);
    }
  }

  private reply(headers: string[], status: string, address: string, port: number, dialog: boolean): void {
    const keep = headers.filter((h) => /^(via|from|call-id|cseq|record-route):/i.test(h));
    const to = headers.find((h) => /^to:/i.test(h)) ?? 'To: <sip:unknown@invalid>';
    const lines = [`SIP/2.0 ${status}`, ...keep, /;tag=/.test(to) ? to : `${to};tag=${this.name}-${++this.tag}`];
    if (dialog) lines.push(`Contact: <sip:${this.name}@${this.socket.address().address}:${this.socket.address().port}>`);
    lines.push('Content-Length: 0', '', '');
    this.socket.send(lines.join('\r\n'), port, address);
  }
}
