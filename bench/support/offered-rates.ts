/**
 * Where a capacity run offers its next rate. A ratio of sustained rates means something only when
 * bare originates were offered more than they could carry: while bare still carries >= 99 % of
 * the highest rate of the list, its limit is unknown (on a faster host, bare carried all 40 calls/s
 * of the default list and the run printed a ratio of 0.99; offered up to 60/s, the same tree's was 0.85).
 */

/** Connected share at or above which a side is taken to carry the rate offered. */
export const SUSTAINED_PCT = 99;

/**
 * How much of a phase's offered rate a side carried, %: the share of its calls connected, or, when
 * lower, the rate they connected at against the rate offered. Bare originates queue in the switch
 * rather than fail, so past its limit bare still connects every call, only later and slower.
 */
export function carriedPct(connectedPct: number | null, connectedPerSecond: number, offeredPerSecond: number): number | null {
  if (connectedPct === null) return null;
  return Math.min(connectedPct, (100 * connectedPerSecond) / offeredPerSecond);
}

/**
 * The rate to offer after the listed ones: one more step (the last step of the list, at least
 * `minStep`) while bare still carried the highest rate offered so far, at most `maxExtra` beyond
 * the list; null when bare's limit is found (it carried less than SUSTAINED_PCT of a rate) or the extra rates are spent.
 */
export function nextOfferedRate(
  listed: readonly number[],
  offered: ReadonlyArray<{ readonly rate: number; readonly bareCarriedPct: number | null }>,
  opts: { readonly maxExtra: number; readonly minStep: number },
): number | null {
  const extra = offered.length - listed.length;
  if (extra < 0) return listed[offered.length] ?? null;
  if (extra >= opts.maxExtra || offered.length === 0) return null;
  const top = offered.reduce((a, b) => (b.rate > a.rate ? b : a));
  if (top.bareCarriedPct === null || top.bareCarriedPct < SUSTAINED_PCT) return null;
  const last = listed.at(-1) ?? top.rate;
  const before = listed.at(-2);
  const step = Math.max(opts.minStep, before === undefined ? 0 : last - before);
  return top.rate + step;
}

/** Whether bare was offered more than it carried, i.e. the sustained rates' ratio is a measure and not a bound. */
export function bareLimitFound(offered: ReadonlyArray<{ readonly bareCarriedPct: number | null }>): boolean {
  return offered.some((p) => p.bareCarriedPct !== null && p.bareCarriedPct < SUSTAINED_PCT);
}
