import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { toMsStrict, type Pool } from './mysql';

export type SwitchAdminState = 'active' | 'draining';

/** A `switches` row: a switch added with the CLI (host and port), or only the drain mark of one from SWITCHES (host null). */
export interface SwitchRow {
  readonly name: string;
  readonly host: string | null;
  readonly port: number | null;
  readonly state: SwitchAdminState;
}

/** What one controller last saw of one switch (written every few seconds by each controller). */
export interface SwitchHealth {
  readonly connected: boolean;
  readonly state: SwitchAdminState;
  /** Lost: unreachable longer than SWITCH_LOST_SECONDS (its calls were settled failed). */
  readonly lost: boolean;
  readonly address: string;
  readonly sessions: number | null;
  readonly maxSessions: number | null;
  readonly sessionsPerSecond: number | null;
  readonly idleCpu: number | null;
  /** Click-to-dial calls of this controller on the switch now. */
  readonly calls: number;
}

export interface SwitchHealthRow extends SwitchHealth {
  readonly name: string;
  readonly reportedBy: string;
  readonly reportedAt: number;
}

/** The `switches` table (the fleet beyond SWITCHES, and drain marks) and `switch_health`. */
export class SwitchStore {
  constructor(private readonly pool: Pool) {}

  async list(): Promise<SwitchRow[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT name, host, port, state FROM switches ORDER BY name');
    return rows.map((r) => ({
      name: String(r.name),
      host: r.host === null ? null : String(r.host),
      port: r.port === null ? null : Number(r.port),
      state: r.state === 'draining' ? 'draining' : 'active',
    }));
  }

  /** Adds a switch, or changes the address of one already there (its state is kept). */
  async add(name: string, host: string, port: number): Promise<void> {
    await this.pool.query('INSERT INTO switches (name, host, port) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE host = VALUES(host), port = VALUES(port)', [name, host, port]);
  }

  /** Marks a switch draining or active again; a switch from SWITCHES gets a row of its own holding only the mark. */
  async setState(name: string, state: SwitchAdminState): Promise<void> {
    await this.pool.query('INSERT INTO switches (name, state) VALUES (?, ?) ON DUPLICATE KEY UPDATE state = VALUES(state)', [name, state]);
  }

  /** true when a row was removed. */
  async remove(name: string): Promise<boolean> {
    const [res] = await this.pool.query<ResultSetHeader>('DELETE FROM switches WHERE name = ?', [name]);
    await this.pool.query('DELETE FROM switch_health WHERE name = ?', [name]);
    return res.affectedRows > 0;
  }

  async report(reportedBy: string, health: ReadonlyArray<{ name: string; health: SwitchHealth }>, at: number = Date.now()): Promise<void> {
    if (health.length === 0) return;
    const when = new Date(at);
    await this.pool.query(
      'INSERT INTO switch_health (name, reported_by, health, reported_at) VALUES ? ON DUPLICATE KEY UPDATE health = VALUES(health), reported_at = VALUES(reported_at)',
      [health.map((h) => [h.name, reportedBy, JSON.stringify(h.health), when])],
    );
    // Controllers come and go (NODE_ID defaults to the pid): reports nobody renewed for a day leave.
    await this.pool.query('DELETE FROM switch_health WHERE reported_at < ?', [new Date(at - 86_400_000)]);
  }

  /** The reports younger than maxAgeMs, newest first. */
  async health(maxAgeMs: number, now: number = Date.now()): Promise<SwitchHealthRow[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT name, reported_by, health, reported_at FROM switch_health WHERE reported_at >= ? ORDER BY reported_at DESC',
      [new Date(now - maxAgeMs)],
    );
    return rows.map((r) => {
      const h = (typeof r.health === 'string' ? JSON.parse(r.health) : r.health) as SwitchHealth;
      return { ...h, name: String(r.name), reportedBy: String(r.reported_by), reportedAt: toMsStrict(r.reported_at) };
    });
  }
}
