/** The simulator's public types: how a phone behaves, what a phone saw, the options. */
export interface PhoneBehaviour {
  /**
   * `refused`: the switch cannot create this phone's channel (no SIP is sent): an originate to it ends with
   * `-ERR <refuseCause>`; a bridge to it completes at once with that cause, B's channel only shows
   * CHANNEL_DESTROY (recording 16b, `sofia/<unknown profile>/…`). A bridge to the endpoint
   * `error/<CAUSE>` behaves the same without any B event (recording 16a).
   */
  answer?: 'answer' | 'busy' | 'decline' | 'no-answer' | 'unreachable' | 'refused';
  ringMs?: number;
  hangupAfterMs?: number;
  /** With `answer: 'refused'`: the cause (default DESTINATION_OUT_OF_ORDER). */
  refuseCause?: string;
  /** A leg only: the phone's BYE reaches the switch at exactly this point of the controller's call (see ByeRace). */
  byeRacing?: ByeRace;
}
/**
 * Where an A phone's BYE lands relative to the controller's steps, for replaying races deterministically:
 * - `originate-reply-before`: A answers, then hangs up before the originate's BACKGROUND_JOB (which still says +OK);
 * - `originate-reply-after`: right after the BACKGROUND_JOB `+OK`, before anything the controller sends next;
 * - `bridge-before`: just before the switch takes the controller's `sendmsg … bridge` (→ `-ERR invalid session id`);
 * - `bridge-accepted`: the switch has answered that sendmsg `+OK` but A's BYE is handled before the queued app
 *   starts: the bridge never runs, no CHANNEL_EXECUTE / EXECUTE_COMPLETE for it (what real FreeSWITCH does when
 *   the private event is still queued at hangup);
 * - `bridge-started`: right after B's channel is created (B is cancelled with ORIGINATOR_CANCEL);
 * - `b-answer-before` / `b-answer-after`: just before B's 200 OK (B is cancelled) / just after CHANNEL_BRIDGE;
 * - `bridge-failed`: just after the EXECUTE_COMPLETE of a bridge that failed (busy, no answer, refused): the
 *   carrier ends A instead of letting it hear the controller's prompt.
 */
export type ByeRace =
  | 'originate-reply-before' | 'originate-reply-after' | 'bridge-before' | 'bridge-accepted' | 'bridge-started'
  | 'b-answer-before' | 'b-answer-after' | 'bridge-failed';
export interface SeenInvite {
  uuid: string; number: string; fromDisplay: string | null; fromUser: string; remotePartyId: string | null; pAssertedIdentity: string | null; at: number;
}
/**
 * A SIP message FreeSWITCH sent to the phone that called X (the outbound-socket call), as that phone saw it:
 * `message` is the status (`180 Ringing`) or the request method (`BYE`).
 */
export interface SeenByCaller { uuid: string; message: string; remotePartyId: string | null; reason: string | null; at: number }
export interface SimulatorOptions { password?: string; host?: string; port?: number; timeScale?: number }
/** A call to X that FreeSWITCH hands to the controller's outbound socket; `caller` is the calling phone (UAC). */
export interface OutboundCall {
  callerNumber: string; destinationNumber: string;
  /** The caller's SIP host:port, as in its channel name `sofia/external/<number>@<address>` (default 127.0.0.1:5090). */
  callerAddress?: string;
  /** Only `hangupAfterMs` applies: the caller sends BYE that long after its call is answered. */
  caller?: PhoneBehaviour;
  /** What the caller keys when the switch asks for digits (play_and_get_digits), try by try ('' keys nothing), and how. */
  keys?: KeyedDigits;
}
/** Digits a calling phone keys, per prompt: RFC 2833 telephone-events in its RTP, or SIP INFO application/dtmf-relay. */
export interface KeyedDigits { via: 'rfc2833' | 'info'; tries: string[] }
