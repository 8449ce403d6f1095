import { bareLimitFound, carriedPct, nextOfferedRate } from '../../bench/support/offered-rates';

const opts = { maxExtra: 4, minStep: 5 };
const listed = [10, 20, 30, 35, 40];
const carried = (rate: number): { rate: number; bareCarriedPct: number } => ({ rate, bareCarriedPct: 100 });

describe('the rates a capacity run offers', () => {
  it('offers the listed rates in order', () => {
    expect(nextOfferedRate(listed, [], opts)).toBe(10);
    expect(nextOfferedRate(listed, [carried(10), carried(20)], opts)).toBe(30);
  });

  it('goes one step past the list while bare still carries the highest rate offered, then stops where bare falls short', () => {
    const offered = listed.map(carried);
    expect(nextOfferedRate(listed, offered, opts)).toBe(45);
    offered.push(carried(45));
    expect(nextOfferedRate(listed, offered, opts)).toBe(50);
    offered.push({ rate: 50, bareCarriedPct: 97.5 });
    expect(nextOfferedRate(listed, offered, opts)).toBeNull();
    expect(bareLimitFound(offered)).toBe(true);
  });

  it('stops at the list when bare fell short within it', () => {
    const offered = [carried(10), carried(20), carried(30), { rate: 35, bareCarriedPct: 98.9 }, { rate: 40, bareCarriedPct: 93 }];
    expect(nextOfferedRate(listed, offered, opts)).toBeNull();
  });

  it('steps by the list’s last step, never less than the minimum', () => {
    expect(nextOfferedRate([10, 20, 30], [carried(10), carried(20), carried(30)], opts)).toBe(40);
    expect(nextOfferedRate([10, 12], [carried(10), carried(12)], opts)).toBe(17);
    expect(nextOfferedRate([40], [carried(40)], opts)).toBe(45);
  });

  it('spends at most the extra rates allowed, and then says bare’s limit was not found', () => {
    const offered = [...listed, 45, 50, 55, 60].map(carried);
    expect(nextOfferedRate(listed, offered, opts)).toBeNull();
    expect(bareLimitFound(offered)).toBe(false);
  });

  it('judges by the highest rate offered, not the last', () => {
    const offered = [carried(40), { rate: 30, bareCarriedPct: 90 }];
    expect(nextOfferedRate([40, 30], offered, opts)).toBe(45);
  });

  it('offers nothing more when bare’s share is unknown', () => {
    expect(nextOfferedRate([10], [{ rate: 10, bareCarriedPct: null }], opts)).toBeNull();
  });

  it('counts a rate bare connected in full but fell behind as not carried', () => {
    expect(carriedPct(100, 57.47, 65)).toBeCloseTo(88.4, 1);
    expect(carriedPct(96.5, 40, 40)).toBe(96.5);
    expect(carriedPct(100, 59.54, 60)).toBeGreaterThanOrEqual(99);
    expect(carriedPct(null, 0, 10)).toBeNull();
  });
});
