import { createHash, randomBytes } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import { agentTokenFromRow, type AgentTokenInfo } from '../stores/agent-tokens';
import { toMsStrict, type Pool } from '../stores/mysql';

/**
 * Agent-console sessions (table `console_sessions`, migration 013). Signing in exchanges the agent
 * token for a session id: 32 random bytes, base64url, the only thing the browser's cookie holds.
 * MySQL keeps the sha256 of the id (never the id), its agent token, and when it was opened, last
 * used, ends and was revoked.
 *
 * A session is live until the first of: its absolute end (`lifetimeMs` after sign-in, never after
 * the token's own expiry), `idleMs` without a request, sign-out, revocation of its agent token,
 * expiry of the token, or its tenant being disabled.
 *
 * Each instance keeps a session it read for `cacheMs`, so most console requests cost no MySQL
 * read. A session signed out through this instance is dropped from its cache at once; one revoked
 * elsewhere (another instance, the CLI) stops working here within `cacheMs`. Expiry is judged on
 * every request, cached or not. The last use is written at most once per `touchMs` (a minute, or a
 * tenth of the idle time when that is shorter), so the idle end may come that much early.
 */
export interface ConsoleSessionOptions {
  /** Absolute lifetime (CONSOLE_SESSION_HOURS). */
  readonly lifetimeMs: number;
  /** A session without a request for this long ends (CONSOLE_IDLE_MINUTES). */
  readonly idleMs: number;
  /** How long a read session is trusted without MySQL (default 3 s). */
  readonly cacheMs?: number;
  /** The clock (tests move it). */
  readonly now?: () => number;
}

export interface OpenedSession {
  /** The session id: for the cookie only, never stored, never logged. */
  readonly id: string;
  readonly expiresAt: number;
  /** Seconds from now to `expiresAt` (the cookie's Max-Age). */
  readonly maxAgeSeconds: number;
}

export interface LiveSession {
  /** The sha256 of the session id: names the session in memory and in MySQL. */
  readonly key: string;
  readonly agent: AgentTokenInfo;
  readonly expiresAt: number;
}

interface Known {
  readonly agent: AgentTokenInfo;
  readonly expiresAt: number;
  lastSeenAt: number;
  /** Until when this copy is trusted without reading MySQL. */
  readonly until: number;
}

const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;
const CACHE_MAX = 10_000;
const PRUNE_BATCH = 100;

/** The key a session id is stored and remembered under. */
export function sessionKey(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

export class ConsoleSessionStore {
  private readonly known = new Map<string, Known>();
  /** Sessions signed out through this instance: refused here even if a read in flight saw them live. */
  private readonly endedHere = new Set<string>();
  private readonly now: () => number;
  private readonly cacheMs: number;
  private readonly touchMs: number;

  constructor(
    private readonly pool: Pool,
    private readonly options: ConsoleSessionOptions,
  ) {
    if (!(options.lifetimeMs > 0) || !(options.idleMs > 0)) throw new Error('console sessions need a positive lifetime and idle time');
    this.now = options.now ?? Date.now;
    this.cacheMs = options.cacheMs ?? 3000;
    this.touchMs = Math.min(60_000, Math.floor(options.idleMs / 10));
  }

  /** Opens a session for an agent whose token was just checked; the id is returned once. */
  async open(agent: AgentTokenInfo): Promise<OpenedSession> {
    const now = this.now();
    const id = randomBytes(32).toString('base64url');
    const expiresAt = Math.min(now + this.options.lifetimeMs, agent.expiresAt ?? Number.POSITIVE_INFINITY);
    await this.pool.query(
      `INSERT INTO console_sessions (id_hash, tenant_id, agent_token_id, created_at, last_seen_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
      [sessionKey(id), agent.tenantId, agent.id, new Date(now), new Date(now), new Date(expiresAt)],
    );
    // A session past its end never comes back: such rows go, a few at each sign-in.
    await this.pool.query('DELETE FROM console_sessions WHERE expires_at < ? LIMIT ?', [new Date(now), PRUNE_BATCH]);
    return { id, expiresAt, maxAgeSeconds: Math.max(0, Math.floor((expiresAt - now) / 1000)) };
  }

  /**
   * The live session a cookie names, or null. A request counts as use (it keeps the session from
   * going idle) unless `touch` is false (an open event stream checking it is still signed in).
   */
  async authenticate(id: string, opts: { touch?: boolean } = {}): Promise<LiveSession | null> {
    if (typeof id !== 'string' || !SESSION_ID.test(id)) return null;
    const key = sessionKey(id);
    if (this.endedHere.has(key)) return null;
    const now = this.now();
    let s = this.known.get(key);
    // A copy that looks idle may be stale: another instance may have seen the session since.
    if (!s || s.until <= now || !this.isLive(s, now)) {
      s = (await this.read(key, now)) ?? undefined;
      if (s) this.remember(key, s);
    }
    if (!s || !this.isLive(s, now) || this.endedHere.has(key)) {
      this.known.delete(key);
      return null;
    }
    if (opts.touch !== false && now - s.lastSeenAt >= this.touchMs) {
      await this.pool.query('UPDATE console_sessions SET last_seen_at = ? WHERE id_hash = ? AND last_seen_at < ?', [new Date(now), key, new Date(now)]);
      s.lastSeenAt = now;
    }
    return { key, agent: s.agent, expiresAt: s.expiresAt };
  }

  /** Ends a session (sign-out); the id no longer works anywhere, at once on this instance. */
  async revoke(id: string): Promise<void> {
    if (typeof id !== 'string' || !SESSION_ID.test(id)) return;
    const key = sessionKey(id);
    if (this.endedHere.size >= CACHE_MAX) this.endedHere.clear();
    this.endedHere.add(key);
    this.known.delete(key);
    await this.pool.query('UPDATE console_sessions SET revoked_at = COALESCE(revoked_at, ?) WHERE id_hash = ?', [new Date(this.now()), key]);
  }

  private isLive(s: Known, now: number): boolean {
    return now < s.expiresAt && now - s.lastSeenAt < this.options.idleMs && (s.agent.expiresAt === null || now < s.agent.expiresAt);
  }

  private remember(key: string, s: Known): void {
    if (this.known.size >= CACHE_MAX) this.known.clear();
    this.known.set(key, s);
  }

  private async read(key: string, now: number): Promise<Known | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT g.*, s.last_seen_at AS session_last_seen_at, s.expires_at AS session_expires_at
         FROM console_sessions s
         JOIN agent_tokens g ON g.id = s.agent_token_id
         JOIN tenants t ON t.id = g.tenant_id
        WHERE s.id_hash = ? AND s.revoked_at IS NULL AND g.revoked_at IS NULL AND t.status = 'active'`,
      [key],
    );
    const r = rows[0];
    if (!r) return null;
    return {
      agent: agentTokenFromRow(r),
      expiresAt: toMsStrict(r.session_expires_at),
      lastSeenAt: toMsStrict(r.session_last_seen_at),
      until: now + this.cacheMs,
    };
  }
}
