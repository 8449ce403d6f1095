import type { RowDataPacket } from 'mysql2/promise';
import { toMs, type Pool } from '../stores/mysql';

/** A list: number -> when its entry ends (null: never; a block of the disposal policy has an end). */
type Listed = ReadonlyMap<string, number | null>;

const onList = (list: Listed, number: string, now: number): boolean => {
  if (!list.has(number)) return false;
  const until = list.get(number) ?? null;
  return until === null || until > now;
};

/**
 * Whether numbers are on a tenant's blacklist or the platform's (tenant_id ''), for the call
 * paths (click-to-dial requests and queued jobs). Each list is held whole in memory and re-read
 * at most every `ttlMs` (blacklists are short; calls are many and mostly to numbers never seen
 * before, so a per-number cache would still read MySQL on nearly every call). A number put on the
 * list is refused by every controller within `ttlMs`.
 */
export class BlacklistLookup {
  private readonly lists = new Map<string, { numbers: Listed; until: number }>();
  private readonly loading = new Map<string, Promise<Listed>>();
  /** Bumped by forget(): a read that started before the change must not be kept. */
  private generation = 0;

  constructor(
    private readonly pool: Pool,
    private readonly ttlMs: number,
  ) {}

  /** This instance applies a change it made at once; other instances within `ttlMs`. */
  forget(tenantId: string | null): void {
    this.generation++;
    this.lists.delete(tenantId ?? '');
    this.loading.delete(tenantId ?? '');
  }

  /** The listed ones among `numbers`. */
  async listed(tenantId: string, numbers: readonly string[], now: number = Date.now()): Promise<Set<string>> {
    const [own, platform] = await Promise.all([this.list(tenantId, now), this.list('', now)]);
    return new Set(numbers.filter((n) => onList(own, n, now) || onList(platform, n, now)));
  }

  /**
   * For routing calls to X, which must not wait on MySQL: a list already held is used even when
   * due for a refresh (the refresh runs behind it); only a tenant's very first call waits.
   */
  async listedForRouting(tenantId: string, numbers: readonly string[], now: number = Date.now()): Promise<Set<string>> {
    const held = (id: string): Promise<Listed> => {
      const list = this.lists.get(id);
      if (!list) return this.list(id, now);
      if (list.until <= now) void this.list(id, now).catch(() => undefined);
      return Promise.resolve(list.numbers);
    };
    const [own, platform] = await Promise.all([held(tenantId), held('')]);
    return new Set(numbers.filter((n) => onList(own, n, now) || onList(platform, n, now)));
  }

  private async list(tenantId: string, now: number): Promise<Listed> {
    const held = this.lists.get(tenantId);
    if (held && held.until > now) return held.numbers;
    const inFlight = this.loading.get(tenantId);
    if (inFlight) return inFlight;
    const generation = this.generation;
    const load = this.pool
      .query<RowDataPacket[]>('SELECT number, expires_at FROM blacklist WHERE tenant_id = ?', [tenantId])
      .then(([rows]) => {
        const numbers: Listed = new Map(rows.map((r) => [String(r.number), toMs(r.expires_at)]));
        if (generation === this.generation) this.lists.set(tenantId, { numbers, until: now + this.ttlMs });
        return numbers;
      })
      .finally(() => {
        if (this.loading.get(tenantId) === load) this.loading.delete(tenantId);
      });
    this.loading.set(tenantId, load);
    return load;
  }
}
