import { extensionCapacity, extensionMember, isExtensionMember, membersOf, reuseClash } from './binding-rules';
import { ValidationError } from './errors';

/** The 10,000 15-digit 700 numbers of an 11-digit block: `<block>0000` .. `<block>9999`. */
export function blockNumbers(block: string, area: string): Array<{ x: string; area: string }> {
  if (!/^700\d{8}$/.test(block)) throw new ValidationError('block', 'block must be 700 followed by 8 digits', 'invalid_block');
  return Array.from({ length: 10_000 }, (_, i) => ({ x: `${block}${String(i).padStart(4, '0')}`, area }));
}

/** One enabled pool number as allocation sees it: its area and the members its active bindings hold. */
export interface PoolNumberOccupancy {
  readonly x: string;
  readonly area: string;
  readonly held: ReadonlySet<string>;
}

/**
 * First fit, the allocation rule: the lowest X (pool given in x order) where a binding with these members
 * fits the reuse invariant, in the wanted area when one is named. Returns up to `limit` candidates
 * in order (after a clash with a concurrent bind, the next ones). A number with d bindings blocks at
 * most d numbers, so with Δ the largest number of concurrent bindings of any one number, an AXB
 * lands within the first 2Δ-1 numbers.
 */
export function firstFit(
  pool: readonly PoolNumberOccupancy[],
  members: readonly string[],
  area?: string,
  limit = 1,
): string[] {
  return firstFitBy(pool, (n) => n.held, members, area, limit);
}

/**
 * firstFit over a pool whose occupancy is read through `heldOn` (what X holds now), for callers
 * that keep occupancy by number rather than by X (group commit reads it for a batch's numbers).
 */
export function firstFitBy<T extends { readonly x: string; readonly area: string }>(
  pool: readonly T[],
  heldOn: (n: T) => ReadonlySet<string>,
  members: readonly string[],
  area?: string,
  limit = 1,
): string[] {
  const out: string[] = [];
  for (const n of pool) {
    if (area !== undefined && n.area !== area) continue;
    if (reuseClash(heldOn(n), members) !== null) continue;
    out.push(n.x);
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * A free extension of `length` digits on an X holding these members, or null when X carries all
 * 10^n. Drawn at random (then the next free one up, wrapping), so that a caller who knows one
 * extension cannot guess its neighbours: `draw` is a number in [0, 1), Math.random by default.
 */
export function freeExtension(held: ReadonlySet<string>, length: number, draw: () => number = Math.random): string | null {
  const capacity = extensionCapacity(length);
  const start = Math.min(capacity - 1, Math.floor(draw() * capacity));
  for (let i = 0; i < capacity; i++) {
    const extension = String((start + i) % capacity).padStart(length, '0');
    if (!held.has(extensionMember(extension))) return extension;
  }
  return null;
}

/** How many extensions an X carries now (its AXE bindings). */
export function extensionsHeld(held: ReadonlySet<string>): number {
  let n = 0;
  for (const m of held) if (isExtensionMember(m)) n++;
  return n;
}

/**
 * First fit for an AXE binding: the lowest X (pool in x order, in the wanted area when one is named)
 * with a free extension of `length` digits where the binding fits the reuse invariant (not an XB's
 * X; with A set, B not already held on it). Up to `limit` candidates in order. AXE bindings pack onto
 * the lowest X until its 10^n extensions are taken.
 */
export function firstFitWithExtension(
  pool: readonly PoolNumberOccupancy[],
  party: { readonly a: string | null; readonly b: string },
  length: number,
  area?: string,
  limit = 1,
): string[] {
  const out: string[] = [];
  for (const n of pool) {
    if (area !== undefined && n.area !== area) continue;
    if (extensionsHeld(n.held) >= extensionCapacity(length)) continue;
    const extension = freeExtension(n.held, length, () => 0);
    if (extension === null || reuseClash(n.held, membersOf('axe', party.a, party.b, extension)) !== null) continue;
    out.push(n.x);
    if (out.length >= limit) break;
  }
  return out;
}
