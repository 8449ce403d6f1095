import { ALLOW_LIST_MAX, bindingTtlSeconds, membersOf, PAIR_BINDINGS_PER_HOUR, type Binding } from '../domain/binding-rules';
import { AppError, ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../domain/errors';
import { parseMediaId } from '../domain/media';
import { maskPhone, parsePrivacyNumber, parseRealNumber } from '../domain/phone-number';
import { BlacklistStore } from '../stores/blacklist-store';
import { AxePlacement } from './axe-bindings';
import { BindingStore, XRefused, type BindingDraft, type BindingPatch, type ExpiredBinding, type NewBinding } from '../stores/binding-store';
import type { Pool } from '../stores/mysql';
import { PoolStore, type PoolAreaStats, type PoolNumber, type PoolNumberInput, type PoolNumberState } from '../stores/pool-store';
import type { RouteIndex, VersionedBinding } from '../stores/route-index';
import { OUTBOX_PAGE, RouteOutbox } from '../stores/route-outbox';
import { isRetryableTransactionError } from '../stores/transaction';
import { BindBatcher, withoutVersion, type BatchedBind, type BindResult } from './bind-batcher';

export type { Binding, BindingState } from '../domain/binding-rules';
export type { BindingPatch, ExpiredBinding, NewBinding } from '../stores/binding-store';
export type { PoolAreaStats, PoolNumber, PoolNumberInput, PoolNumberState } from '../stores/pool-store';

const ALLOCATION_TRIES = 20;
const CANDIDATES_AFTER_CLASH = 8;

/** Abuse control for a new binding (bindings per number per hour); throws an AppError to refuse. */
export interface BindingAdmission {
  admitBinding(tenantId: string, numbers: { a: string | null; b: string }, now: number): Promise<void>;
  /** admitBinding for the binds of a batch, in order, as if one after the other: per bind, null or its refusal. */
  admitBindings?(binds: ReadonlyArray<{ tenantId: string; numbers: { a: string | null; b: string }; now: number }>): Promise<ReadonlyArray<unknown>>;
  /** Numbers put into an existing binding by an update (bindings per number per hour). */
  admitRebinding?(tenantId: string, added: Readonly<{ a?: string; b?: string }>, now: number): Promise<void>;
  /** How often one A-B pair may be bound in an hour for this tenant (0: no limit); PAIR_BINDINGS_PER_HOUR without it. */
  pairBindingsPerHour?(tenantId: string): Promise<number>;
  /** The blacklist of this tenant (null: the platform's) changed: drop what is cached of it. */
  blacklistChanged?(tenantId: string | null): void;
}

/**
 * The bindings use cases: bind, update, unbind and expire, with their checks (numbers, TTL,
 * allow-list, media, blacklist, the pair limit, abuse control), idempotency by requestId,
 * first-fit allocation with retries on contention, and the route index kept true through the outbox.
 * SQL lives in the stores; the rules in domain/binding-rules.ts and domain/pool.ts.
 */
export class BindingService {
  readonly bindings: BindingStore;
  readonly numbers: PoolStore;
  readonly blacklist: BlacklistStore;
  /** AXE bindings: their X and extension, and the tenant's extension length. */
  readonly axe: AxePlacement;
  private readonly outbox: RouteOutbox | null;
  /** Group commit of allocated AXB binds (with an index and options.batch); without it every bind is its own transaction. */
  private readonly batcher: BindBatcher | null;

  /**
   * Every change that affects routing is written to MySQL with its outbox row in one transaction.
   * With an index, a request answers only once the index has the change (or 503
   * route_index_unavailable); without one (the CLI) the rows wait for a controller to apply them.
   */
  constructor(
    pool: Pool,
    index?: RouteIndex,
    private readonly admission?: BindingAdmission,
    options: { routeWriteTimeoutMs?: number; batch?: { maxBatch: number; maxInFlight: number } } = {},
  ) {
    this.bindings = new BindingStore(pool);
    this.numbers = new PoolStore(pool);
    this.blacklist = new BlacklistStore(pool, (tenantId) => admission?.blacklistChanged?.(tenantId));
    this.axe = new AxePlacement(pool, this.bindings);
    this.outbox = index ? new RouteOutbox(pool, index, options.routeWriteTimeoutMs ?? 2000) : null;
    this.batcher =
      this.outbox && options.batch && options.batch.maxBatch > 1
        ? new BindBatcher({
            pool,
            outbox: this.outbox,
            admit: admission ? (binds) => admitAll(admission, binds) : undefined,
            pairLimit: (tenantId) => this.pairLimit(tenantId),
            bindAlone: (b) => this.bindAlone(b),
            placeAlone: (b) => this.place(b),
            ...options.batch,
          })
        : null;
  }

  /** Applies routing changes left in the outbox (Redis was unreachable, or a process died after its commit); how many. */
  async applyPendingRoutes(): Promise<number> {
    return this.outbox ? this.outbox.applyPending(OUTBOX_PAGE) : 0;
  }

  /**
   * Applies pages of the outbox until it is empty or `budgetMs` has passed; how many rows. Every connected
   * click-to-dial leaves a callback binding's row there, so one page per tick fell behind above 500 calls/s.
   */
  async drainPendingRoutes(budgetMs: number): Promise<number> {
    const until = Date.now() + budgetMs;
    let applied = 0;
    for (;;) {
      const page = await this.applyPendingRoutes();
      applied += page;
      if (page < OUTBOX_PAGE || Date.now() >= until) return applied;
    }
  }

  /** Creates an AXB, XB or AXE binding. Idempotent by requestId. */
  async bind(input: NewBinding, now: number = Date.now()): Promise<BindResult> {
    const b = parseRealNumber(input.b, 'b');
    const a = input.mode === 'axb' || (input.mode === 'axe' && input.a !== undefined) ? parseRealNumber(input.a, 'a') : null;
    if (input.mode !== 'axe' && input.extension !== undefined) throw new ValidationError('extension', 'an extension is for AXE bindings only', 'unknown_field');
    if (a === b) throw new ValidationError('b', 'a and b must be different numbers', 'same_number');
    const ttl = bindingTtlSeconds(input.ttlSeconds);
    const allowList = (input.allowList ?? []).map((n, i) => parseRealNumber(n, `allowList[${i}]`));
    if (allowList.length > ALLOW_LIST_MAX) {
      throw new ValidationError('allowList', `an allow-list holds at most ${ALLOW_LIST_MAX} numbers`, 'allow_list_too_long');
    }
    if (input.userData && input.userData.length > 256) throw new ValidationError('userData', 'userData is longer than 256 characters', 'too_long');
    if (input.announcement !== undefined) await this.requireMedia(input.announcement);
    const draft: BindingDraft = { ...input, a, b, allowList, expiresAt: now + ttl * 1000 };
    if (this.batcher && input.mode === 'axb' && input.x === undefined) return this.batcher.bind({ input, draft, now });
    return this.bindAlone({ input, draft, now });
  }

  /** One bind in transactions of its own: idempotency, screening, abuse control, then allocation and the write. */
  private async bindAlone({ input, draft, now }: BatchedBind): Promise<BindResult> {
    const { a, b, allowList } = draft;
    if (input.requestId) {
      const existing = await this.bindings.findByRequest(input.tenantId, input.requestId);
      if (existing) {
        // A retried bind makes sure the index says what MySQL says, as the first attempt should have.
        await this.outbox?.reassert(existing);
        return { binding: withoutVersion(existing), created: false };
      }
    }
    await this.screen(input.tenantId, { a, b, ...Object.fromEntries(allowList.map((n, i) => [`allowList[${i}]`, n])) }, a === null ? null : [a, b], now);
    await this.admission?.admitBinding(input.tenantId, { a, b }, now);
    if (input.mode === 'axe') return { binding: await this.indexed(await this.axe.place(input, draft, now)), created: true };
    return this.place({ input, draft, now });
  }

  /** Writes a screened and admitted bind on its X, or on one first fit allocates (a few tries when binds race for the same X). */
  private async place({ input, draft, now }: BatchedBind): Promise<BindResult> {
    if (input.x !== undefined) {
      const x = parsePrivacyNumber(input.x, 'x', true);
      try {
        const binding = await this.indexed(await this.bindings.insertOn(x, draft, now, true));
        if (draft.mode === 'xb') this.batcher?.forget(input.tenantId);
        return { binding, created: true };
      } catch (err) {
        if (err instanceof XRefused) throw new ConflictError('binding_conflict', `x already carries one of these numbers, or is held by an XB binding`, 'x');
        throw err;
      }
    }
    for (let attempt = 0; attempt < ALLOCATION_TRIES; attempt++) {
      const candidates = await this.candidates(input, draft, now);
      // First fit; after a clash (a concurrent bind took that X) a random one of the first few
      // free numbers, so that binds racing for the same lowest X spread out instead of queueing.
      const x = attempt === 0 ? candidates[0] : candidates[Math.floor(Math.random() * candidates.length)];
      if (x === undefined) throw new ConflictError('no_number_available', 'no number is free in the pool for these numbers', 'x');
      try {
        const binding = await this.indexed(await this.bindings.insertOn(x, draft, now, false));
        if (draft.mode === 'xb') this.batcher?.forget(input.tenantId);
        return { binding, created: true };
      } catch (err) {
        // Taken meanwhile, or too contended (binds racing on the same lowest X): try another.
        if (!(err instanceof XRefused) && !isRetryableTransactionError(err)) throw err;
      }
    }
    throw new AppError('allocation_contended', 'no free number could be taken after several tries; retry');
  }

  /** First fit in the wanted area, then (unless strictArea) anywhere in the pool. */
  private async candidates(input: NewBinding, draft: BindingDraft, now: number): Promise<string[]> {
    const members = membersOf(draft.mode, draft.a, draft.b);
    if (input.area !== undefined) {
      const inArea = await this.numbers.firstFitCandidates(input.tenantId, draft.mode, members, input.area, now, CANDIDATES_AFTER_CLASH);
      if (inArea.length) return inArea;
      if (input.strictArea) throw new ConflictError('area_unavailable', 'no number is free in the requested area', 'area');
    }
    const anywhere = await this.numbers.firstFitCandidates(input.tenantId, draft.mode, members, undefined, now, CANDIDATES_AFTER_CLASH);
    if (!anywhere.length) throw new ConflictError('no_number_available', 'no number is free in the pool for these numbers', 'x');
    return anywhere;
  }

  /** An announcement is the id of an entry of the operator's catalogue, never text to play. */
  private async requireMedia(id: string): Promise<void> {
    parseMediaId(id, 'announcement');
    if (!(await this.bindings.mediaExists(id))) {
      throw new ValidationError('announcement', 'announcement is not an entry of the media catalogue (GET /v1/media)', 'unknown_media');
    }
  }

  /** Blacklisted numbers are refused; so is the same A-B pair (either way round) bound as often as the tenant's pair limit within an hour (SPEC §7). */
  private async screen(tenantId: string, numbers: Record<string, string | null>, pair: readonly [string, string] | null, now: number): Promise<void> {
    const entries = Object.entries(numbers).filter((e): e is [string, string] => e[1] !== null);
    const { listed, pairBindings } = await this.blacklist.screen(tenantId, entries.map(([, n]) => n), pair, now - 3600_000);
    const [field] = entries.find(([, n]) => listed.has(n)) ?? [];
    if (field !== undefined) throw new ForbiddenError('number_blacklisted', `${field} is on the blacklist`, field);
    const pairLimit = await this.pairLimit(tenantId);
    if (pairLimit > 0 && pairBindings >= pairLimit) {
      throw new AppError('pair_rate_limited', `this pair was bound ${pairLimit} times in the last hour`, 'b');
    }
  }

  /** How often one A-B pair may be bound in an hour for this tenant (0: no limit). */
  private async pairLimit(tenantId: string): Promise<number> {
    return (await this.admission?.pairBindingsPerHour?.(tenantId)) ?? PAIR_BINDINGS_PER_HOUR;
  }

  /**
   * Ends a binding at once; its row stays as history. Answers only once the binding can no longer
   * route: after the index has taken its routes away, or with route_index_unavailable when the
   * index cannot be reached (the removal stays in the outbox and is applied when it is back). A
   * retried unbind of an ended binding removes its routes again before answering.
   */
  async unbind(tenantId: string, id: string, now: number = Date.now()): Promise<Binding> {
    const binding = await this.bindings.get(tenantId, id);
    if (!binding) throw new NotFoundError('binding');
    if (binding.state === 'active') await this.bindings.end(binding, now);
    const ended = await this.bindings.getVersioned(tenantId, id);
    if (!ended) throw new NotFoundError('binding');
    await this.outbox?.reassert(ended);
    return withoutVersion(ended);
  }

  /** A binding just committed at this version: answered once the index has it. */
  private async indexed({ binding, version }: { binding: Binding; version: number }): Promise<Binding> {
    await this.outbox?.applyCommitted({ version, binding: { ...binding, routeVersion: version } });
    return binding;
  }

  /** Moves bindings past their expiry into history; the outbox takes their routes away (routing stopped at the expiry already). */
  expireDue(now: number = Date.now(), limit = 1000): Promise<ExpiredBinding[]> {
    return this.bindings.expireDue(now, limit);
  }

  /**
   * Changes A or B, the expiry, the restriction, recording, max duration or announcement, keeping
   * the binding's id; the invariant is checked again for changed numbers, and every change is
   * written to the binding's history (numbers masked).
   */
  async update(tenantId: string, id: string, patch: BindingPatch, actor: string, now: number = Date.now(), requestId?: string): Promise<Binding> {
    const before = await this.bindings.get(tenantId, id);
    if (!before) throw new NotFoundError('binding');
    if (before.state !== 'active' || before.expiresAt <= now) throw new ConflictError('binding_ended', 'the binding has ended', 'id');
    if (before.kind === 'callback') throw new ConflictError('binding_not_updatable', 'a callback binding cannot be changed', 'id');
    const a = patch.a === undefined ? before.a : parseRealNumber(patch.a, 'a');
    const b = patch.b === undefined ? before.b : parseRealNumber(patch.b, 'b');
    if (before.kind === 'xb' && patch.a !== undefined) throw new ValidationError('a', 'an XB binding has no A', 'unknown_field');
    if (a === b) throw new ValidationError('b', 'a and b must be different numbers', 'same_number');
    if (typeof patch.announcement === 'string') await this.requireMedia(patch.announcement);
    await this.screen(tenantId, { a, b }, null, now);
    // A number newly put into a binding counts against its bindings-per-hour limit, as on bind.
    const added = { ...(a !== before.a && a !== null ? { a } : {}), ...(b !== before.b ? { b } : {}) };
    if (Object.keys(added).length > 0) await this.admission?.admitRebinding?.(tenantId, added, now);
    const expiresAt = patch.ttlSeconds === undefined ? before.expiresAt : now + bindingTtlSeconds(patch.ttlSeconds) * 1000;
    const after: Binding = {
      ...before,
      a,
      b,
      expiresAt,
      restriction: patch.restriction ?? before.restriction,
      record: patch.record ?? before.record,
      maxDurationSeconds: patch.maxDurationSeconds === undefined ? before.maxDurationSeconds : patch.maxDurationSeconds,
      endWarningSeconds: patch.endWarningSeconds === undefined ? before.endWarningSeconds : patch.endWarningSeconds,
      announcement: patch.announcement === undefined ? before.announcement : patch.announcement,
    };
    const change: Record<string, [unknown, unknown]> = {};
    for (const key of ['a', 'b', 'expiresAt', 'restriction', 'record', 'maxDurationSeconds', 'endWarningSeconds', 'announcement'] as const) {
      if (before[key] !== after[key]) {
        const masked = (v: unknown) => (typeof v === 'string' && (key === 'a' || key === 'b') ? maskPhone(v) : v);
        change[key] = [masked(before[key]), masked(after[key])];
      }
    }
    if (Object.keys(change).length === 0) {
      // Nothing to change (a retried update, say): the index still has to say what MySQL says.
      const current = await this.bindings.getVersioned(tenantId, id);
      if (current) await this.outbox?.reassert(current);
      return before;
    }
    const version = await this.bindings.rewrite(before, after, change, actor, requestId, now);
    await this.outbox?.applyCommitted({ version, binding: { ...after, routeVersion: version }, previous: before });
    const written = await this.bindings.get(tenantId, id);
    if (!written) throw new NotFoundError('binding');
    return written;
  }

  get(tenantId: string, id: string): Promise<Binding | null> {
    return this.bindings.get(tenantId, id);
  }

  history(tenantId: string, id: string): ReturnType<BindingStore['history']> {
    return this.bindings.history(tenantId, id);
  }

  listPage(tenantId: string, q: Parameters<BindingStore['listPage']>[1] = {}): ReturnType<BindingStore['listPage']> {
    return this.bindings.listPage(tenantId, q);
  }

  listActive(now: number = Date.now()): Promise<Array<Binding & VersionedBinding>> {
    return this.bindings.listActive(now);
  }

  listActivePages(now: number = Date.now(), pageSize?: number): AsyncGenerator<Array<Binding & VersionedBinding>> {
    return this.bindings.listActivePages(now, pageSize);
  }

  async importNumbers(tenantId: string, numbers: readonly PoolNumberInput[], opts: { allowLegacy?: boolean } = {}): Promise<number> {
    const imported = await this.numbers.importNumbers(tenantId, numbers, opts);
    this.batcher?.forget(tenantId);
    return imported;
  }

  poolStats(tenantId: string, now: number = Date.now()): Promise<PoolAreaStats[]> {
    return this.numbers.poolStats(tenantId, now);
  }

  async setNumberState(tenantId: string, x: string, state: PoolNumberState): Promise<PoolNumber> {
    const changed = await this.numbers.setNumberState(tenantId, x, state);
    this.batcher?.forget(tenantId);
    return changed;
  }

  numberState(tenantId: string, x: string): Promise<PoolNumberState | null> {
    return this.numbers.numberState(tenantId, x);
  }

  getNumber(tenantId: string, x: string, now: number = Date.now()): Promise<PoolNumber | null> {
    return this.numbers.getNumber(tenantId, x, now);
  }

  listNumbers(tenantId: string, q: Parameters<PoolStore['listNumbers']>[1], now: number = Date.now()): ReturnType<PoolStore['listNumbers']> {
    return this.numbers.listNumbers(tenantId, q, now);
  }

  blacklistHas(tenantId: string | null, number: string): Promise<boolean> {
    return this.blacklist.has(tenantId, number);
  }

  blacklistAdd(tenantId: string | null, number: string): Promise<void> {
    return this.blacklist.add(tenantId, number);
  }

  blacklistList(tenantId: string | null): Promise<string[]> {
    return this.blacklist.list(tenantId);
  }

  blacklistRemove(tenantId: string | null, number: string): Promise<void> {
    return this.blacklist.remove(tenantId, number);
  }
}

/** The batch's binds through abuse control: in bulk when the admission can, else one by one. */
function admitAll(admission: BindingAdmission, binds: ReadonlyArray<{ tenantId: string; numbers: { a: string | null; b: string }; now: number }>): Promise<ReadonlyArray<unknown>> {
  if (admission.admitBindings) return admission.admitBindings(binds);
  return Promise.all(binds.map((b) => admission.admitBinding(b.tenantId, b.numbers, b.now).then(() => null, (err: unknown) => err)));
}
