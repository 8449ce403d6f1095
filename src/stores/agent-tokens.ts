import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { NotFoundError, ValidationError } from '../domain/errors';
import { parseRealNumber } from '../domain/phone-number';
import { toMs, toMsStrict, type Pool } from './mysql';

/** An agent of a tenant who signs in to the console with a token and is rung first on each call. */
export interface AgentTokenInfo {
  readonly id: string;
  readonly tenantId: string;
  readonly name: string;
  /** The agent's own phone (a real number: mask it wherever it is shown or logged). */
  readonly agentNumber: string;
  readonly createdAt: number;
  /** From then on the token signs no one in, and the console sessions opened with it end; null: never. */
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
}

const TOKEN_PREFIX = 'agt_';

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** An `agent_tokens` row (also read joined to a console session) as the agent it names. */
export function agentTokenFromRow(r: RowDataPacket): AgentTokenInfo {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    name: String(r.name),
    agentNumber: String(r.agent_number),
    createdAt: toMsStrict(r.created_at),
    expiresAt: toMs(r.expires_at),
    revokedAt: toMs(r.revoked_at),
  };
}

/**
 * Agent-console sign-in tokens; only their sha256 is stored, the token is shown once. A token is
 * exchanged for a console session at sign-in (src/agent-console/console-sessions.ts) and is never
 * sent again. `now` is the clock expiry is judged by (tests move it).
 */
export class AgentTokenStore {
  constructor(
    private readonly pool: Pool,
    private readonly now: () => number = Date.now,
  ) {}

  async create(
    tenantId: string,
    input: { name: string; agentNumber: string; expiresAt?: number | null },
  ): Promise<{ id: string; token: string; expiresAt: number | null }> {
    const name = input.name.trim();
    if (!name || name.length > 128) throw new ValidationError('name', 'name must be 1 to 128 characters');
    const agentNumber = parseRealNumber(input.agentNumber, 'agentNumber');
    const expiresAt = input.expiresAt ?? null;
    if (expiresAt !== null && (!Number.isFinite(expiresAt) || expiresAt <= this.now())) {
      throw new ValidationError('expiresAt', 'expiresAt must be in the future');
    }
    const id = randomUUID();
    const token = `${TOKEN_PREFIX}${randomBytes(24).toString('base64url')}`;
    await this.pool.query(
      'INSERT INTO agent_tokens (id, tenant_id, name, agent_number, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      [id, tenantId, name, agentNumber, hashToken(token), new Date(this.now()), expiresAt === null ? null : new Date(expiresAt)],
    );
    return { id, token, expiresAt };
  }

  async list(tenantId: string): Promise<AgentTokenInfo[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM agent_tokens WHERE tenant_id = ? ORDER BY created_at, id', [tenantId]);
    return rows.map(agentTokenFromRow);
  }

  /**
   * Revokes the token and ends every console session opened with it (a session is also refused
   * by its token's revocation when it is read; this records the end on the session itself).
   * Instances that read a session a moment ago let it go within their session cache time.
   */
  async revoke(tenantId: string, id: string): Promise<void> {
    const at = new Date(this.now());
    const [res] = await this.pool.query<ResultSetHeader>(
      'UPDATE agent_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND tenant_id = ?',
      [at, id, tenantId],
    );
    if (res.affectedRows === 0) throw new NotFoundError('agent token');
    await this.pool.query('UPDATE console_sessions SET revoked_at = ? WHERE agent_token_id = ? AND revoked_at IS NULL', [at, id]);
  }

  /** The token's agent, or null when it is unknown, revoked, expired, or its tenant is not active. */
  async authenticate(token: string): Promise<AgentTokenInfo | null> {
    if (typeof token !== 'string' || !token.startsWith(TOKEN_PREFIX) || token.length > 128) return null;
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT g.* FROM agent_tokens g JOIN tenants t ON t.id = g.tenant_id
        WHERE g.token_hash = ? AND g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > ?) AND t.status = 'active'`,
      [hashToken(token), new Date(this.now())],
    );
    return rows[0] ? agentTokenFromRow(rows[0]) : null;
  }
}
