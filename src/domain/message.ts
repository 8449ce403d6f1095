/**
 * A short message relayed through a privacy number X (README "Text messages"): what its record
 * holds. Parties appear only masked; the body only when the tenant keeps bodies.
 */
export const MESSAGE_STATUSES = ['accepted', 'forwarded', 'delivered', 'failed', 'refused'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/** Who wrote to whom, by the sender's place in the binding: A to B, B to A, or anyone to B (XB). */
export type MessageDirection = 'a_to_b' | 'b_to_a' | 'to_b';

/** Why a message was not forwarded. */
export type MessageRefusal = 'unbound' | 'restricted' | 'blacklisted' | 'rate_limited';

/** The carrier path: SIP MESSAGE through FreeSWITCH, or SMPP 3.4 to an SMS centre. */
export const MESSAGE_TRANSPORTS = ['sip', 'smpp'] as const;
export type MessageTransport = (typeof MESSAGE_TRANSPORTS)[number];

export interface MessageRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly bindingId: string | null;
  readonly x: string;
  readonly direction: MessageDirection | null;
  readonly senderMasked: string;
  /** null when the message was refused (nobody was chosen). */
  readonly recipientMasked: string | null;
  readonly transport: MessageTransport;
  /** Parts as received. */
  readonly parts: number;
  /** Characters (code points) of the whole text. */
  readonly length: number;
  readonly status: MessageStatus;
  readonly refusal: MessageRefusal | null;
  /** Why forwarding or delivery failed (carrier status), never a number. */
  readonly failure: string | null;
  readonly receivedAt: number;
  readonly forwardedAt: number | null;
  readonly deliveredAt: number | null;
  readonly failedAt: number | null;
  /** The text, only when the tenant keeps bodies and within its retention; never in a log. */
  readonly body: string | null;
}
