import { ValidationError } from '../../src/domain/errors';
import { checkedPageLimit, newestFirstPage, SqlConditions } from '../../src/stores/keyset-cursor';
import { createTestDatabase, type TestDatabase } from '../support/mysql';

describe('newestFirstPage', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query('CREATE TABLE paged (id BIGINT PRIMARY KEY, owner CHAR(1) NOT NULL, created_at DATETIME(3) NOT NULL)');
    await db.pool.query('CREATE TABLE tags (paged_id BIGINT PRIMARY KEY, tag VARCHAR(8) NOT NULL)');
    // ids 1..9 for owner a, three rows per millisecond so that pages break inside a run of equal times
    const rows = Array.from({ length: 9 }, (_, i) => [i + 1, 'a', new Date(1_700_000_000_000 + Math.floor(i / 3))]);
    await db.pool.query('INSERT INTO paged (id, owner, created_at) VALUES ?', [[...rows, [10, 'b', new Date(1_700_000_000_005)]]]);
    await db.pool.query('INSERT INTO tags (paged_id, tag) VALUES ?', [rows.map(([id]) => [id, `t${String(id)}`])]);
  });
  afterAll(() => db.drop());

  async function walk(select: string, ownerColumn: string, time: string, id: string, limit: number): Promise<number[][]> {
    const pages: number[][] = [];
    let cursor: string | undefined;
    do {
      const page = await newestFirstPage(db.pool, {
        select,
        where: new SqlConditions(`${ownerColumn} = ?`, 'a'),
        timeColumn: time,
        idColumn: id,
        ids: 'numeric',
        limit,
        cursor,
        toItem: (r) => Number(r.id),
      });
      pages.push(page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    return pages;
  }

  it('walks every row once, newest first, across runs of equal times, with only the filtered rows', async () => {
    expect(await walk('SELECT * FROM paged', 'owner', 'created_at', 'id', 2)).toEqual([[9, 8], [7, 6], [5, 4], [3, 2], [1]]);
    expect(await walk('SELECT * FROM paged', 'owner', 'created_at', 'id', 9)).toEqual([[9, 8, 7, 6, 5, 4, 3, 2, 1]]);
  });

  it('pages a join whose order columns carry a table alias', async () => {
    const select = 'SELECT p.*, t.tag FROM paged p JOIN tags t ON t.paged_id = p.id';
    expect(await walk(select, 'p.owner', 'p.created_at', 'p.id', 4)).toEqual([[9, 8, 7, 6], [5, 4, 3, 2], [1]]);
  });

  it('refuses a cursor it did not issue and a limit outside its range, naming the field', async () => {
    const page = newestFirstPage(db.pool, {
      select: 'SELECT * FROM paged',
      where: new SqlConditions('owner = ?', 'a'),
      timeColumn: 'created_at',
      idColumn: 'id',
      ids: 'numeric',
      limit: 2,
      cursor: 'bm90LWEtY3Vyc29y',
      toItem: (r) => Number(r.id),
    });
    await expect(page).rejects.toMatchObject({ code: 'invalid_cursor', field: 'cursor' });
    expect(() => checkedPageLimit(0, 100, 500)).toThrow(ValidationError);
    expect(() => checkedPageLimit(501, 100, 500)).toThrow(expect.objectContaining({ code: 'invalid_limit', field: 'limit' }) as Error);
    expect(checkedPageLimit(undefined, 100, 500)).toBe(100);
  });
});
