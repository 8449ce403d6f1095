import type { RowDataPacket } from 'mysql2/promise';
import type { Logger } from '../logger';
import { rowToBinding } from './binding-rows';
import { toDate, type Pool } from './mysql';
import { extensionMember } from '../domain/binding-rules';
import type { ExtensionDecision, IndexableBinding, RouteDecision, RouteIndex } from './route-index';

export interface RouteLookupDeps {
  readonly index: Pick<RouteIndex, 'lookupChecked' | 'decideFromBindings' | 'lookupExtensionChecked' | 'decideExtensionFromBindings' | 'isReady' | 'rebuild'>;
  /** The bindings that route now: the whole index, rebuilt from them. */
  readonly listActive: () => Promise<readonly IndexableBinding[]>;
  /** The active bindings of X that can route this caller: its own (X, caller) member and X's XB member (and one AXE binding, if X carries any). */
  readonly activeFor: (x: string, caller: string, now: number) => Promise<readonly IndexableBinding[]>;
  /** The active binding holding this extension on X, if any. */
  readonly activeForExtension?: (x: string, extension: string, now: number) => Promise<readonly IndexableBinding[]>;
  readonly logger: Logger;
  /** Told each time the index was found incomplete and a rebuild starts (metrics, tests). */
  readonly onRebuild?: (bindings: number) => void;
}

/**
 * How a call to X finds its route: from the Redis index (one MGET, which also reads the index's
 * completeness marker). When the marker is gone Redis has lost the index (a restart without its
 * data, a flush): the rebuild from MySQL starts at once, and until it is done a lookup that misses
 * in Redis is answered from MySQL instead of being refused. A hit is served from Redis: every route
 * there was put from MySQL since the loss.
 */
export class RouteLookup {
  private rebuilding: Promise<void> | undefined;

  constructor(private readonly deps: RouteLookupDeps) {}

  async lookup(x: string, caller: string, now: number = Date.now()): Promise<RouteDecision> {
    const { decision, complete } = await this.deps.index.lookupChecked(x, caller, now);
    if (complete) return decision;
    void this.ensureComplete().catch(() => undefined);
    if (!('refused' in decision) || decision.refused !== 'unbound') return decision;
    return this.deps.index.decideFromBindings(await this.deps.activeFor(x, caller, now), x, caller, now);
  }

  /** Where a keyed extension goes: from the index, or from MySQL while the index is incomplete (as lookup()). */
  async lookupExtension(x: string, extension: string, now: number = Date.now()): Promise<ExtensionDecision> {
    const { decision, complete } = await this.deps.index.lookupExtensionChecked(x, extension, now);
    if (complete || !this.deps.activeForExtension) return decision;
    void this.ensureComplete().catch(() => undefined);
    if ('route' in decision) return decision;
    return this.deps.index.decideExtensionFromBindings(await this.deps.activeForExtension(x, extension, now), x, extension, now);
  }

  /** Whether the index is complete; when it is not, its rebuild is started (not awaited). */
  async isComplete(): Promise<boolean> {
    if (this.rebuilding) return false;
    if (await this.deps.index.isReady()) return true;
    void this.ensureComplete().catch(() => undefined);
    return false;
  }

  /** Rebuilds the index from MySQL unless it is complete; one rebuild at a time (callers share it). */
  ensureComplete(): Promise<void> {
    this.rebuilding ??= this.rebuildIfLost().finally(() => (this.rebuilding = undefined));
    return this.rebuilding;
  }

  private async rebuildIfLost(): Promise<void> {
    if (await this.deps.index.isReady()) return;
    const started = Date.now();
    try {
      const n = await this.deps.index.rebuild(await this.deps.listActive());
      this.deps.onRebuild?.(n);
      this.deps.logger.warn({ bindings: n, ms: Date.now() - started }, 'routing index rebuilt from MySQL');
    } catch (err) {
      this.deps.logger.error({ err }, 'routing index rebuild failed; calls that miss in Redis are answered from MySQL until it succeeds');
      throw err;
    }
  }
}

/**
 * The active bindings that can route a caller on X, straight from MySQL: the binding holding the
 * member (X, caller) and the XB binding holding (X, `*`) (migration 002: at most one each).
 */
export function activeBindingsFor(pool: Pool): RouteLookupDeps['activeFor'] {
  return async (x, caller, now) => {
    // One AXE binding of X, if any, says X asks for extensions (and how many digits).
    const [rows] = await pool.query<RowDataPacket[]>(
      `(SELECT b.* FROM binding_members m JOIN bindings b ON b.id = m.binding_id
         WHERE m.x = ? AND m.number IN (?, '*') AND m.expires_at > ? AND b.state = 'active')
       UNION ALL
       (SELECT b.* FROM binding_members m JOIN bindings b ON b.id = m.binding_id
         WHERE m.x = ? AND m.number LIKE '#%' AND m.expires_at > ? AND b.state = 'active' LIMIT 1)`,
      [x, caller, toDate(now), x, toDate(now)],
    );
    return rows.map(rowToBinding);
  };
}

/** The active binding holding an extension on X, straight from MySQL (migration 045: at most one). */
export function activeBindingsForExtension(pool: Pool): NonNullable<RouteLookupDeps['activeForExtension']> {
  return async (x, extension, now) => {
    const [rows] = await pool.query<RowDataPacket[]>(
      `SELECT b.* FROM binding_members m JOIN bindings b ON b.id = m.binding_id
        WHERE m.x = ? AND m.number = ? AND m.expires_at > ? AND b.state = 'active'`,
      [x, extensionMember(extension), toDate(now)],
    );
    return rows.map(rowToBinding);
  };
}
