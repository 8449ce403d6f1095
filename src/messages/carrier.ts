import type { MessageTransport } from '../domain/message';

/**
 * What the relay needs of a carrier path, whichever it is (SIP MESSAGE through the switch, or
 * SMPP): it hands over inbound messages whole (parts reassembled) and delivery reports, and sends
 * a text from X to a number. The relay never knows which path carried a message.
 */
export interface InboundMessage {
  readonly transport: MessageTransport;
  /** The privacy number written to. */
  readonly x: string;
  /** The sender's real number (normalised digits). */
  readonly sender: string;
  readonly text: string;
  /** Parts as received. */
  readonly parts: number;
  readonly receivedAt: number;
}

export interface OutboundMessage {
  /** The record's id: the carrier path may tag what it sends with it, never with a number. */
  readonly messageId: string;
  /** Always X: the only number the receiver sees. */
  readonly from: string;
  readonly to: string;
  readonly text: string;
}

export interface SentMessage {
  /** The carrier's id of each part sent (what its delivery reports name). */
  readonly carrierIds: readonly string[];
}

export interface DeliveryReport {
  readonly transport: MessageTransport;
  readonly carrierId: string;
  readonly delivered: boolean;
  /** The carrier's status word (DELIVRD, UNDELIV, a SIP code), never a number. */
  readonly status: string;
  readonly at: number;
}

/** A carrier refused or could not take a message; `retryable` says whether trying again can help. */
export class CarrierError extends Error {
  constructor(
    readonly code: string,
    readonly retryable: boolean,
    message: string,
  ) {
    super(message);
    this.name = 'CarrierError';
  }
}

export interface MessageCarrier {
  readonly transport: MessageTransport;
  send(message: OutboundMessage): Promise<SentMessage>;
}

/** Where a carrier path hands what it receives: both resolve once it is durable (queued or recorded). */
export interface CarrierSink {
  inbound(message: InboundMessage): Promise<void>;
  report(report: DeliveryReport): Promise<void>;
}
