import type { AddressInfo } from 'node:net';
import * as smpp from 'smpp';

/** A submit_sm the SMS centre took: every field as the library decoded it. */
export interface Submitted {
  readonly messageId: string;
  readonly pdu: smpp.PDU;
  readonly sourceAddr: string;
  readonly destinationAddr: string;
  readonly text: string;
  readonly udh: readonly Buffer[];
  readonly dataCoding: number;
}

/**
 * An SMS centre played by the `smpp` library's own server: takes binds (one system id and
 * password), answers enquire_link, takes submit_sm (or refuses them while `refuseWith` is set),
 * and sends deliver_sm (messages to X, delivery receipts) to the bound ESME.
 */
export class TestSmsc {
  readonly submitted: Submitted[] = [];
  readonly binds: string[] = [];
  enquireLinks = 0;
  /** A command_status to refuse submit_sm with (0: take them). */
  refuseWith = 0;
  private server!: smpp.Server;
  private sessions = new Set<smpp.Session>();
  private counter = 0;

  constructor(
    readonly systemId = 'numguard',
    readonly password = 'secret12',
  ) {}

  async start(): Promise<number> {
    this.server = smpp.createServer({}, (session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
      session.on('error', () => undefined);
      session.on('bind_transceiver', (pdu: smpp.PDU) => {
        const ok = pdu.system_id === this.systemId && pdu.password === this.password;
        this.binds.push(String(pdu.system_id));
        session.send(pdu.response({ command_status: ok ? smpp.ESME_ROK : smpp.ESME_RBINDFAIL }));
      });
      session.on('enquire_link', (pdu: smpp.PDU) => {
        this.enquireLinks++;
        session.send(pdu.response());
      });
      session.on('unbind', (pdu: smpp.PDU) => {
        session.send(pdu.response());
        session.close();
      });
      session.on('submit_sm', (pdu: smpp.PDU) => {
        if (this.refuseWith !== 0) {
          session.send(pdu.response({ command_status: this.refuseWith }));
          return;
        }
        const messageId = `smsc-${++this.counter}`;
        const sm = pdu.short_message as { udh?: Buffer[]; message: string };
        this.submitted.push({
          messageId,
          pdu,
          sourceAddr: String(pdu.source_addr),
          destinationAddr: String(pdu.destination_addr),
          text: sm.message,
          udh: sm.udh ?? [],
          dataCoding: Number(pdu.data_coding),
        });
        session.send(pdu.response({ message_id: messageId }));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    return (this.server.address() as AddressInfo).port;
  }

  get boundSessions(): number {
    return this.sessions.size;
  }

  /** Sends a deliver_sm to every bound ESME; resolves with the response's command_status. */
  deliver(fields: Record<string, unknown>): Promise<number> {
    const session = [...this.sessions][0];
    if (!session) return Promise.reject(new Error('no ESME is bound'));
    return new Promise((resolve) => session.deliver_sm({ source_addr_ton: 0, source_addr_npi: 1, dest_addr_ton: 0, dest_addr_npi: 1, ...fields }, (r) => resolve(r.command_status)));
  }

  /** A text to X; `udh` or sar_ fields make it one part of a concatenated message. */
  text(from: string, x: string, message: string, extra: Record<string, unknown> = {}): Promise<number> {
    const ucs2 = /[^\x20-\x7e]/.test(message);
    const { udh, ...rest } = extra as { udh?: Buffer };
    return this.deliver({ source_addr: from, destination_addr: x, data_coding: ucs2 ? 8 : 0, short_message: udh ? { udh, message } : { message }, ...rest });
  }

  /** A delivery receipt for a submitted message, in the usual text form and the TLVs. */
  receipt(messageId: string, stat: 'DELIVRD' | 'UNDELIV' | 'ENROUTE'): Promise<number> {
    const state = { DELIVRD: 2, UNDELIV: 5, ENROUTE: 1 }[stat];
    return this.deliver({
      source_addr: '10086',
      destination_addr: '10086',
      esm_class: 0x04,
      short_message: { message: `id:${messageId} sub:001 dlvrd:001 submit date:2612020000 done date:2612020001 stat:${stat} err:000 text:` },
      receipted_message_id: messageId,
      message_state: state,
    });
  }

  /** Drops every link, as a network fault would. */
  dropLinks(): void {
    for (const s of this.sessions) s.socket.destroy();
  }

  async stop(): Promise<void> {
    this.dropLinks();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
