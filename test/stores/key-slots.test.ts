import { queueNames, redisKeys } from '../../src/stores/keys';
import { keySlot } from '../../src/stores/redis';

/**
 * Every group of keys one script, MULTI or MGET touches together must hash to one Redis Cluster
 * slot (the cluster refuses the command otherwise). The slot is computed here as Redis computes it
 * (CRC16/XMODEM of the hash tag, mod 16384); test/stores/redis-cluster.test.ts checks it against a real cluster.
 */
const k = redisKeys('ng');
const slots = (keys: readonly string[]): Set<number> => new Set(keys.map(keySlot));

describe('keySlot', () => {
  it('is CRC16/XMODEM mod 16384, of the hash tag when there is one', () => {
    // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
    expect(keySlot('123456789')).toBe(0x31c3 % 16384);
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    // an empty tag is no tag: the whole key is hashed
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar'));
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
  });
});

describe('every multi-key operation of the platform stays in one slot', () => {
  const groups: Array<[string, string[]]> = [
    ['a route lookup (MGET of the caller’s route and the XB route of X)', [k.route('700100000000001', 'c4ll3rh4sh'), k.route('700100000000001', '*')]],
    [
      'an attempt’s start (start-attempt.lua: the live call, both leg claims)',
      [k.liveCall('9d3e0c1a-call'), k.legClaim('9d3e0c1a-call', 'a:1'), k.legClaim('9d3e0c1a-call', 'b:1'), k.legClaim('9d3e0c1a-call', 'a:2')],
    ],
    ['a click-to-dial admission (take-sliding-window.lua over A and B)', [k.abuseCounter('calls', 'tenant-1', 'hashA'), k.abuseCounter('calls', 'tenant-1', 'hashB')]],
    [
      'a binding admission (take-sliding-window.lua over every member)',
      [k.abuseCounter('bindings', 'tenant-1', 'hashA'), k.abuseCounter('bindings', 'tenant-1', 'hashB'), k.abuseCounter('bindings', 'tenant-1', 'hashC')],
    ],
    ['fan-out (note-parties.lua: parties and flag)', [k.abuseCounter('fanout', 'tenant-1', 'hashA'), k.abuseCounter('fanout-flag', 'tenant-1', 'hashA')]],
    ['a caller’s burst (note-parties.lua)', [k.anomalyWindow('caller-calls', 'h'), k.anomalyWindow('caller-calls-flag', 'h')]],
    ['an X’s burst (note-parties.lua)', [k.anomalyWindow('x-calls', 'h'), k.anomalyWindow('x-calls-flag', 'h')]],
    ['short calls (note-short-calls.lua)', [k.anomalyWindow('connected', 'h'), k.anomalyWindow('short', 'h'), k.anomalyWindow('short-flag', 'h')]],
    ['bulk bindings (note-binding-rate.lua)', [k.bindingRate('tenant-1'), k.bindingRateFlag('tenant-1')]],
    ['a console call’s ownership (MULTI)', [k.consoleCallOwner('agent-7', 'call-1'), k.consoleCallOwner('agent-7', 'call-2'), k.consoleRecentCalls('agent-7')]],
    ['a relayed message’s limits (take-sliding-window.lua over sender and X)', [k.messageRate('sender', 'tenant-1', 'hashS'), k.messageRate('x', 'tenant-1', '700100000000001')]],
  ];
  it.each(groups)('%s', (_name, keys) => {
    expect(slots(keys).size).toBe(1);
  });

  it.each([
    ['click-to-dial', queueNames.clickToDial('carrier')],
    ['cdr', queueNames.cdr('ng')],
    ['webhooks', queueNames.webhooks],
    ['call-to-X handover', queueNames.callToXHandover('ng')],
    ['messages', queueNames.messages('ng')],
  ])('the %s queue: every BullMQ key of it (prefix:name:suffix) in one slot', (_name, queue) => {
    const bullKeys = ['wait', 'active', 'meta', 'id', 'events', 'stalled', 'limiter', 'delayed', 'completed', 'failed', 'prioritized', 'marker', 'pc', 'cdr-9d3e0c1a', '12345', '12345:lock'].map(
      (suffix) => `ng:${queue}:${suffix}`,
    );
    expect(slots(bullKeys).size).toBe(1);
  });

  it('spreads what is not used together: routes of different X, calls, tenants and queues land on many slots', () => {
    const xs = Array.from({ length: 200 }, (_, i) => `7001${String(i).padStart(11, '0')}`);
    expect(slots(xs.map((x) => k.route(x, '*'))).size).toBeGreaterThan(150);
    expect(slots(xs.map((x) => k.liveCall(`call-${x}`))).size).toBeGreaterThan(150);
    expect(slots(xs.map((x) => k.abuseCounter('calls', `tenant-${x}`, 'h'))).size).toBeGreaterThan(150);
    expect(slots([queueNames.clickToDial('carrier'), queueNames.cdr('ng'), queueNames.webhooks, queueNames.messages('ng')].map((q) => `ng:${q}:wait`)).size).toBe(4);
  });

  it('keeps the prefix first, so every key of a deployment is found by `<prefix>*`', () => {
    const all = [
      k.route('x', 'c'), k.liveCall('c'), k.legClaim('c', 'a:1'), k.abuseCounter('calls', 't', 'h'), k.anomalyWindow('short', 'h'), k.bindingRate('t'),
      k.consoleCallOwner('a', 'c'), k.consoleRecentCalls('a'), k.messageRate('x', 't', 'x'),
    ];
    for (const key of all) expect(key.startsWith('ng:')).toBe(true);
  });
});
