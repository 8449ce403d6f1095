import { randomUUID } from 'node:crypto';
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { ValidationError } from '../domain/errors';
import type { MessageDirection, MessageRecord, MessageRefusal, MessageStatus, MessageTransport } from '../domain/message';
import { checkedPageLimit, newestFirstPage, SqlConditions } from '../stores/keyset-cursor';
import { toDate, toMs, toMsStrict, type Pool } from '../stores/mysql';

/** A tenant's message settings (migration 025, message_settings). */
export interface MessageSettings {
  /** null: the platform's MESSAGE_TRANSPORT. */
  readonly transport: MessageTransport | null;
  readonly storeBody: boolean;
  readonly bodyRetentionDays: number;
}

export const DEFAULT_MESSAGE_SETTINGS: MessageSettings = { transport: null, storeBody: false, bodyRetentionDays: 7 };

export interface NewMessage {
  readonly dedupKey: string;
  readonly tenantId: string;
  readonly bindingId: string | null;
  readonly x: string;
  readonly direction: MessageDirection | null;
  readonly senderHash: string;
  readonly senderMasked: string;
  readonly recipientMasked: string | null;
  readonly transport: MessageTransport;
  readonly parts: number;
  readonly length: number;
  readonly status: 'accepted' | 'refused';
  readonly refusal: MessageRefusal | null;
  readonly receivedAt: number;
  /** Kept only when the tenant keeps bodies, until bodyUntil. */
  readonly body: string | null;
  readonly bodyUntil: number | null;
}

export interface MessageListQuery {
  /** received_at >= from (epoch ms) */
  readonly from?: number;
  /** received_at < to (epoch ms) */
  readonly to?: number;
  readonly status?: MessageStatus;
  readonly bindingId?: string;
  /** 1..500, default 100 */
  readonly limit?: number;
  readonly cursor?: string | null;
}

export interface MessagePage {
  readonly items: MessageRecord[];
  readonly nextCursor: string | null;
}

export const MAX_MESSAGE_PAGE = 500;

function rowToMessage(r: RowDataPacket): MessageRecord {
  return {
    id: String(r.message_id),
    tenantId: String(r.tenant_id),
    bindingId: r.binding_id === null ? null : String(r.binding_id),
    x: String(r.x),
    direction: r.direction === null ? null : (r.direction as MessageDirection),
    senderMasked: String(r.sender_masked),
    recipientMasked: r.recipient_masked === null ? null : String(r.recipient_masked),
    transport: r.transport as MessageTransport,
    parts: Number(r.parts),
    length: Number(r.length),
    status: r.status as MessageStatus,
    refusal: r.refusal === null ? null : (r.refusal as MessageRefusal),
    failure: r.failure === null ? null : String(r.failure),
    receivedAt: toMsStrict(r.received_at),
    forwardedAt: toMs(r.forwarded_at),
    deliveredAt: toMs(r.delivered_at),
    failedAt: toMs(r.failed_at),
    body: r.body === null ? null : String(r.body),
  };
}

/** The records of relayed messages and the tenants' message settings; every read within one tenant. */
export class MessageStore {
  constructor(private readonly pool: Pool) {}

  /** The tenant whose pool holds X, or null (X is nobody's). */
  async tenantOfX(x: string): Promise<string | null> {
    const [rows] = await this.pool.execute<RowDataPacket[]>('SELECT tenant_id FROM pool_numbers WHERE x = ?', [x]);
    return rows[0] ? String(rows[0].tenant_id) : null;
  }

  async settings(tenantId: string): Promise<MessageSettings> {
    const [rows] = await this.pool.execute<RowDataPacket[]>('SELECT transport, store_body, body_retention_days FROM message_settings WHERE tenant_id = ?', [tenantId]);
    const r = rows[0];
    if (!r) return DEFAULT_MESSAGE_SETTINGS;
    return {
      transport: r.transport === null ? null : (r.transport as MessageTransport),
      storeBody: Boolean(r.store_body),
      bodyRetentionDays: Number(r.body_retention_days),
    };
  }

  async putSettings(tenantId: string, patch: Partial<MessageSettings>): Promise<MessageSettings> {
    const next = { ...(await this.settings(tenantId)), ...patch };
    if (!Number.isInteger(next.bodyRetentionDays) || next.bodyRetentionDays < 1 || next.bodyRetentionDays > 3650) {
      throw new ValidationError('bodyRetentionDays', 'bodyRetentionDays must be an integer from 1 to 3650');
    }
    await this.pool.execute(
      `INSERT INTO message_settings (tenant_id, transport, store_body, body_retention_days, updated_at) VALUES (?, ?, ?, ?, ?)
       ON DUPLICATE KEY UPDATE transport = VALUES(transport), store_body = VALUES(store_body),
         body_retention_days = VALUES(body_retention_days), updated_at = VALUES(updated_at)`,
      [tenantId, next.transport, next.storeBody, next.bodyRetentionDays, new Date()],
    );
    return next;
  }

  /** Records a message once per dedup key: `created` is false when it was already there (a redelivery). */
  async insert(m: NewMessage): Promise<{ record: MessageRecord; created: boolean }> {
    const [res] = await this.pool.execute<ResultSetHeader>(
      `INSERT IGNORE INTO messages (message_id, dedup_key, tenant_id, binding_id, x, direction, sender_hash, sender_masked,
         recipient_masked, transport, parts, length, status, refusal, received_at, body, body_until)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        randomUUID(),
        m.dedupKey,
        m.tenantId,
        m.bindingId,
        m.x,
        m.direction,
        m.senderHash,
        m.senderMasked,
        m.recipientMasked,
        m.transport,
        m.parts,
        m.length,
        m.status,
        m.refusal,
        toDate(m.receivedAt),
        m.body,
        toDate(m.bodyUntil),
      ],
    );
    const record = await this.byDedup(m.dedupKey);
    if (!record) throw new Error('a message just recorded is not there');
    return { record, created: res.affectedRows === 1 };
  }

  async byDedup(key: string): Promise<MessageRecord | null> {
    const [rows] = await this.pool.execute<RowDataPacket[]>('SELECT * FROM messages WHERE dedup_key = ?', [key]);
    return rows[0] ? rowToMessage(rows[0]) : null;
  }

  private async byId(messageId: string): Promise<MessageRecord | null> {
    const [rows] = await this.pool.execute<RowDataPacket[]>('SELECT * FROM messages WHERE message_id = ?', [messageId]);
    return rows[0] ? rowToMessage(rows[0]) : null;
  }

  /** Handed to the carrier: its ids of the parts sent, so delivery reports find the message. */
  async markForwarded(messageId: string, transport: MessageTransport, carrierIds: readonly string[], at: number): Promise<MessageRecord | null> {
    for (const id of carrierIds) {
      await this.pool.execute('INSERT IGNORE INTO message_carrier_ids (carrier_id, transport, message_id) VALUES (?, ?, ?)', [id, transport, messageId]);
    }
    await this.pool.execute(
      "UPDATE messages SET status = 'forwarded', forwarded_at = ?, out_parts = ? WHERE message_id = ? AND status = 'accepted'",
      [toDate(at), carrierIds.length, messageId],
    );
    return this.byId(messageId);
  }

  /** Failed, unless it had already ended; null when nothing changed. */
  async markFailed(messageId: string, failure: string, at: number): Promise<MessageRecord | null> {
    const [res] = await this.pool.execute<ResultSetHeader>(
      "UPDATE messages SET status = 'failed', failure = ?, failed_at = ? WHERE message_id = ? AND status IN ('accepted', 'forwarded')",
      [failure.slice(0, 64), toDate(at), messageId],
    );
    return res.affectedRows === 1 ? this.byId(messageId) : null;
  }

  /**
   * A delivery report for one part. The message is delivered once every part sent is, failed as
   * soon as one part fails; returns the record when its status changed by this report, else null
   * (a repeated report, a part of a message still awaiting others); 'unknown' when no part sent has this id (yet).
   */
  async report(transport: MessageTransport, carrierId: string, delivered: boolean, status: string, at: number): Promise<MessageRecord | null | 'unknown'> {
    const [rows] = await this.pool.execute<RowDataPacket[]>('SELECT message_id FROM message_carrier_ids WHERE transport = ? AND carrier_id = ?', [transport, carrierId]);
    const part = rows[0];
    if (!part) return 'unknown';
    const messageId = String(part.message_id);
    // Only the first report of a part counts (carriers repeat them).
    const [changed] = await this.pool.execute<ResultSetHeader>(
      "UPDATE message_carrier_ids SET state = ? WHERE transport = ? AND carrier_id = ? AND state = 'sent'",
      [delivered ? 'delivered' : 'failed', transport, carrierId],
    );
    if (changed.affectedRows !== 1) return null;
    if (!delivered) return this.markFailed(messageId, status, at);
    const [res] = await this.pool.execute<ResultSetHeader>(
      `UPDATE messages SET delivered_parts = delivered_parts + 1,
         delivered_at = IF(delivered_parts >= out_parts, ?, delivered_at),
         status = IF(delivered_parts >= out_parts, 'delivered', status)
       WHERE message_id = ? AND status = 'forwarded'`,
      [toDate(at), messageId],
    );
    if (res.affectedRows !== 1) return null;
    const record = await this.byId(messageId);
    return record?.status === 'delivered' ? record : null;
  }

  /** Newest first (received_at DESC, id DESC), keyset-paginated; bodies past their retention are gone already. */
  async list(tenantId: string, q: MessageListQuery = {}): Promise<MessagePage> {
    const where = new SqlConditions('tenant_id = ?', tenantId)
      .andIf(q.from, 'received_at >= ?', toDate)
      .andIf(q.to, 'received_at < ?', toDate)
      .andIf(q.status, 'status = ?')
      .andIf(q.bindingId, 'binding_id = ?');
    return newestFirstPage(this.pool, {
      select: 'SELECT * FROM messages',
      where,
      timeColumn: 'received_at',
      idColumn: 'id',
      ids: 'numeric',
      limit: checkedPageLimit(q.limit, 100, MAX_MESSAGE_PAGE),
      cursor: q.cursor ?? undefined,
      toItem: rowToMessage,
    });
  }

  async get(tenantId: string, messageId: string): Promise<MessageRecord | null> {
    const [rows] = await this.pool.execute<RowDataPacket[]>('SELECT * FROM messages WHERE message_id = ? AND tenant_id = ?', [messageId, tenantId]);
    return rows[0] ? rowToMessage(rows[0]) : null;
  }

  /** Clears the bodies whose retention is over; returns how many. */
  async pruneBodies(now: number = Date.now()): Promise<number> {
    const [res] = await this.pool.execute<ResultSetHeader>('UPDATE messages SET body = NULL, body_until = NULL WHERE body_until <= ? LIMIT 10000', [toDate(now)]);
    return res.affectedRows;
  }
}
