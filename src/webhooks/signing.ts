import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures (SPEC §6). Every request carries
 *   X-Numguard-Event-Id:  the event id (the same on every retry: de-duplicate on it)
 *   X-Numguard-Timestamp: unix seconds when this attempt was signed
 *   X-Numguard-Signature: v1=<hex HMAC-SHA256 of `${timestamp}.${rawBody}` keyed with the tenant's secret>
 * Signing the timestamp with the body lets a receiver refuse a replayed request.
 */
export const EVENT_ID_HEADER = 'X-Numguard-Event-Id';
export const TIMESTAMP_HEADER = 'X-Numguard-Timestamp';
export const SIGNATURE_HEADER = 'X-Numguard-Signature';
export const SIGNATURE_VERSION = 'v1';
export const DEFAULT_TOLERANCE_SECONDS = 300;

function hmacHex(secret: string, timestampSeconds: number, rawBody: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestampSeconds}.`).update(rawBody).digest('hex');
}

/** The value of X-Numguard-Signature for this body at this time. */
export function signWebhook(secret: string, timestampSeconds: number, rawBody: string | Buffer): string {
  if (!Number.isInteger(timestampSeconds) || timestampSeconds < 0) throw new Error('timestampSeconds must be a non-negative integer');
  return `${SIGNATURE_VERSION}=${hmacHex(secret, timestampSeconds, rawBody)}`;
}

/** The three headers of one delivery attempt. */
export function webhookHeaders(secret: string, eventId: string, rawBody: string, nowMs: number = Date.now()): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    [EVENT_ID_HEADER]: eventId,
    [TIMESTAMP_HEADER]: String(timestamp),
    [SIGNATURE_HEADER]: signWebhook(secret, timestamp, rawBody),
  };
}

export type HeaderSource =
  | { get(name: string): string | null }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

export type WebhookVerification =
  | { readonly ok: true; readonly eventId: string | null; readonly timestamp: number }
  | { readonly ok: false; readonly reason: 'missing_signature' | 'missing_timestamp' | 'stale_timestamp' | 'bad_signature' };

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof headers.get === 'function') return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(headers as Record<string, string | readonly string[] | undefined>)) {
    if (key.toLowerCase() !== lower || value === undefined) continue;
    return typeof value === 'string' ? value : value.join(',');
  }
  return undefined;
}

/**
 * Checks a received webhook: the signature over the exact raw body (before any JSON parsing)
 * and a timestamp within `toleranceSeconds` of `nowMs`. Accepts headers as Node's
 * `req.headers` or a fetch `Headers`.
 */
export function verifyWebhook(
  secret: string,
  headers: HeaderSource,
  rawBody: string | Buffer,
  toleranceSeconds: number = DEFAULT_TOLERANCE_SECONDS,
  nowMs: number = Date.now(),
): WebhookVerification {
  const signature = header(headers, SIGNATURE_HEADER);
  if (!signature) return { ok: false, reason: 'missing_signature' };
  const rawTimestamp = header(headers, TIMESTAMP_HEADER);
  if (!rawTimestamp || !/^\d{1,12}$/.test(rawTimestamp.trim())) return { ok: false, reason: 'missing_timestamp' };
  const timestamp = Number(rawTimestamp.trim());
  if (Math.abs(nowMs / 1000 - timestamp) > toleranceSeconds) return { ok: false, reason: 'stale_timestamp' };

  const expected = Buffer.from(hmacHex(secret, timestamp, rawBody), 'hex');
  // Several `v1=` values may be sent (comma separated); any one matching is enough.
  const matches = signature
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.startsWith(`${SIGNATURE_VERSION}=`))
    .map((part) => part.slice(SIGNATURE_VERSION.length + 1))
    .filter((hex) => /^[0-9a-f]{64}$/i.test(hex))
    .some((hex) => timingSafeEqual(Buffer.from(hex, 'hex'), expected));
  if (!matches) return { ok: false, reason: 'bad_signature' };
  return { ok: true, eventId: header(headers, EVENT_ID_HEADER) ?? null, timestamp };
}
