import type { MessageDirection, MessageRefusal } from '../domain/message';
import type { NumberHasher } from '../domain/number-hash';
import { normalizePhoneNumber } from '../domain/phone-number';
import type { RouteDecision, RouteTarget } from '../stores/route-index';

/**
 * Where a text to X goes: the route index's own decision for (X, sender), the one calls to X use
 * (AXB both ways, the callback binding, XB with its allow-list; expiry and restriction decided
 * there), then abuse control's refusal of a routed sender. Nothing here restates those rules.
 */
export type RelayDecision =
  | { readonly forward: RouteTarget; readonly direction: MessageDirection }
  | { readonly refused: MessageRefusal; readonly binding: RouteTarget | null };

export function relayDecision(route: RouteDecision, senderRefusal: 'blacklisted' | 'rate_limited' | null): RelayDecision {
  // An AXE X asks a caller for an extension; a text cannot key one, so it reaches nobody.
  if ('extension' in route) return { refused: 'unbound', binding: null };
  if (!('route' in route)) return { refused: route.refused, binding: route.binding ?? null };
  // The index lives in Redis, not where trust lives: a target that is not a real number is no route.
  if (normalizePhoneNumber(route.route.target)?.digits !== route.route.target) return { refused: 'unbound', binding: null };
  if (senderRefusal) return { refused: senderRefusal, binding: route.route };
  return { forward: route.route, direction: directionOf(route.route) };
}

/** The sender's place in the binding, as the index records it. */
export function directionOf(route: RouteTarget): MessageDirection {
  if (route.callerRole === 'a') return 'a_to_b';
  if (route.callerRole === 'b') return 'b_to_a';
  return 'to_b';
}

/**
 * One message however often it arrives: the same text from the same sender to the same X within
 * one window is a carrier's (or the queue's) redelivery. Neither path gives an id that survives a
 * redelivery (a switch's MESSAGE event carries no SIP Call-ID; an SMPP deliver_sm has no message
 * id), so the key is a content hash, keyed like every number hash (a plain hash of a short text
 * and a phone number is no protection).
 */
export function dedupKey(hash: NumberHasher, m: { x: string; sender: string; text: string; receivedAt: number }, windowSeconds: number): string {
  const window = Math.floor(m.receivedAt / (windowSeconds * 1000));
  return hash(`sms\u0000${m.x}\u0000${m.sender}\u0000${window}\u0000${m.text}`);
}
