import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MessageStore } from '../../src/messages/message-store';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase } from '../support/mysql';
import { runCli, type CliRun } from '../support/admin-cli';

describe('admin CLI: text messages', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const dir = mkdtempSync(path.join(tmpdir(), 'cli-sms-'));

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  const cli = (...argv: string[]): Promise<CliRun> => runCli({ MYSQL_URL: db.url }, argv);

  it('sets a tenant’s carrier path and body keeping, and exports its records as CSV without bodies', async () => {
    const tenant = await new TenantStore(db.pool).create({ name: 'sms' });
    const set = await cli('message', 'settings', '--tenant', tenant.id, '--transport', 'smpp', '--store-body', '--body-retention-days', '2');
    expect(set).toMatchObject({ code: 0, json: [{ transport: 'smpp', storeBody: true, bodyRetentionDays: 2 }] });
    expect((await cli('message', 'settings', '--tenant', tenant.id, '--transport', 'default')).json[0]).toMatchObject({ transport: null, storeBody: true });
    expect((await cli('message', 'settings', '--tenant', tenant.id, '--transport', 'fax')).code).toBe(64);
    expect((await cli('message', 'settings', '--tenant', tenant.id, '--store-body', '--no-store-body')).code).toBe(64);

    const store = new MessageStore(db.pool);
    const base = {
      tenantId: tenant.id, bindingId: null, x: '700100000000001', direction: 'a_to_b' as const, senderHash: 'h'.repeat(32), senderMasked: '138****0001',
      recipientMasked: '139****0002', transport: 'smpp' as const, parts: 1, length: 5, status: 'accepted' as const, refusal: null, body: '=SUM(A1)', bodyUntil: Date.now() + 60_000,
    };
    await store.insert({ ...base, dedupKey: 'a'.repeat(32), receivedAt: Date.parse('2026-11-01T00:00:00Z') });
    await store.insert({ ...base, dedupKey: 'b'.repeat(32), receivedAt: Date.parse('2026-11-02T00:00:00Z'), status: 'refused', refusal: 'unbound', recipientMasked: null, direction: null });
    const out = path.join(dir, 'messages.csv');
    expect((await cli('message', 'export', '--tenant', tenant.id, '--out', out)).json[0]).toEqual({ file: out, rows: 2 });
    const lines = readFileSync(out, 'utf8').trim().split('\r\n');
    expect(lines[0]).toBe('id,bindingId,x,direction,senderMasked,recipientMasked,transport,parts,length,status,refusal,failure,receivedAt,forwardedAt,deliveredAt,failedAt');
    expect(lines[1]).toContain(',refused,unbound,,2026-11-02T00:00:00.000Z,');
    expect(lines[2]).toContain(',138****0001,139****0002,smpp,1,5,accepted,');
    expect(readFileSync(out, 'utf8')).not.toContain('SUM');
    const since = await cli('message', 'export', '--tenant', tenant.id, '--from', '2026-11-02T00:00:00Z');
    expect(since.lines.filter((l) => l.includes('smpp'))).toHaveLength(1);

    // Past its retention, a body is cleared.
    expect(await store.pruneBodies(Date.now() + 120_000)).toBe(2);
    expect((await store.list(tenant.id)).items.map((m) => m.body)).toEqual([null, null]);
  });
});
