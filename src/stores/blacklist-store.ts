import type { RowDataPacket } from 'mysql2/promise';
import { parseRealNumber } from '../domain/phone-number';
import { toDate, type Pool } from './mysql';

/** Numbers never bound: a tenant's blacklist, and the platform's (tenant '' in the table, null here). */
export class BlacklistStore {
  constructor(
    private readonly pool: Pool,
    /** Told when a list changes (what is cached of it must go). */
    private readonly changed?: (tenantId: string | null) => void,
  ) {}

  /** Whether a number is on the tenant's blacklist (or, with tenantId null, on the platform's). */
  async has(tenantId: string | null, number: string): Promise<boolean> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT 1 FROM blacklist WHERE tenant_id = ? AND number = ?', [
      tenantId ?? '',
      parseRealNumber(number, 'number'),
    ]);
    return rows.length > 0;
  }

  /** Numbers never bound (tenant's list, or the platform's with tenantId null). */
  async add(tenantId: string | null, number: string): Promise<void> {
    await this.pool.query('INSERT IGNORE INTO blacklist (tenant_id, number) VALUES (?, ?)', [tenantId ?? '', parseRealNumber(number, 'number')]);
    this.changed?.(tenantId);
  }

  /** The tenant's blacklist (or the platform's with tenantId null), in number order. */
  async list(tenantId: string | null): Promise<string[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT number FROM blacklist WHERE tenant_id = ? ORDER BY number', [tenantId ?? '']);
    return rows.map((r) => String(r.number));
  }

  async remove(tenantId: string | null, number: string): Promise<void> {
    await this.pool.query('DELETE FROM blacklist WHERE tenant_id = ? AND number = ?', [tenantId ?? '', parseRealNumber(number, 'number')]);
    this.changed?.(tenantId);
  }

  /**
   * What a new binding is screened for, in one round trip (it runs on every bind): which of these
   * numbers are blacklisted (the tenant's list or the platform's), and how many bindings the pair
   * (either way round) had since `since`.
   */
  async screen(tenantId: string, numbers: readonly string[], pair: readonly [string, string] | null, since: number): Promise<{ listed: Set<string>; pairBindings: number }> {
    const parts: string[] = [];
    const params: unknown[] = [];
    if (numbers.length > 0) {
      parts.push("SELECT 'listed' AS k, number AS v FROM blacklist WHERE tenant_id IN (?, '') AND number IN (?)");
      params.push(tenantId, numbers);
    }
    if (pair) {
      parts.push("SELECT 'pair' AS k, COUNT(*) AS v FROM bindings WHERE tenant_id = ? AND ((a = ? AND b = ?) OR (a = ? AND b = ?)) AND created_at > ?");
      params.push(tenantId, pair[0], pair[1], pair[1], pair[0], toDate(since));
    }
    if (parts.length === 0) return { listed: new Set(), pairBindings: 0 };
    const [rows] = await this.pool.query<RowDataPacket[]>(parts.join(' UNION ALL '), params);
    return {
      listed: new Set(rows.filter((r) => r.k === 'listed').map((r) => String(r.v))),
      pairBindings: Number(rows.find((r) => r.k === 'pair')?.v ?? 0),
    };
  }
}
