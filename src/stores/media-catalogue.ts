import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { ConflictError, NotFoundError } from '../domain/errors';
import { playbackArgument, validateMediaEntry, type MediaEntry, type MediaKind } from '../domain/media';
import { isDuplicateKey, type Pool } from './mysql';

/**
 * The operator's catalogue of prompts and announcements (migration 011). Written by the CLI only;
 * tenants list it and name entries by id. An entry in use by an active binding cannot be removed,
 * and entries are never changed in place (remove and add again), so what a binding plays is what
 * it was created with.
 */
export class MediaCatalogue {
  constructor(private readonly pool: Pool) {}

  async add(entry: MediaEntry): Promise<MediaEntry> {
    const checked = validateMediaEntry(entry);
    try {
      await this.pool.query('INSERT INTO media_catalogue (id, kind, source, description) VALUES (?, ?, ?, ?)', [
        checked.id,
        checked.kind,
        checked.source,
        checked.description,
      ]);
    } catch (err) {
      if (isDuplicateKey(err)) throw new ConflictError('media_exists', 'a catalogue entry with this id exists', 'id');
      throw err;
    }
    return checked;
  }

  async list(): Promise<MediaEntry[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT id, kind, source, description FROM media_catalogue ORDER BY id');
    return rows.map(toEntry);
  }

  async get(id: string): Promise<MediaEntry | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT id, kind, source, description FROM media_catalogue WHERE id = ?', [id]);
    return rows[0] ? toEntry(rows[0]) : null;
  }

  async remove(id: string): Promise<void> {
    const [used] = await this.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM bindings WHERE announcement = ? AND state = 'active'", [id]);
    const inUse = Number(used[0]?.n ?? 0);
    if (inUse > 0) throw new ConflictError('media_in_use', `${inUse} active binding(s) announce this entry`, 'id');
    const [res] = await this.pool.query<ResultSetHeader>('DELETE FROM media_catalogue WHERE id = ?', [id]);
    if (res.affectedRows === 0) throw new NotFoundError('catalogue entry');
  }
}

function toEntry(r: RowDataPacket): MediaEntry {
  return { id: String(r.id), kind: String(r.kind) as MediaKind, source: String(r.source), description: String(r.description) };
}

/**
 * What the call flows play, by id: the catalogue read from MySQL at most once per `maxAgeMs`
 * (an unknown id reloads it sooner, at most once a second), so a call waits on MySQL only when the
 * catalogue changed. Returns the `playback` argument, or null for an id that is not (or no longer) there.
 */
export class MediaPlayback {
  private entries = new Map<string, MediaEntry>();
  private loadedAt = -Infinity;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly catalogue: Pick<MediaCatalogue, 'list'>,
    private readonly soundsDir: string,
    private readonly maxAgeMs = 30_000,
  ) {}

  async argumentFor(id: string, now: number = Date.now()): Promise<string | null> {
    const stale = now - this.loadedAt > this.maxAgeMs;
    const missing = !this.entries.has(id) && now - this.loadedAt > 1000;
    if (stale || missing) await this.reload(now);
    const entry = this.entries.get(id);
    if (!entry) return null;
    try {
      return playbackArgument(entry, this.soundsDir);
    } catch {
      return null;
    }
  }

  private reload(now: number): Promise<void> {
    this.loading ??= this.catalogue
      .list()
      .then((list) => {
        this.entries = new Map(list.map((e) => [e.id, e]));
        this.loadedAt = now;
      })
      .finally(() => {
        this.loading = undefined;
      });
    return this.loading;
  }
}

export type { MediaKind };
