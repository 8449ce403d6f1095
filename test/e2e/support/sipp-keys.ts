/**
 * A sipp phone that calls a privacy number X and, once the switch sends 183 (the extension prompt as
 * early media), keys digits: RFC 2833 telephone-events (the dtmf_2833_<digit>.pcap files Debian's
 * sip-tester ships, played into the early media) or SIP INFO application/dtmf-relay in the early dialog.
 * The scenario is written per call, with the digits in it (sipp reads a pcap's name when it loads the scenario).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export type KeyingMethod = 'rfc2833' | 'info';

export interface KeyingCall {
  /** The switch's external profile, host:port. */
  readonly switchSip: string;
  readonly x: string;
  readonly caller: string;
  /** Address and UDP port the calling sipp binds to. */
  readonly host: string;
  readonly port: number;
  readonly method: KeyingMethod | 'none';
  readonly digits: string;
  /** How long after the 183 the first digit is keyed. */
  readonly keyAfterMs?: number;
  /** Where sip-tester's pcaps are (E2E_SIPP_PCAP_DIR, default /usr/share/sip-tester). */
  readonly pcapDir?: string;
}

const SIP_HEAD = `Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]`;

function keyingSteps(call: KeyingCall): string {
  const pcapDir = call.pcapDir ?? process.env.E2E_SIPP_PCAP_DIR ?? '/usr/share/sip-tester';
  if (call.method === 'none') return '';
  if (!/^[0-9]*$/.test(call.digits)) throw new Error('digits only');
  return Array.from({ length: call.digits.length }, (_, i) => call.digits.charAt(i))
    .map((d, i, all) => {
      // No pause after the last digit: the switch's answer may come at once, and sipp refuses a message that arrives during a pause.
      const gap = (ms: number) => (i + 1 < all.length ? `\n  <pause milliseconds="${ms}"/>` : '');
      if (call.method === 'rfc2833') {
        // play_pcap_audio runs beside the scenario: the pause lets one digit's events end before the next.
        return `  <nop><action><exec play_pcap_audio="${pcapDir}/dtmf_2833_${d}.pcap"/></action></nop>${gap(500)}`;
      }
      const body = `Signal=${d}\r\nDuration=160\r\n`;
      return `  <send start_txn="info${i}">
    <![CDATA[

      INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      ${SIP_HEAD}
      [last_To:]
      Call-ID: [call_id]
      CSeq: ${2 + i} INFO
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: ${Buffer.byteLength(body)}

${body}]]>
  </send>
  <recv response="200" response_txn="info${i}"/>${gap(300)}`;
    })
    .join('\n');
}

/** The scenario: INVITE offering PCMU and telephone-event, the 183, the digits, then connected (200, waits for BYE) or refused (4xx). */
export function keyingScenario(call: KeyingCall): string {
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="uac calls X and keys ${call.method} ${call.digits}">
  <send retrans="500" start_txn="invite">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      ${SIP_HEAD}
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16

    ]]>
  </send>
  <recv response="100" optional="true" response_txn="invite"/>
  <recv response="180" optional="true" response_txn="invite"/>
  <recv response="183" response_txn="invite"/>
  <pause milliseconds="${call.keyAfterMs ?? 1000}"/>
${keyingSteps(call)}
  <recv response="180" optional="true" response_txn="invite"/>
  <recv response="183" optional="true" response_txn="invite"/>
  <recv response="404" optional="true" next="refused" response_txn="invite"/>
  <recv response="480" optional="true" next="refused" response_txn="invite"/>
  <recv response="503" optional="true" next="refused" response_txn="invite"/>
  <recv response="200" rtd="true" response_txn="invite"/>
  <send ack_txn="invite">
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      ${SIP_HEAD}
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <nop next="end"/>
  <label id="refused"/>
  <send ack_txn="invite">
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      ${SIP_HEAD}
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Content-Length: 0

    ]]>
  </send>
  <label id="end"/>
</scenario>
`;
}

/** Calls X, keys the digits, and resolves when the call is over with sipp's exit code and its message log. */
export function dialXKeying(call: KeyingCall): Promise<{ code: number | null; log: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'uac-keys-'));
  const scenario = path.join(dir, 'uac-keys.xml');
  writeFileSync(scenario, keyingScenario(call));
  const messageFile = path.join(dir, 'messages.log');
  const child = spawn(
    process.env.E2E_SIPP_BIN ?? 'sipp',
    [call.switchSip, '-sf', scenario, '-s', call.x, '-key', 'caller', call.caller, '-i', call.host, '-p', String(call.port), '-mp', String(call.port + 1000),
      '-m', '1', '-nostdin', '-timeout', '60', '-trace_msg', '-message_file', messageFile],
    { cwd: dir, stdio: 'ignore' },
  );
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      let log = '';
      try {
        log = readFileSync(messageFile, 'utf8');
      } catch {
        /* no messages */
      }
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, log });
    });
  });
}
