import { maskPhonesInText } from './phone-number';

const SECRET_KEY = /secret|token|password|key/i;
const ARRAY_SUMMARY_OVER = 20;

/** A body as it may be kept: numbers masked, secrets dropped, long lists summarised. */
export function auditDetails(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskPhonesInText(value);
  if (Array.isArray(value)) {
    if (value.length > ARRAY_SUMMARY_OVER) return { count: value.length };
    return value.map((v) => auditDetails(v, depth + 1));
  }
  if (value !== null && typeof value === 'object') {
    if (depth > 4) return '[nested]';
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : auditDetails(v, depth + 1);
    return out;
  }
  return value;
}
