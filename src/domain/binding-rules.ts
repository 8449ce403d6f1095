import { ValidationError } from './errors';

/**
 * Binding rules (SPEC §3) that need no database. The reuse invariant itself is enforced by
 * MySQL (migration 002) through the members each binding puts on its X: see membersOf.
 */
export type BindingMode = 'axb' | 'xb' | 'axe';
export type CallRestriction = 'both' | 'a_to_b' | 'b_to_a';

export const BINDING_TTL_SECONDS = { default: 24 * 3600, min: 60, max: 7 * 24 * 3600 } as const;
export const ALLOW_LIST_MAX = 30;
/** The same A-B pair (either way round) is bound at most this many times within an hour (SPEC §7). */
export const PAIR_BINDINGS_PER_HOUR = 30;

/** Members an XB puts on its X besides B: a marker that makes a second XB on that X a key clash. */
export const XB_HOLD = '*';

export function bindingTtlSeconds(ttl: number | undefined): number {
  const v = ttl ?? BINDING_TTL_SECONDS.default;
  if (!Number.isInteger(v) || v < BINDING_TTL_SECONDS.min || v > BINDING_TTL_SECONDS.max) {
    throw new ValidationError(
      'ttlSeconds',
      `ttlSeconds must be a whole number from ${BINDING_TTL_SECONDS.min} to ${BINDING_TTL_SECONDS.max}`,
      'invalid_ttl',
    );
  }
  return v;
}

/** How many digits an AXE extension has: the tenant sets it (tenant_axe_settings), this default otherwise. */
export const EXTENSION_LENGTH = { default: 4, min: 3, max: 6 } as const;

/** The member an AXE binding's extension puts on its X (a number never starts with '#'). */
export function extensionMember(extension: string): string {
  return `#${extension}`;
}

/** Whether a member of X is an AXE extension (not a number, not the XB marker). */
export function isExtensionMember(member: string): boolean {
  return member.startsWith('#');
}

/** How many AXE bindings one X carries at most with extensions of this length: 10^n. */
export function extensionCapacity(length: number): number {
  return 10 ** length;
}

/** An extension as the tenant gives it: exactly `length` digits. */
export function parseExtension(value: string, length: number, field = 'extension'): string {
  if (!new RegExp(`^\\d{${length}}$`).test(value)) {
    throw new ValidationError(field, `${field} must be exactly ${length} digits (the tenant's extension length)`, 'invalid_extension');
  }
  return value;
}

export function extensionLength(value: number, field = 'extensionLength'): number {
  if (!Number.isInteger(value) || value < EXTENSION_LENGTH.min || value > EXTENSION_LENGTH.max) {
    throw new ValidationError(field, `${field} must be a whole number from ${EXTENSION_LENGTH.min} to ${EXTENSION_LENGTH.max}`, 'invalid_extension_length');
  }
  return value;
}

/**
 * The (x, number) keys a binding holds while active. A call to X is routed by (caller, X), so
 * on one X a number may hold at most one key: AXB holds A and B; XB holds B and the XB marker.
 * AXE holds its extension's member, and B when A is set (B dialling X reaches A by the caller
 * pair, as in AXB); A itself holds nothing, so one A may key many extensions of one X.
 */
export function membersOf(mode: BindingMode, a: string | null, b: string, extension: string | null = null): string[] {
  if (mode === 'xb') return [b, XB_HOLD];
  if (mode === 'axe') {
    if (extension === null) throw new Error('an AXE binding needs an extension');
    return a === null ? [extensionMember(extension)] : [extensionMember(extension), b];
  }
  if (a === null) throw new Error('an AXB binding needs A');
  return [a, b];
}

/**
 * The reuse invariant, stated once: on one X a number is held by at most one active binding, and
 * an XB binding's marker holds X alone. And an extension is unique on its X among active bindings:
 * an AXE binding holds it as the member extensionMember(extension), a key like a number's, so the
 * same rule keeps it (one X with n-digit extensions carries up to extensionCapacity(n) of them).
 * Given the members X holds now, the member a new binding with these members would clash on, or
 * null when it fits. MySQL enforces the same rule by itself (migration 002: the (x, number) key and
 * the XB trigger; 045 for the extension's member); the tests hold both, and the route index, to one table.
 */
export function reuseClash(held: ReadonlySet<string>, adding: readonly string[]): string | null {
  for (const n of adding) if (held.has(n)) return n;
  if (adding.length > 0 && (held.has(XB_HOLD) || (held.size > 0 && adding.includes(XB_HOLD)))) return XB_HOLD;
  return null;
}

/**
 * The callback rule: a callback binding (B reaches back the A who called, through X) takes (X, B)
 * only from nobody or from an older callback (B reaches whoever called last); it never displaces
 * an AXB or XB binding. MySQL's callback writes and the route index's Lua apply it alike.
 */
export function callbackMayTake(holder: { readonly kind: BindingKind; readonly expiresAt: number } | null, expiresAt: number): boolean {
  return holder === null || (holder.kind === 'callback' && holder.expiresAt <= expiresAt);
}

export type BindingKind = BindingMode | 'callback';
export type BindingState = 'active' | 'expired' | 'unbound';

/** A binding as stored: what routing, the API and history all read. */
export interface Binding {
  readonly id: string;
  readonly tenantId: string;
  readonly requestId: string | null;
  readonly kind: BindingKind;
  readonly x: string;
  readonly a: string | null;
  readonly b: string;
  /** AXE only: the digits a caller keys after dialling X (absent or null for every other kind). */
  readonly extension?: string | null;
  readonly state: BindingState;
  readonly expiresAt: number;
  readonly restriction: CallRestriction;
  readonly record: boolean;
  readonly maxDurationSeconds: number | null;
  /** Seconds before the maximum duration ends a call that both parties hear a warning tone; null or absent: the platform's default, 0: none. */
  readonly endWarningSeconds?: number | null;
  readonly announcement: string | null;
  readonly allowList: readonly string[];
  readonly userData: string | null;
}
