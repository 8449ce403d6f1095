import { randomBytes } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import type { Pool } from './mysql';

/**
 * A secret every instance must agree on, made by whichever instance starts first: INSERT IGNORE
 * of a fresh random value, then read back what won (migration 014).
 */
export async function platformSecret(pool: Pool, name: string): Promise<string> {
  await pool.query('INSERT IGNORE INTO platform_secrets (name, value) VALUES (?, ?)', [name, randomBytes(32).toString('base64url')]);
  const [rows] = await pool.query<RowDataPacket[]>('SELECT value FROM platform_secrets WHERE name = ?', [name]);
  if (!rows[0]) throw new Error(`platform secret ${name} could not be stored`);
  return String(rows[0].value);
}
