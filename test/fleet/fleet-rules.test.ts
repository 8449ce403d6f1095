import { ConfigError, loadConfig } from '../../src/config';
import { fleetSnapshot, switchCallsPerSecond, type CapacitySnapshot, type FleetMember } from '../../src/queues/switch-capacity';

const reading = (over: Partial<NonNullable<CapacitySnapshot['switch']>> = {}): NonNullable<CapacitySnapshot['switch']> => ({
  at: 1000, sessions: 0, maxSessions: 1000, idleCpu: 90, sessionsPerSecond: 30, minIdleCpu: 0, ...over,
});

function member(name: string, eligible: boolean, refusing: CapacitySnapshot['refusing'] = null, r = reading()): FleetMember {
  const snapshot: CapacitySnapshot = { at: 1000, validUntil: 61_000, callsPerSecond: 12, limitedBy: 'switch', maxWaitSeconds: 0, refusing, switch: r };
  return { name, eligible, capacity: { snapshot: () => snapshot }, maxCallsPerSecond: null };
}

const limits = { gatewayCallsPerSecond: 100, switchSharePercent: 85, maxWaitSeconds: 5 };

describe('fleet back-pressure', () => {
  it('the queue runs at the sum of what the eligible switches take, capped by the gateway', () => {
    // (30 − 1) × 85 % / 2 legs = 12 per switch
    expect(fleetSnapshot([member('fs1', true), member('fs2', true)], limits, 1000)).toMatchObject({ callsPerSecond: 24, limitedBy: 'switch', refusing: null });
    expect(fleetSnapshot([member('fs1', true), member('fs2', true)], { ...limits, gatewayCallsPerSecond: 20 }, 1000)).toMatchObject({ callsPerSecond: 20, limitedBy: 'gateway' });
    // a draining, down or lost switch counts for nothing
    expect(fleetSnapshot([member('fs1', true), member('fs2', false)], limits, 1000)).toMatchObject({ callsPerSecond: 12, refusing: null });
  });

  it('refuses only when no eligible switch takes channels: its reason, or no_switch when none is up', () => {
    const busy = { reason: 'idle_cpu' as const, retryAfterSeconds: 5 };
    expect(fleetSnapshot([member('fs1', true, busy), member('fs2', true)], limits, 1000).refusing).toBeNull();
    expect(fleetSnapshot([member('fs1', true, busy), member('fs2', false)], limits, 1000).refusing).toEqual(busy);
    expect(fleetSnapshot([member('fs1', false), member('fs2', false)], limits, 1000).refusing).toEqual({ reason: 'no_switch', retryAfterSeconds: 1 });
    const s = fleetSnapshot([member('fs1', true, busy), member('fs2', true)], limits, 1000);
    expect(s.switches).toEqual([expect.objectContaining({ name: 'fs1', takesCalls: false }), expect.objectContaining({ name: 'fs2', takesCalls: true })]);
    expect(s.switch).toBeNull(); // several switches: see `switches`
  });

  it("a switch's own rate: its share of sessions-per-second, or a configured limit if lower", () => {
    expect(switchCallsPerSecond(30, 85, null)).toBe(12);
    expect(switchCallsPerSecond(30, 85, 5)).toBe(5);
    expect(switchCallsPerSecond(null, 85, null)).toBeNull();
    expect(switchCallsPerSecond(30, 0, null)).toBeNull();
  });
});

describe('SWITCHES', () => {
  const base = { ESL_PASSWORD: 'x' };
  it('lists name@host:port (8021 by default); without it the one switch of ESL_HOST is `default`', () => {
    expect(loadConfig({ ...base, SWITCHES: 'fs1@10.0.0.1:8021, fs2@fs2.internal' }).fleet.switches).toEqual([
      { name: 'fs1', host: '10.0.0.1', port: 8021 },
      { name: 'fs2', host: 'fs2.internal', port: 8021 },
    ]);
    expect(loadConfig({ ...base, ESL_HOST: '10.0.0.9', ESL_PORT: '8022' }).fleet.switches).toEqual([{ name: 'default', host: '10.0.0.9', port: 8022 }]);
    // the outbound socket admits each switch's address by default
    expect(loadConfig({ ...base, SWITCHES: 'fs1@10.0.0.1,fs2@10.0.0.2' }).outboundSocket.allowedPeers).toEqual(['127.0.0.0/8', '::1', '10.0.0.1', '10.0.0.2']);
  });

  it.each(['fs1', 'fs1@', '@10.0.0.1', 'f s@10.0.0.1', 'fs1@10.0.0.1:0', 'fs1@a:1,fs1@b:2', ','])('refuses %p naming the variable', (value) => {
    expect(() => loadConfig({ ...base, SWITCHES: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, SWITCHES: value })).toThrow(/SWITCHES/);
  });
});
