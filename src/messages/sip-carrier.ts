import { randomUUID } from 'node:crypto';
import type { AppConfig } from '../config';
import { normalizePhoneNumber } from '../domain/phone-number';
import type { EslEvent } from '../esl/event';
import type { Logger } from '../logger';
import { CarrierError, type CarrierSink, type MessageCarrier, type OutboundMessage, type SentMessage } from './carrier';

export type SipMessaging = AppConfig['messages']['sip'];

/** What the switch must send the controller: mod_sms's chatplan `fire` (MESSAGE) and its delivery reports. */
export const MESSAGE_EVENTS = ['MESSAGE', 'CUSTOM', 'SMS::DELIVERY_REPORT'] as const;

/** The header the chatplan (freeswitch-conf/chatplan/) sets on a message to X before firing it. */
export const RELAY_MARKER = 'ng_relay';
/** The header a relayed MESSAGE carries through mod_sms into its delivery report. */
export const CARRIER_ID_HEADER = 'ng_carrier_id';
/** ESL filters letting through what MESSAGE_EVENTS subscribes to: texts the chatplan marked for relay, and delivery reports. */
export const MESSAGE_EVENT_FILTERS: ReadonlyArray<readonly [string, string]> = [
  [RELAY_MARKER, 'true'],
  ['Event-Subclass', 'SMS::DELIVERY_REPORT'],
];

export interface SipSwitch {
  sendEvent(name: string, headers: Record<string, string>, body: string): Promise<string>;
  on(event: 'event', listener: (e: EslEvent) => void): unknown;
  off(event: 'event', listener: (e: EslEvent) => void): unknown;
}

/**
 * SIP MESSAGE through FreeSWITCH (mod_sms). In: the carrier sends MESSAGE to X on the external
 * profile, sofia answers 202 and hands it to the chatplan, whose `fire` passes it to the
 * controller as a MESSAGE event. Out: `sendevent CUSTOM SMS::SEND_MESSAGE` makes mod_sms send a
 * MESSAGE through sofia, From X (`"X" <sip:X@MESSAGE_SIP_FROM_HOST>`, nothing else of the sender),
 * to MESSAGE_SIP_URI_TEMPLATE; sent `blocking`, the carrier's final answer comes back as
 * SMS::DELIVERY_REPORT (Status Success or Failure, Delivery-Result-Code). A SIP text goes out in
 * one MESSAGE: the carrier's SMS interworking splits it for the handset.
 */
export class SipCarrier implements MessageCarrier {
  readonly transport = 'sip' as const;
  private readonly log: Logger;
  private readonly onEvent = (e: EslEvent): void => {
    if (e.name === 'MESSAGE') this.onMessage(e);
    else if (e.name === 'CUSTOM' && e.header('Event-Subclass') === 'SMS::DELIVERY_REPORT') this.onReport(e);
  };

  constructor(
    private readonly esl: SipSwitch,
    private readonly sip: SipMessaging,
    private readonly sink: CarrierSink,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'sip-messages' });
    esl.on('event', this.onEvent);
  }

  stop(): void {
    this.esl.off('event', this.onEvent);
  }

  async send(message: OutboundMessage): Promise<SentMessage> {
    const carrierId = randomUUID();
    const to = `${this.sip.profile}/${this.sip.uriTemplate.replace('{number}', message.to)}`;
    try {
      await this.esl.sendEvent(
        'CUSTOM',
        {
          'Event-Subclass': 'SMS::SEND_MESSAGE',
          proto: 'global',
          // sofia's chat interface is named `sip` (`Invalid chat interface [sofia]` otherwise).
          dest_proto: 'sip',
          from: `${message.from}@${this.sip.fromHost}`,
          to,
          sip_profile: this.sip.profile,
          type: 'text/plain',
          blocking: 'true',
          [CARRIER_ID_HEADER]: carrierId,
        },
        message.text,
      );
    } catch (err) {
      throw new CarrierError('switch_unavailable', true, `the switch did not take the message: ${(err as Error).message}`);
    }
    return { carrierIds: [carrierId] };
  }

  private onMessage(e: EslEvent): void {
    // mod_sms fires the processed message again (Nonblocking-Delivery / Delivery-Failure): only the chatplan's own fire counts.
    if (e.header(RELAY_MARKER) !== 'true' || e.header('Nonblocking-Delivery') !== undefined || e.header('Delivery-Failure') !== undefined) return;
    const x = normalizePhoneNumber(e.header('to_user') ?? '')?.digits;
    const sender = normalizePhoneNumber(e.header('from_user') ?? '')?.digits;
    if (!x || !sender) {
      this.log.warn('MESSAGE with an unreadable sender or X ignored');
      return;
    }
    const text = e.body ?? '';
    this.sink.inbound({ transport: 'sip', x, sender, text, parts: 1, receivedAt: Date.now() }).catch((err: unknown) => {
      // sofia has answered 202 already: the carrier will not send it again.
      this.log.error({ err, x }, 'MESSAGE to X could be neither queued nor kept on disk; lost');
    });
  }

  private onReport(e: EslEvent): void {
    const carrierId = e.header(CARRIER_ID_HEADER);
    if (!carrierId) return;
    const delivered = e.header('Status') === 'Success';
    const code = e.header('Delivery-Result-Code');
    this.sink
      .report({ transport: 'sip', carrierId, delivered, status: code ? `sip_${code}` : (e.header('Status') ?? 'unknown'), at: Date.now() })
      .catch((err: unknown) => this.log.error({ err }, 'MESSAGE delivery report not recorded'));
  }
}
