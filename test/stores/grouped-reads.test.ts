import { GroupedReads } from '../../src/stores/grouped-reads';

describe('reads by key, grouped while earlier ones are on their way', () => {
  function backing() {
    const groups: string[][] = [];
    const gates: Array<() => void> = [];
    return {
      groups,
      releaseAll: () => gates.splice(0).forEach((open) => open()),
      async readMany(keys: string[]): Promise<Map<string, string>> {
        groups.push(keys);
        await new Promise<void>((r) => gates.push(r));
        if (keys.includes('boom')) throw new Error('store down');
        return new Map(keys.filter((k) => !k.startsWith('missing')).map((k) => [k, `value of ${k}`]));
      },
    };
  }

  it('a read alone goes at once; reads asked meanwhile go together, each caller getting its own answer', async () => {
    const store = backing();
    const reads = new GroupedReads((keys: string[]) => store.readMany(keys), 100, 1);
    const first = reads.get('a');
    expect(store.groups).toEqual([['a']]);
    const later = ['b', 'missing-c', 'b', 'd'].map((k) => reads.get(k));
    expect(store.groups).toHaveLength(1);
    store.releaseAll();
    expect(await first).toBe('value of a');
    await new Promise((r) => setImmediate(r));
    // the three distinct keys asked while the first read was out, in one read
    expect(store.groups).toEqual([['a'], ['b', 'missing-c', 'd']]);
    store.releaseAll();
    expect(await Promise.all(later)).toEqual(['value of b', null, 'value of b', 'value of d']);
  });

  it('no group is larger than its bound; a failed group fails only its own callers', async () => {
    const store = backing();
    const reads = new GroupedReads((keys: string[]) => store.readMany(keys), 2, 2);
    const all = ['k1', 'boom', 'k3', 'k4', 'k5'].map((k) => reads.get(k).then((v) => v, (e: unknown) => (e as Error).message));
    expect(store.groups).toEqual([['k1'], ['boom']]);
    for (let round = 0; round < 4; round++) {
      store.releaseAll();
      await new Promise((r) => setImmediate(r));
    }
    expect(store.groups).toEqual([['k1'], ['boom'], ['k3', 'k4'], ['k5']]);
    expect(await Promise.all(all)).toEqual(['value of k1', 'store down', 'value of k3', 'value of k4', 'value of k5']);
  });
});
