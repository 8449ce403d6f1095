/**
 * First fit (src/domain/pool.ts) on random workloads, without MySQL: a seeded generator of
 * bindings arriving and expiring; at every step the reuse invariant holds and the X chosen lies
 * within the first 2Δ-1 numbers of the pool, Δ being the largest number of concurrent bindings
 * any one number holds at that moment (so at most 2·peakΔ-1 distinct X are ever used).
 */
import { membersOf, reuseClash } from '../../src/domain/binding-rules';
import { firstFit, type PoolNumberOccupancy } from '../../src/domain/pool';

/** mulberry32: a small seeded generator, so a failing case can be replayed from its seed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Live {
  readonly x: string;
  readonly members: string[];
  readonly endsAt: number;
}

/** Runs a workload through first fit; checks the invariant and the bound at every allocation. */
function simulate(seed: number, opts: { people: number; hot: number; hotShare: number; steps: number; poolSize: number; meanLife: number }) {
  const rnd = random(seed);
  const pool: Array<PoolNumberOccupancy & { held: Set<string> }> = Array.from({ length: opts.poolSize }, (_, i) => ({
    x: `7001000${String(i).padStart(8, '0')}`,
    area: '010',
    held: new Set<string>(),
  }));
  const position = new Map(pool.map((n, i) => [n.x, i]));
  const degree = new Map<string, number>();
  // Counted apart from the pool's own sets (a Set would hide a second copy): how many live bindings hold (x, number).
  const holders = new Map<string, number>();
  let live: Live[] = [];
  let peakDelta = 0;
  const used = new Set<string>();
  const person = () => (rnd() < opts.hotShare ? `h${Math.floor(rnd() * opts.hot)}` : `p${Math.floor(rnd() * opts.people)}`);
  for (let t = 0; t < opts.steps; t++) {
    // Expiry first: what ends now gives its numbers back.
    for (const l of live.filter((l) => l.endsAt <= t)) {
      const n = pool[position.get(l.x)!]!;
      for (const m of l.members) {
        n.held.delete(m);
        holders.set(`${l.x}|${m}`, holders.get(`${l.x}|${m}`)! - 1);
        degree.set(m, degree.get(m)! - 1);
      }
    }
    live = live.filter((l) => l.endsAt > t);
    const a = person();
    const b = person();
    if (a === b) continue;
    const members = membersOf('axb', a, b);
    const [x] = firstFit(pool, members);
    if (x === undefined) throw new Error(`seed ${seed}: pool of ${opts.poolSize} exhausted`);
    const n = pool[position.get(x)!]!;
    // The invariant: nothing this binding holds is already held on its X.
    if (reuseClash(n.held, members) !== null) throw new Error(`seed ${seed}: ${x} already holds one of ${members.join(', ')}`);
    for (const m of members) {
      const count = (holders.get(`${x}|${m}`) ?? 0) + 1;
      if (count > 1) throw new Error(`seed ${seed}: ${m} is held twice on ${x}`);
      holders.set(`${x}|${m}`, count);
      n.held.add(m);
      degree.set(m, (degree.get(m) ?? 0) + 1);
    }
    live.push({ x, members, endsAt: t + 1 + Math.floor(rnd() * 2 * opts.meanLife) });
    // a and b held d_a-1 and d_b-1 other bindings: at most that many X were blocked for this one.
    const deltaNow = Math.max(degree.get(a)!, degree.get(b)!);
    peakDelta = Math.max(peakDelta, deltaNow);
    if (position.get(x)! > 2 * deltaNow - 2) throw new Error(`seed ${seed}: ${x} is past the first ${2 * deltaNow - 1} numbers`);
    used.add(x);
  }
  return { peakDelta, distinctX: used.size };
}

describe('first fit on random workloads (seeded)', () => {
  const seeds = Array.from({ length: 40 }, (_, i) => 1000 + i);

  it.each(seeds)('seed %i: the invariant holds and at most 2Δ-1 distinct X are used', (seed) => {
    const rnd = random(seed * 7);
    const opts = {
      people: 50 + Math.floor(rnd() * 500),
      hot: 1 + Math.floor(rnd() * 10),
      hotShare: rnd() * 0.6,
      steps: 1500,
      poolSize: 2000,
      meanLife: 20 + Math.floor(rnd() * 400),
    };
    const { peakDelta, distinctX } = simulate(seed, opts);
    expect(distinctX).toBeLessThanOrEqual(2 * peakDelta - 1);
  });

  it('the bound is tight: an order of arrivals that makes first fit use 2Δ-1 numbers', () => {
    const pool = Array.from({ length: 10 }, (_, i) => ({ x: `x${i}`, area: '010', held: new Set<string>() }));
    const take = (a: string, b: string): string => {
      const [x] = firstFit(pool, [a, b]);
      pool.find((n) => n.x === x)!.held.add(a).add(b);
      return x!;
    };
    expect(take('r', 's')).toBe('x0');
    expect(take('b', 'r')).toBe('x1'); // r holds x0
    expect(take('a', 't')).toBe('x0');
    // a holds x0, b holds x1: (a, b) goes to x2. Every number holds at most Δ = 2 bindings; 3 = 2Δ-1 numbers are used.
    expect(take('a', 'b')).toBe('x2');
  });
});
