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
  readonly revokedAt: number | null;
}

const TOKEN_PREFIX = 'agt_';

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function rowToInfo(r: RowDataPacket): AgentTokenInfo {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    name: String(r.name),
    agentNumber: String(r.agent_number),
    createdAt: toMsStrict(r.created_at),
    revokedAt: toMs(r.revoked_at),
  };
}

/** Agent-console sign-in tokens; only their sha256 is stored, the token is shown once. */
export class AgentTokenStore {
  constructor(private readonly pool: Pool) {}

  async create(tenantId: string, input: { name: string; agentNumber: string }): Promise<{ id: string; token: string }> {
    const name = input.name.trim();
    if (!name || name.length > 128) throw new ValidationError('name', 'name must be 1 to 128 characters');
    const agentNumber = parseRealNumber(input.agentNumber, 'agentNumber');
    const id = randomUUID();
    const token = `${TOKEN_PREFIX}${randomBytes(24).toString('base64url')}`;
    await this.pool.query('INSERT INTO agent_tokens (id, tenant_id, name, agent_number, token_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)', [
      id,
      tenantId,
      name,
      agentNumber,
      hashToken(token),
      new Date(),
    ]);
    return { id, token };
  }

  async list(tenantId: string): Promise<AgentTokenInfo[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM agent_tokens WHERE tenant_id = ? ORDER BY created_at, id', [tenantId]);
    return rows.map(rowToInfo);
  }

  async revoke(tenantId: string, id: string): Promise<void> {
    const [res] = await this.pool.query<ResultSetHeader>(
      'UPDATE agent_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND tenant_id = ?',
      [new Date(), id, tenantId],
    );
    if (res.affectedRows === 0) throw new NotFoundError('agent token');
  }

  /** The token's agent, or null when it is unknown, revoked, or its tenant is not active. */
  async authenticate(token: string): Promise<AgentTokenInfo | null> {
    if (typeof token !== 'string' || !token.startsWith(TOKEN_PREFIX) || token.length > 128) return null;
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT g.* FROM agent_tokens g JOIN tenants t ON t.id = g.tenant_id
        WHERE g.token_hash = ? AND g.revoked_at IS NULL AND t.status = 'active'`,
      [hashToken(token)],
    );
    return rows[0] ? rowToInfo(rows[0]) : null;
  }
}
