import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { maskPhonesInText } from '../domain/phone-number';
import type { PlatformEventType } from '../events/platform-events';
import { toDate, toMsStrict, type Pool } from '../stores/mysql';
import type { WebhookEventType } from './payload';
import { checkedPageLimit, newestFirstPage, SqlConditions } from '../stores/keyset-cursor';

export interface WebhookEndpoint {
  readonly tenantId: string;
  readonly url: string;
  /** The HMAC key. Never shown by the API or logged. */
  readonly secret: string;
  /** null: every event type. */
  readonly events: readonly PlatformEventType[] | null;
  readonly enabled: boolean;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface WebhookEndpointInput {
  readonly url: string;
  readonly secret: string;
  readonly events: readonly PlatformEventType[] | null;
  readonly enabled: boolean;
}

export type DeliveryStatus = 'delivered' | 'failed' | 'gave_up';

export interface DeliveryInput {
  readonly tenantId: string;
  readonly eventId: string;
  readonly eventType: WebhookEventType;
  readonly url: string;
  readonly attempt: number;
  readonly status: DeliveryStatus;
  readonly httpStatus: number | null;
  readonly error: string | null;
  readonly durationMs: number;
  readonly at: number;
}

export interface Delivery {
  readonly id: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly url: string;
  readonly attempt: number;
  readonly status: DeliveryStatus;
  readonly httpStatus: number | null;
  readonly error: string | null;
  readonly durationMs: number;
  /** epoch ms */
  readonly createdAt: number;
}

export interface DeliveryQuery {
  /** 1..MAX_DELIVERY_PAGE, default 50 */
  readonly limit?: number;
  readonly cursor?: string;
  readonly eventId?: string;
}

export const MAX_DELIVERY_PAGE = 200;
const MAX_ERROR_LENGTH = 255;

/** Short, and without phone numbers: it is shown to the tenant and may quote a receiver's reply. */
export function deliveryErrorText(message: string): string {
  const masked = maskPhonesInText(message.replace(/\s+/g, ' ').trim());
  return masked.length > MAX_ERROR_LENGTH ? `${masked.slice(0, MAX_ERROR_LENGTH - 1)}…` : masked;
}

function rowToEndpoint(r: RowDataPacket): WebhookEndpoint {
  return {
    tenantId: String(r.tenant_id),
    url: String(r.url),
    secret: String(r.secret),
    events: r.event_types === null ? null : (JSON.parse(String(r.event_types)) as PlatformEventType[]),
    enabled: Boolean(r.enabled),
    createdAt: toMsStrict(r.created_at),
    updatedAt: toMsStrict(r.updated_at),
  };
}

function rowToDelivery(r: RowDataPacket): Delivery {
  return {
    id: String(r.id),
    eventId: String(r.event_id),
    eventType: String(r.event_type),
    url: String(r.url),
    attempt: Number(r.attempt),
    status: r.status as DeliveryStatus,
    httpStatus: r.http_status === null ? null : Number(r.http_status),
    error: r.error === null ? null : String(r.error),
    durationMs: Number(r.duration_ms),
    createdAt: toMsStrict(r.created_at),
  };
}

/** Webhook endpoints (one per tenant) and the delivery log; every read is within one tenant. */
export class WebhookStore {
  constructor(private readonly pool: Pool) {}

  async getEndpoint(tenantId: string): Promise<WebhookEndpoint | null> {
    const [rows] = await this.pool.execute<RowDataPacket[]>('SELECT * FROM webhook_endpoints WHERE tenant_id = ?', [tenantId]);
    return rows[0] ? rowToEndpoint(rows[0]) : null;
  }

  /** Creates or replaces the tenant's endpoint. */
  async putEndpoint(tenantId: string, input: WebhookEndpointInput, now: number = Date.now()): Promise<WebhookEndpoint> {
    await this.pool.execute(
      `INSERT INTO webhook_endpoints (tenant_id, url, secret, event_types, enabled, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON DUPLICATE KEY UPDATE url = VALUES(url), secret = VALUES(secret), event_types = VALUES(event_types),
         enabled = VALUES(enabled), updated_at = VALUES(updated_at)`,
      [tenantId, input.url, input.secret, input.events === null ? null : JSON.stringify(input.events), input.enabled, toDate(now), toDate(now)],
    );
    const endpoint = await this.getEndpoint(tenantId);
    if (!endpoint) throw new Error('webhook endpoint vanished right after it was written');
    return endpoint;
  }

  /** true when there was one to delete. */
  async deleteEndpoint(tenantId: string): Promise<boolean> {
    const [res] = await this.pool.execute<ResultSetHeader>('DELETE FROM webhook_endpoints WHERE tenant_id = ?', [tenantId]);
    return res.affectedRows > 0;
  }

  async recordDelivery(d: DeliveryInput): Promise<void> {
    await this.pool.execute(
      `INSERT INTO webhook_deliveries (tenant_id, event_id, event_type, url, attempt, status, http_status, error, duration_ms, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        d.tenantId,
        d.eventId,
        d.eventType,
        d.url,
        d.attempt,
        d.status,
        d.httpStatus,
        d.error === null ? null : deliveryErrorText(d.error),
        Math.max(0, Math.round(d.durationMs)),
        toDate(d.at),
      ],
    );
  }

  /**
   * Deletes delivery attempts logged before `before`, every tenant's, a batch at a time so the
   * table is never locked for long. Returns how many rows went.
   */
  async pruneDeliveries(before: number, batchSize = 5000): Promise<number> {
    let deleted = 0;
    for (;;) {
      const [res] = await this.pool.query<ResultSetHeader>('DELETE FROM webhook_deliveries WHERE created_at < ? ORDER BY created_at LIMIT ?', [
        toDate(before),
        batchSize,
      ]);
      deleted += res.affectedRows;
      if (res.affectedRows < batchSize) return deleted;
    }
  }

  /** The tenant's delivery attempts, newest first, keyset-paginated. */
  async listDeliveries(tenantId: string, q: DeliveryQuery = {}): Promise<{ items: Delivery[]; nextCursor: string | null }> {
    return newestFirstPage(this.pool, {
      select: 'SELECT * FROM webhook_deliveries',
      where: new SqlConditions('tenant_id = ?', tenantId).andIf(q.eventId, 'event_id = ?'),
      timeColumn: 'created_at',
      idColumn: 'id',
      ids: 'numeric',
      limit: checkedPageLimit(q.limit, 50, MAX_DELIVERY_PAGE),
      cursor: q.cursor,
      toItem: rowToDelivery,
    });
  }
}

export interface EndpointLookup {
  get(tenantId: string): Promise<WebhookEndpoint | null>;
}

/**
 * Endpoint lookups for the event producer and the delivery worker, cached for `ttlMs` (also
 * "no endpoint"), so a busy system does not read MySQL per event. Changes made through this
 * instance's API invalidate at once; other instances see them within `ttlMs`.
 */
export class CachedWebhookEndpoints implements EndpointLookup {
  private readonly cache = new Map<string, { endpoint: Promise<WebhookEndpoint | null>; until: number }>();

  constructor(
    private readonly store: Pick<WebhookStore, 'getEndpoint'>,
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(tenantId: string): Promise<WebhookEndpoint | null> {
    const now = Date.now();
    const hit = this.cache.get(tenantId);
    if (hit && hit.until > now) return hit.endpoint;
    // Concurrent misses share one query; a failed query is not cached.
    const endpoint = this.store.getEndpoint(tenantId);
    if (this.cache.size >= this.maxEntries) this.cache.clear();
    const entry = { endpoint, until: now + this.ttlMs };
    this.cache.set(tenantId, entry);
    endpoint.catch(() => {
      if (this.cache.get(tenantId) === entry) this.cache.delete(tenantId);
    });
    return endpoint;
  }

  invalidate(tenantId: string): void {
    this.cache.delete(tenantId);
  }
}
