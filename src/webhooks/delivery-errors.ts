/**
 * What a failed delivery attempt tells the tenant (the `error` of the delivery log). Only these
 * coarse categories: the exact socket error, the address, the port or a resolver's answer would
 * let a tenant use its webhook URL to map networks (open, closed or filtered ports, which names
 * resolve). The details go to the operator's log only.
 *
 *   not_public_address  the host is, or resolves to, a non-public address (see public-address.ts)
 *   unresolvable        the host name does not resolve
 *   connection_failed   no connection, or it broke before an answer (refused, reset, unreachable)
 *   tls_failed          the TLS handshake failed (e.g. the certificate is not valid for the host)
 *   timeout             no answer within WEBHOOK_TIMEOUT_MS
 *   http_<status>       the endpoint answered with a status other than 2xx (redirects included)
 */
export type DeliveryErrorCategory =
  | 'not_public_address'
  | 'unresolvable'
  | 'connection_failed'
  | 'tls_failed'
  | 'timeout'
  | `http_${number}`;

export const DELIVERY_ERROR_CATEGORIES = ['not_public_address', 'unresolvable', 'connection_failed', 'tls_failed', 'timeout'] as const;

export function httpStatusError(status: number): DeliveryErrorCategory {
  return `http_${status}`;
}

export function isDeliveryErrorCategory(text: string): text is DeliveryErrorCategory {
  return (DELIVERY_ERROR_CATEGORIES as readonly string[]).includes(text) || /^http_\d{3}$/.test(text);
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|ERR_OSSL_)/;

/** The category of a socket or request error (the timeout is told apart by the caller). */
export function categorizeRequestError(err: unknown): DeliveryErrorCategory {
  const e = (err ?? {}) as { code?: unknown; library?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (code === 'ETIMEDOUT') return 'timeout';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') return 'unresolvable';
  if (TLS_CODES.test(code) || e.library === 'SSL routines') return 'tls_failed';
  return 'connection_failed';
}

/**
 * For showing a logged error to the tenant: a category stays as it is; texts written before the
 * categories existed ("HTTP 500", "no response within …", "ECONNREFUSED: connect …") are mapped
 * to one, so no stored detail is shown.
 */
export function publicDeliveryError(stored: string | null): string | null {
  if (stored === null) return null;
  if (isDeliveryErrorCategory(stored)) return stored;
  const http = /^HTTP (\d{3})$/.exec(stored);
  if (http) return `http_${http[1]}`;
  if (stored.startsWith('no response within')) return 'timeout';
  if (stored === 'host resolves to a non-public address') return 'not_public_address';
  if (stored === 'host does not resolve') return 'unresolvable';
  return 'connection_failed';
}
