import type { RowDataPacket } from 'mysql2/promise';
import type { Binding } from '../domain/binding-rules';
import { toMsStrict } from './mysql';

/** A row of `bindings` as the domain's Binding. */
export function rowToBinding(r: RowDataPacket): Binding {
  const allow = (r.allow_list === null ? [] : typeof r.allow_list === 'string' ? JSON.parse(r.allow_list) : r.allow_list) as string[];
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    requestId: r.request_id === null ? null : String(r.request_id),
    kind: r.kind as Binding['kind'],
    x: String(r.x),
    a: r.a === null ? null : String(r.a),
    b: String(r.b),
    extension: r.extension === null || r.extension === undefined ? null : String(r.extension),
    state: r.state as Binding['state'],
    expiresAt: toMsStrict(r.expires_at),
    restriction: r.restriction as Binding['restriction'],
    record: Boolean(r.record_call),
    maxDurationSeconds: r.max_duration === null ? null : Number(r.max_duration),
    endWarningSeconds: r.end_warning_seconds === null || r.end_warning_seconds === undefined ? null : Number(r.end_warning_seconds),
    announcement: r.announcement === null ? null : String(r.announcement),
    allowList: allow,
    userData: r.user_data === null ? null : String(r.user_data),
  };
}
