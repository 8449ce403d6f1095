import { groupedNumberLookup, type PrivacyNumberLookup } from '../../src/calls/click-to-dial-request';

type State = Awaited<ReturnType<PrivacyNumberLookup['numberState']>>;

/** A pool whose reads the test answers one by one, recording what was asked. */
function controlledPool(): { lookup: PrivacyNumberLookup; asked: string[]; answer: () => void; states: Map<string, State> } {
  const asked: string[] = [];
  const pending: Array<() => void> = [];
  const states = new Map<string, State>();
  return {
    asked,
    states,
    lookup: {
      numberState: (tenantId, x) => {
        asked.push(`${tenantId}/${x}`);
        // the state as it is when the read reaches the database (now), answered when the test says so
        const state = states.get(`${tenantId}/${x}`) ?? null;
        return new Promise((resolve) => pending.push(() => resolve(state)));
      },
    },
    answer: () => pending.shift()?.(),
  };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('groupedNumberLookup: concurrent jobs presenting one X share a read of its state', () => {
  it('asks made while a read is on its way share the next read; each gets the state read after it asked', async () => {
    const pool = controlledPool();
    pool.states.set('t1/7001', 'enabled');
    const lookup = groupedNumberLookup(pool.lookup);
    const first = lookup.numberState('t1', '7001');
    await tick();
    expect(pool.asked).toEqual(['t1/7001']);
    // the number is disabled while the first read is on its way: later asks must not get that read's answer
    pool.states.set('t1/7001', 'disabled');
    const later = Array.from({ length: 50 }, () => lookup.numberState('t1', '7001'));
    pool.answer();
    await tick();
    // all 50 later asks went out as one read, after the change
    pool.answer();
    expect(await first).toBe('enabled');
    expect(await Promise.all(later)).toEqual(Array.from({ length: 50 }, () => 'disabled'));
    expect(pool.asked).toEqual(['t1/7001', 't1/7001']);
  });

  it('keeps tenants and numbers apart: another tenant’s X reads as not in its pool', async () => {
    const pool = controlledPool();
    pool.states.set('t1/7001', 'enabled');
    const lookup = groupedNumberLookup(pool.lookup);
    const answers = Promise.all([lookup.numberState('t1', '7001'), lookup.numberState('t2', '7001'), lookup.numberState('t1', '7002')]);
    for (let i = 0; i < 5; i++) {
      await tick();
      pool.answer();
      pool.answer();
    }
    expect(await answers).toEqual(['enabled', null, null]);
  });

  it('a failed read fails the asks that shared it, and the next ask reads again', async () => {
    const read = jest.fn<Promise<State>, [string, string]>().mockRejectedValueOnce(new Error('db down')).mockResolvedValue('enabled');
    const failing: PrivacyNumberLookup = { numberState: read };
    const lookup = groupedNumberLookup(failing);
    const first = lookup.numberState('t1', '7001');
    const sharing = [lookup.numberState('t1', '7002'), lookup.numberState('t1', '7002')];
    await expect(first).rejects.toThrow('db down');
    expect(await Promise.all(sharing)).toEqual(['enabled', 'enabled']);
    expect(await lookup.numberState('t1', '7001')).toBe('enabled');
    expect(read).toHaveBeenCalledTimes(3);
  });
});
