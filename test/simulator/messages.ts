/**
 * Text messages (mod_sms with freeswitch-conf/'s chatplan), only as far as the recordings
 * recordings/18a-message-in and 18b-message-out show them:
 *  - 18a: a carrier's MESSAGE to a 700 number on the external profile: sofia answers 202, the chatplan sets
 *    `ng_relay=true` and `fire`s it (MESSAGE event), then `final` — and mod_sms fires its own copy once more with
 *    `final_delivery: true` and `Nonblocking-Delivery: true`. Same Event-Sequence and Event-Date in both.
 *  - 18b: `sendevent CUSTOM` with `Event-Subclass: SMS::SEND_MESSAGE` and a body: replied `+OK <Event-UUID>`;
 *    with `dest_proto: sip` and `blocking: true`, sofia sends the MESSAGE (From `"X" <sip:X@host>`, the body as it
 *    was) and mod_sms fires CUSTOM `SMS::DELIVERY_REPORT`: `Status` and `Command` first, the headers sent (their
 *    Content-Length kept as a header, no body), then the sendevent's own event headers, `skip_global_process`,
 *    `dest_proto`, `Delivery-Result-Code` (the carrier's answer), `Delivery-Failure`, `skip_global_process`.
 *    Another dest_proto (`sofia`) was refused by the real switch (`Invalid chat interface`): a report with
 *    `Status: Failure` and `Delivery-Failure: true`, no Delivery-Result-Code, nothing sent.
 */
import { randomUUID } from 'crypto';
import { nowUs } from './channel';
import type { SimContext } from './context';
import { dateGmt, dateLocal, SimEvent, type Header } from './events';

/** A MESSAGE the switch sent to a carrier for `SMS::SEND_MESSAGE`. */
export interface SentSipMessage {
  /** From as sofia writes it: `"X" <sip:X@host>`. */
  readonly from: string;
  /** The request URI. */
  readonly to: string;
  readonly body: string;
}

export interface IncomingSipMessage {
  readonly from: string;
  readonly to: string;
  readonly body: string;
  readonly fromHost?: string;
  readonly fromPort?: number;
  readonly switchHost?: string;
}

const X700 = /^(\+?86)?700\d{12}$/;

export class SimMessages {
  readonly sent: SentSipMessage[] = [];
  /** The carrier's final answer to the switch's MESSAGE (18b: 202). */
  carrierAnswer = 202;

  constructor(private readonly sim: SimContext) {}

  private common(name: string, d: Date, file: string, fn: string, line: string, seq: number): Header[] {
    return [
      ['Event-Name', name], ['Core-UUID', this.sim.coreUuid], ['FreeSWITCH-Hostname', 'fs-node-1'], ['FreeSWITCH-Switchname', 'fs-node-1'],
      ['FreeSWITCH-IPv4', '127.0.0.1'], ['FreeSWITCH-IPv6', '::1'], ['Event-Date-Local', dateLocal(d)], ['Event-Date-GMT', dateGmt(d)],
      ['Event-Date-Timestamp', String(nowUs())], ['Event-Calling-File', file], ['Event-Calling-Function', fn], ['Event-Calling-Line-Number', line],
      ['Event-Sequence', String(seq)],
    ];
  }

  /** 18a: a carrier's MESSAGE to `to` on the external profile. Only a 700 number matches the chatplan. */
  receive(m: IncomingSipMessage): void {
    if (!X700.test(m.to)) return;
    const host = m.switchHost ?? '127.0.0.1';
    const fromHost = m.fromHost ?? '127.0.0.1';
    const port = m.fromPort ?? 5090;
    const headers: Header[] = [
      ...this.common('MESSAGE', new Date(), 'sofia_presence.c', 'sofia_presence_handle_sip_i_message', '4889', ++this.sim.seq),
      ['login', `sip:mod_sofia@${host}:5080`], ['proto', 'sip'], ['to_proto', 'sip'], ['from', `${m.from}@${fromHost}`], ['from_user', m.from],
      ['from_host', fromHost], ['to_user', m.to], ['to_host', host], ['from_sip_ip', fromHost], ['from_sip_port', String(port)], ['to', `${m.to}@${host}`],
      ['subject', 'SIMPLE MESSAGE'], ['context', 'public'], ['type', 'text/plain'], ['from_full', `<sip:${m.from}@${fromHost}:${port}>;tag=${randomUUID().slice(0, 8)}`],
      ['sip_profile', 'external'], ['dest_proto', 'sip'], ['max_forwards', '70'], ['DP_MATCH', m.to], ['ng_relay', 'true'],
    ];
    this.sim.esl.deliver(new SimEvent('MESSAGE', headers, m.body));
    this.sim.esl.deliver(new SimEvent('MESSAGE', [...headers, ['final_delivery', 'true'], ['Nonblocking-Delivery', 'true']], m.body));
  }

  /** 18b: `sendevent <name>`; returns the reply text. */
  sendEvent(name: string, sent: Header[], body: string): string {
    const eventUuid = randomUUID();
    const get = (k: string): string | undefined => sent.find(([h]) => h === k)?.[1];
    if (name !== 'CUSTOM' || get('Event-Subclass') !== 'SMS::SEND_MESSAGE') return `+OK ${eventUuid}`;
    const d = new Date();
    const ownSeq = ++this.sim.seq;
    const viaSip = get('dest_proto') === 'sip';
    const to = /^[^/]+\/(sip:.*)$/.exec(get('to') ?? '')?.[1];
    const [fromUser, fromHost] = (get('from') ?? '').split('@');
    const delivered = viaSip && to !== undefined && this.carrierAnswer >= 200 && this.carrierAnswer < 300;
    if (viaSip && to !== undefined) this.sent.push({ from: `"${fromUser ?? ''}" <sip:${fromUser ?? ''}@${fromHost ?? ''}>`, to, body });
    const passed = sent.filter(([h]) => h !== 'Event-Subclass');
    const headers: Header[] = [
      ['Event-Subclass', 'SMS::DELIVERY_REPORT'],
      ...this.common('CUSTOM', d, 'mod_sms.c', 'send_report', '48', ++this.sim.seq),
      ['Status', delivered ? 'Success' : 'Failure'], ['Command', `sendevent ${name}`],
      // The headers as sent, their Content-Length among them.
      ...passed, ['Event-UUID', eventUuid],
      // The sendevent's own event headers, from Core-UUID on.
      ...this.common('', d, 'mod_event_socket.c', 'parse_command', '2275', ownSeq).slice(1),
      ['skip_global_process', 'true'], ['dest_proto', get('dest_proto') ?? ''],
      ...(viaSip ? ([['Delivery-Result-Code', String(this.carrierAnswer)]] as Header[]) : []),
      ['Delivery-Failure', delivered ? 'false' : 'true'], ['skip_global_process', 'true'],
    ];
    const report = new SimEvent('CUSTOM', headers);
    void this.sim.sleep(100).then(() => this.sim.esl.deliver(report));
    return `+OK ${eventUuid}`;
  }
}
