import { createHmac } from 'node:crypto';

/**
 * How a real number appears where it must be found again but not read: Redis key names, abuse
 * flags. A plain hash of a phone number is no protection (there are only about 10^11 of them), so
 * it is keyed: HMAC-SHA256 with the platform's secret (NUMBER_HASH_KEY, or one the platform made
 * on its first start and keeps in MySQL), first 32 hex digits. Operators can list Redis keys;
 * they read no numbers there.
 */
export type NumberHasher = (number: string) => string;

export function numberHasher(secret: string): NumberHasher {
  if (secret.length < 32) throw new Error('the number hash key must be at least 32 characters');
  // The key's bytes once: a string key is encoded again on every createHmac (a third of its cost).
  const key = Buffer.from(secret, 'utf8');
  return (number) => createHmac('sha256', key).update(number, 'utf8').digest('hex').slice(0, 32);
}

/** Scoped by tenant: one tenant's counters and flags say nothing about another's numbers. */
export function tenantNumberHash(hash: NumberHasher, tenantId: string, number: string): string {
  return hash(`${tenantId}|${number}`);
}
