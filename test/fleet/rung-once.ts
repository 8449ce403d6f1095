import type { RowDataPacket } from 'mysql2/promise';
import { legUuid } from '../../src/flows/click-to-dial';
import type { TestSystem } from '../support/system';

/** After a takeover or a restart: the call rang A and B once, on one switch, and has one CDR row. */
export async function expectRungOnceWithOneCdr(sys: TestSystem, callId: string, a: string, b: string): Promise<void> {
  const rang = sys.sims.filter((s) => s.invitesTo(a).length > 0);
  expect(rang).toHaveLength(1);
  expect(rang[0]?.invitesTo(a)).toHaveLength(1);
  expect(rang[0]?.invitesTo(b)).toHaveLength(1);
  expect(rang[0]?.originateCount(legUuid(callId, 'a', 1))).toBe(1);
  const [rows] = await sys.app.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM cdrs WHERE call_id = ?', [callId]);
  expect(Number(rows[0]?.n)).toBe(1);
}
