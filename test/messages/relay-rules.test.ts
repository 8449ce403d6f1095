import { numberHasher } from '../../src/domain/number-hash';
import { dedupKey, relayDecision } from '../../src/messages/relay-rules';
import type { RouteTarget } from '../../src/stores/route-index';

const route = (over: Partial<RouteTarget> = {}): RouteTarget => ({
  bindingId: 'b1',
  tenantId: 't1',
  kind: 'axb',
  target: '13900000002',
  callerRole: 'a',
  restriction: 'both',
  record: false,
  maxDurationSeconds: null,
  announcement: null,
  userData: null,
  expiresAt: Date.now() + 60_000,
  allowList: [],
  ...over,
});

describe('relay rules', () => {
  it('forwards a routed sender, with its direction from its place in the binding', () => {
    expect(relayDecision({ route: route() }, null)).toMatchObject({ direction: 'a_to_b' });
    expect(relayDecision({ route: route({ callerRole: 'b', target: '13800000001' }) }, null)).toMatchObject({ direction: 'b_to_a' });
    expect(relayDecision({ route: route({ kind: 'xb', callerRole: 'any' }) }, null)).toMatchObject({ direction: 'to_b' });
  });

  it('keeps the route index’s refusal and abuse control’s', () => {
    expect(relayDecision({ refused: 'unbound' }, null)).toEqual({ refused: 'unbound', binding: null });
    expect(relayDecision({ refused: 'restricted', binding: route() }, null)).toMatchObject({ refused: 'restricted', binding: { bindingId: 'b1' } });
    expect(relayDecision({ route: route() }, 'blacklisted')).toMatchObject({ refused: 'blacklisted' });
    expect(relayDecision({ route: route() }, 'rate_limited')).toMatchObject({ refused: 'rate_limited' });
  });

  it('forwards nowhere when the index holds a target that is not a number', () => {
    expect(relayDecision({ route: route({ target: '13900000002;evil' }) }, null)).toEqual({ refused: 'unbound', binding: null });
  });

  it('makes one key of the same text from the same sender to the same X within a window, keyed', () => {
    const hash = numberHasher('k'.repeat(32));
    const m = { x: '700100000000001', sender: '13800000001', text: 'hi', receivedAt: 1_000_000 };
    expect(dedupKey(hash, m, 600)).toBe(dedupKey(hash, { ...m, receivedAt: 1_000_500 }, 600));
    expect(dedupKey(hash, m, 600)).not.toBe(dedupKey(hash, { ...m, text: 'hi!' }, 600));
    expect(dedupKey(hash, m, 600)).not.toBe(dedupKey(hash, { ...m, receivedAt: 1_000_000 + 600_000 }, 600));
    expect(dedupKey(hash, m, 600)).not.toBe(dedupKey(numberHasher('j'.repeat(32)), m, 600));
  });
});
