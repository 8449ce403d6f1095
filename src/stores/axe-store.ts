import type { RowDataPacket } from 'mysql2/promise';
import { EXTENSION_LENGTH, extensionCapacity, extensionMember, XB_HOLD } from '../domain/binding-rules';
import { ConflictError } from '../domain/errors';
import { toDate, type Pool } from './mysql';
import { inTransaction } from './transaction';

/**
 * The SQL of AXE bindings (X plus an extension) besides the binding write itself (binding-store.ts
 * insertOn): the tenant's extension length, the X with free extensions (domain/pool.ts
 * firstFitWithExtension asked of MySQL) and the extensions an X carries now.
 */
export class AxeStore {
  constructor(private readonly pool: Pool) {}

  /** The tenant's extension length (the default when it never set one). */
  async extensionLength(tenantId: string): Promise<number> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT extension_length FROM tenant_axe_settings WHERE tenant_id = ?', [tenantId]);
    return rows[0] ? Number(rows[0].extension_length) : EXTENSION_LENGTH.default;
  }

  /**
   * Sets the tenant's extension length. Refused (409 axe_bindings_active) while any of its AXE
   * bindings is active: every X keeps extensions of one length, the number of digits its callers are asked for.
   */
  async setExtensionLength(tenantId: string, length: number, now: number): Promise<number> {
    return inTransaction(this.pool, async (conn) => {
      // Serialises with other changes of this tenant's setting; AXE binds read it before their own transaction.
      await conn.query('INSERT INTO tenant_axe_settings (tenant_id, extension_length) VALUES (?, ?) ON DUPLICATE KEY UPDATE tenant_id = tenant_id', [
        tenantId,
        EXTENSION_LENGTH.default,
      ]);
      const [held] = await conn.query<RowDataPacket[]>('SELECT extension_length FROM tenant_axe_settings WHERE tenant_id = ? FOR UPDATE', [tenantId]);
      if (Number(held[0]?.extension_length) === length) return length;
      const [active] = await conn.query<RowDataPacket[]>(
        "SELECT 1 FROM bindings WHERE tenant_id = ? AND kind = 'axe' AND state = 'active' AND expires_at > ? LIMIT 1",
        [tenantId, toDate(now)],
      );
      if (active.length > 0) {
        throw new ConflictError('axe_bindings_active', 'the extension length can change only while the tenant has no active AXE binding', 'extensionLength');
      }
      await conn.query('UPDATE tenant_axe_settings SET extension_length = ?, updated_at = ? WHERE tenant_id = ?', [length, toDate(now), tenantId]);
      return length;
    });
  }

  /**
   * The lowest enabled X of the tenant's pool (in the area when named) with fewer than 10^length
   * extensions, all of that length, where none of `avoid` is held (the XB marker, B when A is set, a
   * wanted extension's member): domain/pool.ts firstFitWithExtension asked of MySQL.
   */
  async candidates(tenantId: string, avoid: readonly string[], length: number, area: string | undefined, now: number, limit: number): Promise<string[]> {
    const at = toDate(now);
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT p.x FROM pool_numbers p
        WHERE p.tenant_id = ? AND p.state = 'enabled' ${area === undefined ? '' : 'AND p.area = ?'}
          AND NOT EXISTS (SELECT 1 FROM binding_members m WHERE m.x = p.x AND m.number IN (?) AND m.expires_at > ?)
          AND NOT EXISTS (SELECT 1 FROM binding_members m WHERE m.x = p.x AND m.number LIKE '#%' AND CHAR_LENGTH(m.number) <> ? AND m.expires_at > ?)
          AND (SELECT COUNT(*) FROM binding_members m WHERE m.x = p.x AND m.number LIKE '#%' AND m.expires_at > ?) < ?
        ORDER BY p.x LIMIT ${limit}`,
      [tenantId, ...(area === undefined ? [] : [area]), [XB_HOLD, ...avoid], at, length + 1, at, at, extensionCapacity(length)],
    );
    return rows.map((r) => String(r.x));
  }

  /** The extension members X carries now (expired ones are free: the bind that finds them ends them). */
  async heldExtensions(x: string, now: number): Promise<Set<string>> {
    const [rows] = await this.pool.query<RowDataPacket[]>("SELECT number FROM binding_members WHERE x = ? AND number LIKE '#%' AND expires_at > ?", [
      x,
      toDate(now),
    ]);
    return new Set(rows.map((r) => String(r.number)));
  }

  /** Whether this extension is held on X now. */
  async holds(x: string, extension: string, now: number): Promise<boolean> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT 1 FROM binding_members WHERE x = ? AND number = ? AND expires_at > ?', [
      x,
      extensionMember(extension),
      toDate(now),
    ]);
    return rows.length > 0;
  }
}
