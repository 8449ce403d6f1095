import { extensionCapacity, extensionLength, extensionMember, parseExtension, type Binding } from '../domain/binding-rules';
import { AppError, ConflictError } from '../domain/errors';
import { parsePrivacyNumber } from '../domain/phone-number';
import { freeExtension } from '../domain/pool';
import { AxeStore } from '../stores/axe-store';
import { XRefused, type BindingDraft, type BindingStore, type NewBinding } from '../stores/binding-store';
import type { Pool } from '../stores/mysql';
import { isRetryableTransactionError } from '../stores/transaction';

const ALLOCATION_TRIES = 20;
const CANDIDATES_AFTER_CLASH = 8;

/**
 * Where an AXE binding (X plus an extension) goes: the X (named, or first fit among the tenant's
 * numbers with a free extension, area first) and the extension (named, or drawn at random among the
 * free ones of that X: domain/pool.ts). The write is the bindings' own (BindingStore.insertOn); the
 * invariant (an extension is unique on its X among active bindings) is held there by MySQL.
 */
export class AxePlacement {
  readonly store: AxeStore;

  constructor(pool: Pool, private readonly bindings: BindingStore) {
    this.store = new AxeStore(pool);
  }

  /** The tenant's extension length, 3-6 digits. */
  extensionLength(tenantId: string): Promise<number> {
    return this.store.extensionLength(tenantId);
  }

  async setExtensionLength(tenantId: string, length: number, now: number = Date.now()): Promise<number> {
    return this.store.setExtensionLength(tenantId, extensionLength(length), now);
  }

  /** Writes the binding on its X with its extension; the committed binding and the version of its routing change. */
  async place(input: NewBinding, draft: BindingDraft, now: number): Promise<{ binding: Binding; version: number }> {
    const length = await this.store.extensionLength(input.tenantId);
    const wanted = input.extension === undefined ? null : parseExtension(input.extension, length);
    if (input.x !== undefined) return this.placeOn(parsePrivacyNumber(input.x, 'x', true), wanted, length, draft, now);
    // Members a candidate X must not hold: the wanted extension, and B when B is to reach A by the caller pair.
    const avoid = [...(wanted === null ? [] : [extensionMember(wanted)]), ...(draft.a === null ? [] : [draft.b])];
    for (let attempt = 0; attempt < ALLOCATION_TRIES; attempt++) {
      const candidates = await this.candidates(input, avoid, length, now);
      // First fit; after a clash, a random one of the first few, so racing binds spread out.
      const x = attempt === 0 ? candidates[0] : candidates[Math.floor(Math.random() * candidates.length)];
      if (x === undefined) throw new ConflictError('no_number_available', 'no number has a free extension for this binding', 'x');
      const extension = wanted ?? freeExtension(await this.store.heldExtensions(x, now), length);
      if (extension === null) continue;
      try {
        return await this.bindings.insertOn(x, { ...draft, extension }, now, false);
      } catch (err) {
        if (!(err instanceof XRefused) && !isRetryableTransactionError(err)) throw err;
      }
    }
    throw new AppError('allocation_contended', 'no free extension could be taken after several tries; retry');
  }

  /** On a named X: the wanted extension, or a free one drawn again while concurrent binds take the drawn ones. */
  private async placeOn(x: string, wanted: string | null, length: number, draft: BindingDraft, now: number): Promise<{ binding: Binding; version: number }> {
    for (let attempt = 0; attempt < ALLOCATION_TRIES; attempt++) {
      const extension = wanted ?? freeExtension(await this.store.heldExtensions(x, now), length);
      if (extension === null) throw new ConflictError('no_extension_available', `x carries all ${extensionCapacity(length)} of its extensions`, 'x');
      try {
        return await this.bindings.insertOn(x, { ...draft, extension }, now, true);
      } catch (err) {
        if (!(err instanceof XRefused)) throw err;
        // Drawn, then taken by a concurrent bind: draw again. Anything else will not change by trying again.
        if (wanted === null && (await this.store.holds(x, extension, now))) continue;
        throw new ConflictError(
          'binding_conflict',
          wanted === null ? 'x is held by an XB binding, already carries B, or takes extensions of another length' : 'x already carries this extension, or cannot take this binding',
          wanted === null ? 'x' : 'extension',
        );
      }
    }
    throw new AppError('allocation_contended', 'no free extension could be taken after several tries; retry');
  }

  private async candidates(input: NewBinding, avoid: readonly string[], length: number, now: number): Promise<string[]> {
    if (input.area !== undefined) {
      const inArea = await this.store.candidates(input.tenantId, avoid, length, input.area, now, CANDIDATES_AFTER_CLASH);
      if (inArea.length) return inArea;
      if (input.strictArea) throw new ConflictError('area_unavailable', 'no number in the requested area has a free extension', 'area');
    }
    const anywhere = await this.store.candidates(input.tenantId, avoid, length, undefined, now, CANDIDATES_AFTER_CLASH);
    if (!anywhere.length) throw new ConflictError('no_number_available', 'no number has a free extension for this binding', 'x');
    return anywhere;
  }
}
