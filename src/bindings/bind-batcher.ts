import { randomUUID } from 'node:crypto';
import { membersOf, PAIR_BINDINGS_PER_HOUR, XB_HOLD, type Binding } from '../domain/binding-rules';
import { AppError, ConflictError, ForbiddenError } from '../domain/errors';
import { firstFitBy } from '../domain/pool';
import { BindBatchStore, XbHoldClash, type BatchEntry, type PoolSlot } from '../stores/bind-batch-store';
import type { BindingDraft, NewBinding } from '../stores/binding-store';
import type { Pool } from '../stores/mysql';
import type { VersionedBinding } from '../stores/route-index';
import type { RouteOutbox } from '../stores/route-outbox';

/**
 * Group commit for AXB binds with an allocated X, the bulk of the traffic: binds arriving while
 * earlier batches are being written wait and go together, so a batch costs a fixed number of
 * round trips (idempotency, screening and occupancy read in bulk, one transaction with multi-row
 * INSERTs, one Redis pipeline) however many binds it carries. A bind arriving alone goes at once.
 *
 * Allocation is first fit (domain/pool.ts) over an occupancy view: the tenant's enabled numbers
 * (cached briefly) and, read per batch, where each of the batch's numbers is held. MySQL stays
 * the judge (the member key and the XB trigger): a bind that loses a race to another batch or
 * another controller is allocated again in the next round; one that still cannot be placed after
 * a few rounds goes the single-bind way. Answers, refusals and their order are those of a single bind.
 */

export interface BatchedBind {
  readonly input: NewBinding;
  readonly draft: BindingDraft;
  readonly now: number;
}

export type BindResult = { binding: Binding; created: boolean };

export interface BindBatcherDeps {
  readonly pool: Pool;
  readonly outbox: RouteOutbox;
  /** Abuse control on the batch's new bindings (bindings per number), after screening, as for single binds one after the other: per bind, null or its refusal. */
  readonly admit?: (binds: ReadonlyArray<{ tenantId: string; numbers: { a: string | null; b: string }; now: number }>) => Promise<ReadonlyArray<unknown>>;
  /** The tenant's pair limit (0: none). */
  readonly pairLimit: (tenantId: string) => Promise<number>;
  /** The whole single-bind path (a second bind with a requestId already in the batch: a replay once the first is written). */
  readonly bindAlone: (bind: BatchedBind) => Promise<BindResult>;
  /** Allocation and write for a bind already screened and admitted, in its own transaction. */
  readonly placeAlone: (bind: BatchedBind) => Promise<BindResult>;
  /** Most binds in one transaction. */
  readonly maxBatch: number;
  /** Batches written at once. */
  readonly maxInFlight: number;
}

interface Pending extends BatchedBind {
  /** A and B of the AXB binding. */
  readonly a: string;
  readonly b: string;
  readonly resolve: (result: BindResult) => void;
  readonly reject: (err: unknown) => void;
}

/** Allocation rounds before a bind that keeps losing races goes the single-bind way. */
const ROUNDS = 3;
/** How long a tenant's list of enabled numbers is trusted; a number taken out meanwhile is refused under lock and the list read again. */
const POOL_VIEW_MS = 2000;
/** Binds whose clocks differ by more than this are not batched together (tests and simulations pass their own). */
const SAME_CLOCK_MS = 1000;

export class BindBatcher {
  private readonly store: BindBatchStore;
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly views = new Map<string, { loadedAt: number; view: Promise<{ slots: PoolSlot[]; xbHeld: Map<string, number> }> }>();

  constructor(private readonly deps: BindBatcherDeps) {
    this.store = new BindBatchStore(deps.pool);
  }

  /** An AXB bind with its X to be allocated (anything else goes the single-bind way). */
  bind(bind: BatchedBind): Promise<BindResult> {
    const { a, b, mode } = bind.draft;
    if (mode !== 'axb' || a === null || bind.input.x !== undefined) return this.deps.bindAlone(bind);
    return new Promise((resolve, reject) => {
      this.queue.push({ ...bind, a, b, resolve, reject });
      this.schedule();
    });
  }

  /** The tenant's pool or its XB holds changed here: read them again before the next allocation. */
  forget(tenantId: string): void {
    this.views.delete(tenantId);
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.deps.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    // Binds made in the same turn of the event loop go together.
    setImmediate(() => {
      this.scheduled = false;
      while (this.inFlight < this.deps.maxInFlight && this.queue.length > 0) {
        const batch = this.queue.splice(0, this.deps.maxBatch);
        this.inFlight++;
        void this.runByClock(batch).finally(() => {
          this.inFlight--;
          this.schedule();
        });
      }
    });
  }

  private async runByClock(batch: Pending[]): Promise<void> {
    const sorted = [...batch].sort((p, q) => p.now - q.now);
    const groups: Array<{ since: number; binds: Pending[] }> = [];
    for (const p of sorted) {
      const last = groups.at(-1);
      if (last && p.now - last.since <= SAME_CLOCK_MS) last.binds.push(p);
      else groups.push({ since: p.now, binds: [p] });
    }
    for (const { binds } of groups) {
      try {
        await this.run(binds);
      } catch (err) {
        // A store failed for the whole batch: every bind in it gets that answer.
        for (const p of binds) p.reject(err);
      }
    }
  }

  private async run(batch: Pending[]): Promise<void> {
    const now = Math.max(...batch.map((p) => p.now));
    // A second bind with a requestId already in this batch is a replay of the first: it waits for it.
    const seen = new Set<string>();
    const later: Pending[] = [];
    const fresh: Pending[] = [];
    for (const p of batch) {
      const key = p.input.requestId === undefined ? null : `${p.input.tenantId}|${p.input.requestId}`;
      if (key !== null && seen.has(key)) later.push(p);
      else fresh.push(p);
      if (key !== null) seen.add(key);
    }

    const requested = fresh.flatMap((p) => (p.input.requestId === undefined ? [] : [[p.input.tenantId, p.input.requestId] as const]));
    const numbers = fresh.flatMap((p) => [[p.input.tenantId, p.a] as const, [p.input.tenantId, p.b] as const]);
    const pairs = fresh.map((p) => [p.input.tenantId, p.a, p.b] as const);
    const [existing, screened] = await Promise.all([this.store.findByRequests(requested), this.store.screen(numbers, pairs, now - 3600_000, now)]);

    const replays: Array<{ p: Pending; binding: Binding & VersionedBinding }> = [];
    const toScreen: Pending[] = [];
    for (const p of fresh) {
      const found = p.input.requestId === undefined ? undefined : existing.get(`${p.input.tenantId}|${p.input.requestId}`);
      if (found) replays.push({ p, binding: found });
      else toScreen.push(p);
    }
    const admitted = await this.screenAndAdmit(toScreen, screened);

    const written: Array<{ p: Pending; entry: BatchEntry; version: number }> = [];
    const replayLater: Pending[] = [...later];
    const alone: Pending[] = [];
    let open = admitted;
    let occupancy = screened.held;
    for (let round = 0; round < ROUNDS && open.length > 0; round++) {
      if (round > 0) occupancy = await this.store.heldOn(open.flatMap((p) => [p.a, p.b]), now);
      const entries = await this.allocate(open, occupancy, now);
      if (entries.length === 0) break;
      const byId = new Map(entries.map((e) => [e.entry.id, e]));
      let result;
      try {
        result = await this.store.insertBatch(entries.map((e) => e.entry), now);
      } catch (err) {
        if (!(err instanceof XbHoldClash)) throw err;
        // An XB binding this controller had not seen holds one of these X: read the pools again, place everyone again.
        for (const e of entries) this.forget(e.p.input.tenantId);
        open = entries.map((e) => e.p);
        continue;
      }
      for (const [id, version] of result.written) {
        const { p, entry } = entryOf(byId, id);
        written.push({ p, entry, version });
      }
      for (const id of result.duplicateRequest) replayLater.push(entryOf(byId, id).p);
      for (const id of result.xRefused) this.forget(entryOf(byId, id).p.input.tenantId);
      open = [...result.clashed, ...result.xRefused].map((id) => entryOf(byId, id).p);
    }
    alone.push(...open);

    try {
      await this.deps.outbox.applyBatch(
        written.map(({ entry, version }) => ({ version, binding: { ...toBinding(entry), routeVersion: version } })),
        replays.map((r) => r.binding),
      );
      for (const { p, entry } of written) p.resolve({ binding: toBinding(entry), created: true });
      for (const { p, binding } of replays) p.resolve({ binding: withoutVersion(binding), created: false });
    } catch (err) {
      for (const { p } of [...written, ...replays]) p.reject(err);
    }
    for (const p of alone) this.deps.placeAlone(p).then(p.resolve, p.reject);
    for (const p of replayLater) this.deps.bindAlone(p).then(p.resolve, p.reject);
  }

  /** Blacklist, then the pair limit, then abuse control, in a single bind's order; refused binds are answered here. */
  private async screenAndAdmit(batch: Pending[], screened: Awaited<ReturnType<BindBatchStore['screen']>>): Promise<Pending[]> {
    const limits = new Map<string, number>();
    for (const tenantId of new Set(batch.map((p) => p.input.tenantId))) {
      limits.set(tenantId, await this.deps.pairLimit(tenantId));
    }
    const passed: Pending[] = [];
    const pairCounts = screened.pairBindings;
    for (const p of batch) {
      const { tenantId } = p.input;
      const field = (['a', 'b'] as const).find((f) => screened.listed.has(`${tenantId}|${p[f]}`));
      if (field !== undefined) {
        p.reject(new ForbiddenError('number_blacklisted', `${field} is on the blacklist`, field));
        continue;
      }
      const [low, high] = [p.a, p.b].sort();
      const pairKey = `${tenantId}|${low}|${high}`;
      const limit = limits.get(tenantId) ?? PAIR_BINDINGS_PER_HOUR;
      const count = pairCounts.get(pairKey) ?? 0;
      if (limit > 0 && count >= limit) {
        p.reject(new AppError('pair_rate_limited', `this pair was bound ${limit} times in the last hour`, 'b'));
        continue;
      }
      // Binds of one pair in one batch count against each other, as they would one after the other.
      pairCounts.set(pairKey, count + 1);
      passed.push(p);
    }
    if (!this.deps.admit || passed.length === 0) return passed;
    const refusals = await this.deps.admit(passed.map((p) => ({ tenantId: p.input.tenantId, numbers: { a: p.a, b: p.b }, now: p.now })));
    return passed.filter((p, i) => {
      const refusal = refusals[i];
      if (refusal === null || refusal === undefined) return true;
      p.reject(refusal);
      return false;
    });
  }

  /** First fit for each bind, in arrival order, each seeing the X given to those before it; refusals are answered here. */
  private async allocate(batch: Pending[], held: Map<string, Set<string>>, now: number): Promise<Array<{ p: Pending; entry: BatchEntry }>> {
    const out: Array<{ p: Pending; entry: BatchEntry }> = [];
    for (const p of batch) {
      const { slots, xbHeld } = await this.view(p.input.tenantId, now);
      const members = membersOf('axb', p.a, p.b);
      const heldOn = (slot: PoolSlot): ReadonlySet<string> => {
        const here = new Set<string>();
        for (const n of members) if (held.get(n)?.has(slot.x)) here.add(n);
        if ((xbHeld.get(slot.x) ?? 0) > now) here.add(XB_HOLD);
        return here;
      };
      let x: string | undefined;
      if (p.input.area !== undefined) {
        x = firstFitBy(slots, heldOn, members, p.input.area)[0];
        if (x === undefined && p.input.strictArea) {
          p.reject(new ConflictError('area_unavailable', 'no number is free in the requested area', 'area'));
          continue;
        }
      }
      x ??= firstFitBy(slots, heldOn, members)[0];
      if (x === undefined) {
        p.reject(new ConflictError('no_number_available', 'no number is free in the pool for these numbers', 'x'));
        continue;
      }
      for (const n of members) {
        let xs = held.get(n);
        if (!xs) held.set(n, (xs = new Set()));
        xs.add(x);
      }
      out.push({ p, entry: { id: randomUUID(), x, draft: p.draft, now: p.now } });
    }
    return out;
  }

  private view(tenantId: string, now: number): Promise<{ slots: PoolSlot[]; xbHeld: Map<string, number> }> {
    const cached = this.views.get(tenantId);
    if (cached && Date.now() - cached.loadedAt < POOL_VIEW_MS) return cached.view;
    const view = this.store.poolView(tenantId, now);
    this.views.set(tenantId, { loadedAt: Date.now(), view });
    view.catch(() => this.views.delete(tenantId));
    return view;
  }
}

function entryOf<T>(byId: ReadonlyMap<string, T>, id: string): T {
  const e = byId.get(id);
  if (e === undefined) throw new Error(`bind batch: no entry ${id}`);
  return e;
}

function toBinding({ id, x, draft: d }: BatchEntry): Binding {
  return {
    id,
    tenantId: d.tenantId,
    requestId: d.requestId ?? null,
    kind: d.mode,
    x,
    a: d.a,
    b: d.b,
    extension: null,
    state: 'active',
    expiresAt: d.expiresAt,
    restriction: d.restriction ?? 'both',
    record: d.record ?? false,
    maxDurationSeconds: d.maxDurationSeconds ?? null,
    endWarningSeconds: d.endWarningSeconds ?? null,
    announcement: d.announcement ?? null,
    allowList: d.allowList,
    userData: d.userData ?? null,
  };
}

/** What the API shows of a binding: not the index's version. */
export function withoutVersion(b: Binding): Binding {
  return {
    id: b.id, tenantId: b.tenantId, requestId: b.requestId, kind: b.kind, x: b.x, a: b.a, b: b.b, extension: b.extension ?? null, state: b.state, expiresAt: b.expiresAt,
    restriction: b.restriction, record: b.record, maxDurationSeconds: b.maxDurationSeconds, endWarningSeconds: b.endWarningSeconds, announcement: b.announcement,
    allowList: b.allowList, userData: b.userData,
  };
}
