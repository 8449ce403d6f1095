import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { DisplayMode } from '../domain/call';
import { NotFoundError } from '../domain/errors';
import { toMs, toMsStrict, type Pool } from './mysql';

export type TenantStatus = 'active' | 'disabled';

export interface Tenant {
  readonly id: string;
  readonly name: string;
  readonly status: TenantStatus;
  readonly passthroughAllowed: boolean;
  /** Click-to-dial calls get the warning before their maximum duration unless the request says otherwise (false: none by default). */
  readonly clickToDialEndWarning: boolean;
  readonly defaultDisplayMode: DisplayMode;
  /** Privacy number used for click-to-dial when the request names none. */
  readonly defaultX: string | null;
  /** How many pool numbers the operator may assign to the tenant. */
  readonly poolQuota: number;
  /** How many times a click-to-dial may try A when A was never reached. */
  readonly maxAttempts: number;
  readonly retryDelaySeconds: number;
  readonly webhookUrl: string | null;
  readonly webhookSecret: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A tenant as found by its API key, with the key's id (an audit actor, e.g. `apikey:<id>`). */
export interface AuthenticatedTenant extends Tenant {
  readonly apiKeyId: string;
}

export interface NewTenant {
  readonly name: string;
  readonly passthroughAllowed?: boolean;
  readonly clickToDialEndWarning?: boolean;
  readonly defaultDisplayMode?: DisplayMode;
  readonly defaultX?: string | null;
  readonly poolQuota?: number;
  readonly maxAttempts?: number;
  readonly retryDelaySeconds?: number;
  readonly webhookUrl?: string | null;
  readonly webhookSecret?: string | null;
}

/** Any settings of a tenant, and its status. */
export type TenantPatch = Partial<NewTenant> & { readonly status?: TenantStatus };

export interface ApiKeyInfo {
  readonly id: string;
  readonly tenantId: string;
  readonly name: string;
  /** First 8 characters of the key (`ngk_` + 4), to tell keys apart. */
  readonly keyPrefix: string;
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

/** One 700 block: what a new tenant may be assigned unless the operator sets another quota. */
export const DEFAULT_POOL_QUOTA = 10_000;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_RE = /^ngk_[0-9A-Za-z]{32}$/;

/** 32 uniformly random base62 characters (rejection sampling, no modulo bias). */
function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += BASE62.charAt(byte % 62);
      if (out.length === length) break;
    }
  }
  return out;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

const COLUMNS: Record<keyof TenantPatch, string> = {
  name: 'name',
  status: 'status',
  passthroughAllowed: 'passthrough_allowed',
  clickToDialEndWarning: 'click_to_dial_end_warning',
  defaultDisplayMode: 'default_display_mode',
  defaultX: 'default_x',
  poolQuota: 'pool_quota',
  maxAttempts: 'max_attempts',
  retryDelaySeconds: 'retry_delay_seconds',
  webhookUrl: 'webhook_url',
  webhookSecret: 'webhook_secret',
};

function rowToTenant(r: RowDataPacket): Tenant {
  return {
    id: String(r.id),
    name: String(r.name),
    status: r.status as TenantStatus,
    passthroughAllowed: Boolean(r.passthrough_allowed),
    clickToDialEndWarning: r.click_to_dial_end_warning === undefined ? true : Boolean(r.click_to_dial_end_warning),
    defaultDisplayMode: r.default_display_mode as DisplayMode,
    defaultX: r.default_x === null ? null : String(r.default_x),
    poolQuota: Number(r.pool_quota),
    maxAttempts: Number(r.max_attempts),
    retryDelaySeconds: Number(r.retry_delay_seconds),
    webhookUrl: r.webhook_url === null ? null : String(r.webhook_url),
    webhookSecret: r.webhook_secret === null ? null : String(r.webhook_secret),
    createdAt: toMsStrict(r.created_at),
    updatedAt: toMsStrict(r.updated_at),
  };
}

export class TenantStore {
  constructor(private readonly pool: Pool) {}

  async create(input: NewTenant): Promise<Tenant> {
    const id = randomUUID();
    const now = new Date();
    await this.pool.execute(
      `INSERT INTO tenants (id, name, status, passthrough_allowed, default_display_mode, default_x, pool_quota,
         max_attempts, retry_delay_seconds, webhook_url, webhook_secret, created_at, updated_at)
       VALUES (?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        id,
        input.name,
        // Pass-through shows A's real number to B: a tenant has it only when the operator says so.
        input.passthroughAllowed ?? false,
        input.defaultDisplayMode ?? 'fixed',
        input.defaultX ?? null,
        input.poolQuota ?? DEFAULT_POOL_QUOTA,
        input.maxAttempts ?? 1,
        input.retryDelaySeconds ?? 60,
        input.webhookUrl ?? null,
        input.webhookSecret ?? null,
        now,
        now,
      ],
    );
    const t = await this.get(id);
    if (!t) throw new Error(`tenant ${id} vanished after insert`);
    return t;
  }

  /** Every tenant, oldest first. */
  async list(): Promise<Tenant[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM tenants ORDER BY created_at, id');
    return rows.map(rowToTenant);
  }

  async get(id: string): Promise<Tenant | null> {
    const [rows] = await this.pool.execute<RowDataPacket[]>('SELECT * FROM tenants WHERE id = ?', [id]);
    return rows[0] ? rowToTenant(rows[0]) : null;
  }

  /** Applies the fields present in the patch. NotFoundError when there is no such tenant. */
  async update(id: string, patch: TenantPatch): Promise<Tenant> {
    const sets: string[] = [];
    const values: unknown[] = [];
    for (const [k, v] of Object.entries(patch) as Array<[string, unknown]>) {
      const col = COLUMNS[k as keyof TenantPatch] as string | undefined;
      if (col === undefined || v === undefined) continue;
      sets.push(`${col} = ?`);
      values.push(v);
    }
    sets.push('updated_at = ?');
    values.push(new Date(), id);
    const [res] = await this.pool.execute<ResultSetHeader>(`UPDATE tenants SET ${sets.join(', ')} WHERE id = ?`, values as never);
    if (res.affectedRows === 0) throw new NotFoundError('tenant');
    const t = await this.get(id);
    if (!t) throw new NotFoundError('tenant');
    return t;
  }

  /** Makes a new key. The key is returned this once; only its sha256 is stored. */
  async createApiKey(tenantId: string, name: string): Promise<{ id: string; key: string }> {
    if (!(await this.get(tenantId))) throw new NotFoundError('tenant');
    const id = randomUUID();
    const key = `ngk_${randomBase62(32)}`;
    await this.pool.execute(
      'INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      [id, tenantId, name, key.slice(0, 8), hashApiKey(key), new Date()],
    );
    return { id, key };
  }

  async listApiKeys(tenantId: string): Promise<ApiKeyInfo[]> {
    const [rows] = await this.pool.execute<RowDataPacket[]>(
      'SELECT id, tenant_id, name, key_prefix, created_at, revoked_at FROM api_keys WHERE tenant_id = ? ORDER BY created_at, id',
      [tenantId],
    );
    return rows.map((r) => ({
      id: String(r.id),
      tenantId: String(r.tenant_id),
      name: String(r.name),
      keyPrefix: String(r.key_prefix),
      createdAt: toMsStrict(r.created_at),
      revokedAt: toMs(r.revoked_at),
    }));
  }

  /** The active tenant owning this (unrevoked) key, or null. */
  async authenticate(key: string): Promise<AuthenticatedTenant | null> {
    if (typeof key !== 'string' || !KEY_RE.test(key)) return null;
    const [rows] = await this.pool.execute<RowDataPacket[]>(
      `SELECT t.*, k.id AS api_key_id FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
        WHERE k.key_hash = ? AND k.revoked_at IS NULL AND t.status = 'active'`,
      [hashApiKey(key)],
    );
    const r = rows[0];
    return r ? { ...rowToTenant(r), apiKeyId: String(r.api_key_id) } : null;
  }

  /** What checks a job signed with this key: its tenant and the stored hash. Null for an unknown or revoked key, or a disabled tenant. */
  async signingKey(keyId: string): Promise<{ tenantId: string; keyHash: string } | null> {
    const [rows] = await this.pool.execute<RowDataPacket[]>(
      `SELECT k.tenant_id, k.key_hash FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
        WHERE k.id = ? AND k.revoked_at IS NULL AND t.status = 'active'`,
      [keyId],
    );
    const r = rows[0];
    return r ? { tenantId: String(r.tenant_id), keyHash: String(r.key_hash) } : null;
  }

  /** Revokes a key of this tenant (no-op when already revoked). NotFoundError when the tenant has no such key. */
  async revokeApiKey(tenantId: string, keyId: string): Promise<void> {
    const [res] = await this.pool.execute<ResultSetHeader>(
      'UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND tenant_id = ?',
      [new Date(), keyId, tenantId],
    );
    if (res.affectedRows === 0) throw new NotFoundError('api key');
  }
}
