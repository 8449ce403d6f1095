import { createHash } from 'node:crypto';
import * as smpp from 'smpp';
import type { AppConfig } from '../config';
import { normalizePhoneNumber } from '../domain/phone-number';
import type { Logger } from '../logger';
import { CarrierError, type CarrierSink, type MessageCarrier, type OutboundMessage, type SentMessage } from './carrier';
import type { PartAssembly } from './part-assembly';
import { concatenationFromSar, concatenationOf, concatenationUdh, segmentText, type ReceivedPart } from './text-segments';

export type SmppLink = NonNullable<AppConfig['messages']['smpp']>;

const DATA_CODING = { gsm7: 0x00, ucs2: 0x08 } as const;
const ESM_RECEIPT = 0x04;
/** Carrier statuses worth another try later: throttled, queue full, system error, temporary. */
const RETRYABLE = new Set([smpp.ESME_RTHROTTLED, smpp.ESME_RMSGQFUL, smpp.ESME_RSYSERR, smpp.ESME_RX_T_APPN]);

interface ShortMessage {
  readonly udh?: readonly Buffer[];
  readonly message?: string | Buffer;
}

/**
 * SMPP 3.4 to an SMS centre, as an ESME bound as transceiver: submit_sm with X as the source
 * (nothing else of the sender's goes into the PDU), deliver_sm for messages to X and for delivery
 * receipts, enquire_link every SMPP_ENQUIRE_LINK_SECONDS, and a new bind with capped backoff
 * whenever the link drops. A deliver_sm is acknowledged only once its message is queued (or its
 * part stored, or its receipt recorded); otherwise the SMS centre is told to try again.
 */
export class SmppCarrier implements MessageCarrier {
  readonly transport = 'smpp' as const;
  private session: smpp.Session | undefined;
  private bound = false;
  private stopped = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private boundWaiters: Array<() => void> = [];

  constructor(
    private readonly link: SmppLink,
    private readonly sink: CarrierSink,
    private readonly parts: PartAssembly,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'smpp' });
  }

  get isBound(): boolean {
    return this.bound;
  }

  /** Connects and binds; resolves at the first bind (or when stopped), and keeps the link up from then on. */
  start(): Promise<void> {
    const first = new Promise<void>((resolve) => this.boundWaiters.push(resolve));
    this.connect();
    return first;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    for (const w of this.boundWaiters.splice(0)) w();
    const session = this.session;
    this.session = undefined;
    this.bound = false;
    if (!session) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => session.destroy(() => resolve()), 1000);
      const sent = session.unbind({}, () => {
        clearTimeout(timer);
        session.close(() => resolve());
      });
      if (!sent) {
        clearTimeout(timer);
        session.destroy(() => resolve());
      }
    });
  }

  async send(message: OutboundMessage): Promise<SentMessage> {
    const session = this.session;
    if (!session || !this.bound) throw new CarrierError('smpp_not_bound', true, 'the SMPP link is not bound');
    const { encoding, parts } = segmentText(message.text);
    const reference = createHash('sha256').update(message.messageId).digest()[0] ?? 0;
    const carrierIds: string[] = [];
    for (const [i, text] of parts.entries()) {
      const shortMessage = parts.length > 1 ? { udh: concatenationUdh(reference, parts.length, i + 1), message: text } : { message: text };
      const resp = await this.request(session, (cb) =>
        session.submit_sm(
          {
            source_addr_ton: 0,
            source_addr_npi: 1,
            source_addr: message.from,
            dest_addr_ton: 0,
            dest_addr_npi: 1,
            destination_addr: message.to,
            registered_delivery: 1,
            data_coding: DATA_CODING[encoding],
            short_message: shortMessage,
          },
          cb,
        ),
      );
      if (resp.command_status !== smpp.ESME_ROK) {
        throw new CarrierError(`smpp_status_${resp.command_status}`, RETRYABLE.has(resp.command_status), `submit_sm refused with status ${resp.command_status}`);
      }
      carrierIds.push(String(resp.message_id));
    }
    return { carrierIds };
  }

  private request(session: smpp.Session, send: (cb: (pdu: smpp.PDU) => void) => boolean): Promise<smpp.PDU> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new CarrierError('smpp_timeout', true, 'no response from the SMS centre')), this.link.responseTimeoutMs);
      const onClose = (): void => {
        clearTimeout(timer);
        reject(new CarrierError('smpp_link_lost', true, 'the SMPP link dropped before the response'));
      };
      session.once('close', onClose);
      const written = send((pdu) => {
        clearTimeout(timer);
        session.off('close', onClose);
        resolve(pdu);
      });
      if (!written) {
        clearTimeout(timer);
        session.off('close', onClose);
        reject(new CarrierError('smpp_not_bound', true, 'the SMPP link is not writable'));
      }
    });
  }

  private connect(): void {
    if (this.stopped) return;
    const session = smpp.connect({ host: this.link.host, port: this.link.port, auto_enquire_link_period: this.link.enquireLinkSeconds * 1000 });
    this.session = session;
    session.on('connect', () => {
      session.bind_transceiver({ system_id: this.link.systemId, password: this.link.password, system_type: this.link.systemType, interface_version: 0x34 }, (pdu) => {
        if (pdu.command_status !== smpp.ESME_ROK) {
          this.log.error({ status: pdu.command_status }, 'SMS centre refused the bind');
          session.destroy();
          return;
        }
        this.bound = true;
        this.attempt = 0;
        this.log.info({ host: this.link.host, port: this.link.port }, 'SMPP link bound (transceiver)');
        for (const w of this.boundWaiters.splice(0)) w();
      });
    });
    session.on('enquire_link', (pdu: smpp.PDU) => session.send(pdu.response()));
    session.on('unbind', (pdu: smpp.PDU) => {
      session.send(pdu.response());
      session.close();
    });
    session.on('deliver_sm', (pdu: smpp.PDU) => {
      this.onDeliver(pdu)
        .then(() => session.send(pdu.response()))
        .catch((err: unknown) => {
          this.log.error({ err }, 'deliver_sm not taken; the SMS centre will send it again');
          session.send(pdu.response({ command_status: smpp.ESME_RX_T_APPN }));
        });
    });
    session.on('error', (err: Error) => this.log.warn({ err: { message: err.message } }, 'SMPP link error'));
    session.on('close', () => {
      if (this.session !== session) return;
      this.bound = false;
      this.session = undefined;
      if (this.stopped) return;
      const delay = Math.min(this.link.reconnectMaxMs, this.link.reconnectMinMs * 2 ** this.attempt);
      this.attempt++;
      this.log.warn({ delayMs: delay }, 'SMPP link down; binding again');
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
  }

  private async onDeliver(pdu: smpp.PDU): Promise<void> {
    const esm = typeof pdu.esm_class === 'number' ? pdu.esm_class : 0;
    const sm = (pdu.short_message ?? {}) as ShortMessage;
    const payload = pdu.message_payload as ShortMessage | undefined;
    const text = textOf(payload?.message) || textOf(sm.message);
    if ((esm & 0x3c) === ESM_RECEIPT) {
      const receipt = parseReceipt(text, pdu.receipted_message_id, pdu.message_state);
      if (!receipt) {
        this.log.debug('delivery receipt without a message id, or not final, ignored');
        return;
      }
      await this.sink.report({ transport: 'smpp', carrierId: receipt.id, delivered: receipt.delivered, status: receipt.status, at: Date.now() });
      return;
    }
    const x = typeof pdu.destination_addr === 'string' ? normalizePhoneNumber(pdu.destination_addr)?.digits : undefined;
    const sender = typeof pdu.source_addr === 'string' ? normalizePhoneNumber(pdu.source_addr)?.digits : undefined;
    if (!x || !sender) {
      this.log.warn('deliver_sm with an unreadable source or destination ignored');
      return;
    }
    const concatenation =
      concatenationOf(sm.udh ?? []) ??
      concatenationFromSar(numberOrUndefined(pdu.sar_msg_ref_num), numberOrUndefined(pdu.sar_total_segments), numberOrUndefined(pdu.sar_segment_seqnum));
    let whole: string | null = text;
    if (concatenation && concatenation.total > 1) {
      const part: ReceivedPart = { ...concatenation, text };
      whole = await this.parts.add('smpp', x, sender, part);
      if (whole === null) return;
    }
    await this.sink.inbound({ transport: 'smpp', x, sender, text: whole, parts: concatenation?.total ?? 1, receivedAt: Date.now() });
  }
}

function textOf(value: string | Buffer | undefined): string {
  if (value === undefined) return '';
  return typeof value === 'string' ? value : value.toString('utf8');
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === 'number' ? value : undefined;
}

/** MESSAGE_STATE values of SMPP 3.4 §5.2.28: reached the handset; not final yet (en route, accepted). */
const STATE_DELIVERED = 2;
const STATES_PENDING = new Set([1, 6]);
const STATS_PENDING = new Set(['ENROUTE', 'ACCEPTD']);

/**
 * A receipt's id and final outcome: the receipted_message_id and message_state TLVs, or the text
 * form (`id:… stat:DELIVRD`). null for a receipt without an id, and for one that is not final.
 */
export function parseReceipt(text: string, receiptedId: unknown, state: unknown): { id: string; delivered: boolean; status: string } | null {
  const idText = /\bid:(\S+)/i.exec(text)?.[1];
  const stat = /\bstat:(\w+)/i.exec(text)?.[1]?.toUpperCase();
  const id = typeof receiptedId === 'string' && receiptedId !== '' ? receiptedId : idText;
  if (!id) return null;
  if (stat) return STATS_PENDING.has(stat) ? null : { id, delivered: stat === 'DELIVRD', status: stat };
  if (typeof state === 'number') return STATES_PENDING.has(state) ? null : { id, delivered: state === STATE_DELIVERED, status: `state_${state}` };
  return null;
}
