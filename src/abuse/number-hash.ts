import { createHash } from 'node:crypto';

/**
 * How a real number appears in Redis keys and in abuse flags: sha256(tenant|number), first 32
 * hex digits. Operators can list Redis keys; they must not read phone numbers there. Scoped by
 * tenant, so one tenant's counters and flags never say anything about another's numbers.
 */
export function numberHash(tenantId: string, number: string): string {
  return createHash('sha256').update(`${tenantId}|${number}`).digest('hex').slice(0, 32);
}
