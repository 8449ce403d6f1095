import { BindingService } from '../../src/bindings/binding-service';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase } from '../support/mysql';
import { runCli, type CliRun } from '../support/admin-cli';

describe('admin CLI: the media catalogue (operator only)', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  const cli = (...argv: string[]): Promise<CliRun> => runCli({ MYSQL_URL: db.url }, argv);

  it('adds files and tones, refuses what the switch would expand, lists, and removes only what no binding uses', async () => {
    expect(await cli('media', 'add', '--id', 'welcome', '--sound', 'numguard/welcome.wav', '--description', 'Welcome')).toMatchObject({
      code: 0,
      json: [{ id: 'welcome', kind: 'file', source: 'numguard/welcome.wav', description: 'Welcome' }],
    });
    expect((await cli('media', 'add', '--id', 'beep', '--tone', '%(200,0,440)')).code).toBe(0);

    const hostile = await cli('media', 'add', '--id', 'evil', '--sound', '${system(touch /tmp/x)}.wav');
    expect(hostile.code).toBe(65);
    expect(hostile.lines.join('\n')).toContain('invalid_media_source');
    expect((await cli('media', 'add', '--id', 'Bad Id', '--tone', '%(200,0,440)')).lines.join('\n')).toContain('invalid_media_id');
    expect((await cli('media', 'add', '--id', 'welcome', '--tone', '%(200,0,440)')).lines.join('\n')).toContain('media_exists');
    expect((await cli('media', 'add', '--id', 'both', '--tone', '%(1,1,1)', '--sound', 'a.wav')).code).toBe(64);

    expect((await cli('media', 'list')).json.map((e) => e.id)).toEqual(['beep', 'welcome']);

    const tenant = await new TenantStore(db.pool).create({ name: 't' });
    const registry = new BindingService(db.pool);
    await registry.importNumbers(tenant.id, [{ x: '700100000009001', area: '010' }]);
    await registry.bind({ tenantId: tenant.id, mode: 'axb', a: '13800009001', b: '13900009001', x: '700100000009001', announcement: 'welcome' });
    const inUse = await cli('media', 'remove', '--id', 'welcome');
    expect(inUse.code).toBe(65);
    expect(inUse.lines.join('\n')).toContain('media_in_use');
    expect(await cli('media', 'remove', '--id', 'beep')).toMatchObject({ code: 0, json: [{ removed: 'beep' }] });
    expect((await cli('media', 'list')).json.map((e) => e.id)).toEqual(['welcome']);
  });
});
