import { EventEmitter } from 'node:events';
import { RetryLaterError } from '../../src/domain/errors';
import { parsePlainEvent, type EslEvent } from '../../src/esl/event';
import { createLogger } from '../../src/logger';
import {
  admitNewCall,
  callbackRate,
  drainRate,
  CapacityRefusedError,
  parseSwitchStatus,
  SwitchCapacity,
  type CapacitySnapshot,
} from '../../src/queues/switch-capacity';

/** `api status` of FreeSWITCH 1.10.12 with freeswitch-conf/ (sessions-per-second 30, min-idle-cpu 25). */
const STATUS = `UP 0 years, 0 days, 0 hours, 0 minutes, 5 seconds, 939 milliseconds, 708 microseconds
FreeSWITCH (Version 1.10.12-release  64bit) is ready
0 session(s) since startup
0 session(s) - peak 0, last 5min 0 
0 session(s) per Sec out of max 30, peak 0, last 5min 0 
1000 session(s) max
min idle cpu 25.00/87.37
Current Stack Size/Max 240K/8192K
`;

function status(f: { sessions?: number; sps?: number; max?: number; minIdle?: number; idle?: number }): string {
  return STATUS.replace('0 session(s) - peak', `${f.sessions ?? 0} session(s) - peak`)
    .replace('out of max 30', `out of max ${f.sps ?? 30}`)
    .replace('1000 session(s) max', `${f.max ?? 1000} session(s) max`)
    .replace('min idle cpu 25.00/87.37', `min idle cpu ${(f.minIdle ?? 25).toFixed(2)}/${(f.idle ?? 87.37).toFixed(2)}`);
}

/** The HEARTBEAT of trace 04c (FreeSWITCH 1.10.12), with the figures a test chooses. */
function heartbeat(f: { sessions?: number; max?: number; idle?: number }): EslEvent {
  return parsePlainEvent(
    [
      'Event-Name: HEARTBEAT',
      'Core-UUID: 712f108c-2d51-4e34-b4a8-290d2c816df1',
      'FreeSWITCH-Hostname: fs-node-1',
      'Event-Date-Timestamp: 1795345672259516',
      'Event-Calling-File: switch_core.c',
      'Event-Calling-Function: send_heartbeat',
      'Event-Sequence: 628',
      'Event-Info: System%20Ready',
      'Uptime-msec: 139594',
      `Session-Count: ${f.sessions ?? 2}`,
      `Max-Sessions: ${f.max ?? 1000}`,
      'Session-Per-Sec: 30',
      'Session-Per-Sec-Last: 0',
      'Session-Per-Sec-Max: 2',
      'Session-Per-Sec-FiveMin: 2',
      'Session-Since-Startup: 7',
      'Session-Peak-Max: 2',
      'Session-Peak-FiveMin: 2',
      `Idle-CPU: ${(f.idle ?? 97.6).toFixed(6)}`,
      '',
    ].join('\n'),
  );
}

class FakeSwitch extends EventEmitter {
  state = 'ready';
  statusText = STATUS;
  asked: string[] = [];
  api(command: string): Promise<string> {
    this.asked.push(command);
    return Promise.resolve(this.statusText);
  }
}

const logger = createLogger('silent');

function snapshot(over: Partial<CapacitySnapshot>): CapacitySnapshot {
  return { at: 0, validUntil: 60_000, callsPerSecond: 10, limitedBy: 'gateway', maxWaitSeconds: 5, refusing: null, switch: null, ...over };
}

describe('switch capacity: what the switch says', () => {
  it('reads the limits and the load from `api status`', () => {
    expect(parseSwitchStatus(STATUS)).toEqual({ sessions: 0, sessionsPerSecond: 30, maxSessions: 1000, minIdleCpu: 25, idleCpu: 87.37 });
    expect(parseSwitchStatus(status({ sessions: 212, sps: 1000, minIdle: 0, idle: 12.5 }))).toMatchObject({ sessions: 212, sessionsPerSecond: 1000, minIdleCpu: 0, idleCpu: 12.5 });
    expect(parseSwitchStatus('-ERR no reply')).toBeNull();
  });

  it('the queue runs at the gateway limit, or at what the switch leaves for two-leg calls when that is lower', () => {
    // 30 sessions/s lets 29 channels a second through; 85 % of them, two per call.
    expect(callbackRate(1000, 30, 85)).toEqual({ callsPerSecond: 12, limitedBy: 'switch' });
    expect(callbackRate(10, 30, 85)).toEqual({ callsPerSecond: 10, limitedBy: 'gateway' });
    expect(callbackRate(20, 1000, 85)).toEqual({ callsPerSecond: 20, limitedBy: 'gateway' });
    expect(callbackRate(1000, 30, 100)).toEqual({ callsPerSecond: 14, limitedBy: 'switch' });
    expect(callbackRate(1000, 2, 85)).toEqual({ callsPerSecond: 1, limitedBy: 'switch' });
    // Unknown, or not followed.
    expect(callbackRate(20, null, 85)).toEqual({ callsPerSecond: 20, limitedBy: 'gateway' });
    expect(callbackRate(1000, 30, 0)).toEqual({ callsPerSecond: 1000, limitedBy: 'gateway' });
  });
});

describe('switch capacity: admission', () => {
  it('lets a call in while its wait stays within the bound', () => {
    expect(() => admitNewCall(snapshot({}), 49, 1000)).not.toThrow(); // 50th at 10/s: 5 s
    expect(() => admitNewCall(snapshot({ maxWaitSeconds: 0 }), 10_000, 1000)).not.toThrow();
    expect(() => admitNewCall(null, 10_000)).not.toThrow();
  });

  it('refuses one that would ring late: 429 gateway_rate_limited when the gateway sets the pace, with the seconds to wait', () => {
    let err: unknown;
    try {
      admitNewCall(snapshot({}), 62, 1000); // 63rd at 10/s: 6.3 s, 1.3 s too late
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CapacityRefusedError);
    expect(err).toBeInstanceOf(RetryLaterError);
    expect(err).toMatchObject({ code: 'gateway_rate_limited', kind: 'too_many', retryAfterSeconds: 2 });
  });

  it('503 switch_at_capacity when the switch sets the pace, or refuses channels', () => {
    expect(() => admitNewCall(snapshot({ limitedBy: 'switch', callsPerSecond: 12 }), 60, 1000)).toThrow(
      expect.objectContaining({ code: 'switch_at_capacity', kind: 'unavailable', retryAfterSeconds: 1 }) as Error,
    );
    const refusing = snapshot({ refusing: { reason: 'idle_cpu', retryAfterSeconds: 5 } });
    expect(() => admitNewCall(refusing, 0, 1000)).toThrow(expect.objectContaining({ code: 'switch_at_capacity', kind: 'unavailable', retryAfterSeconds: 5 }) as Error);
  });

  it('while the calls started lately had waited, bounds the wait by the rate they left at, when it is below the limit', () => {
    const limit = snapshot({ callsPerSecond: 400, limitedBy: 'gateway', maxWaitSeconds: 5 });
    // 36 calls/s actually left, each after 2.5 s: 180 waiting take 5 s, the 181st more.
    const lagging = { callsPerSecond: 36, meanLagSeconds: 2.5, maxLagSeconds: 4.5, calls: 108 };
    expect(drainRate(limit, lagging)).toEqual({ callsPerSecond: 36, paced: true });
    expect(() => admitNewCall(limit, 179, 1000, lagging)).not.toThrow();
    let err: unknown;
    try {
      admitNewCall(limit, 215, 1000, lagging); // 216th at 36/s: 6 s, 1 s too late
    } catch (e) {
      err = e;
    }
    // The platform is what is short, not the gateway's limit: 503, not 429.
    expect(err).toMatchObject({ code: 'switch_at_capacity', kind: 'unavailable', retryAfterSeconds: 1 });
    expect((err as Error).message).toContain('36.0 calls/s (limit 400)');
    // The limiter's rate alone would have let it in (216 at 400/s: 0.5 s).
    expect(() => admitNewCall(limit, 215, 1000)).not.toThrow();
  });

  it('a pace says nothing of capacity when its calls did not wait, when it is not below the limit, or when none was started', () => {
    const limit = snapshot({ callsPerSecond: 400, maxWaitSeconds: 5 });
    expect(drainRate(limit, { callsPerSecond: 3, meanLagSeconds: 0.05, maxLagSeconds: 0.1, calls: 9 })).toEqual({ callsPerSecond: 400, paced: false });
    expect(drainRate(limit, { callsPerSecond: 3, meanLagSeconds: 1, maxLagSeconds: 1.5, calls: 9 })).toEqual({ callsPerSecond: 400, paced: false });
    expect(drainRate(limit, { callsPerSecond: 450, meanLagSeconds: 4, maxLagSeconds: 4.9, calls: 1350 })).toEqual({ callsPerSecond: 400, paced: false });
    expect(drainRate(limit, null)).toEqual({ callsPerSecond: 400, paced: false });
    // A gateway-limited queue that lags at its own limit stays 429.
    const gateway = snapshot({ callsPerSecond: 10, limitedBy: 'gateway' });
    expect(() => admitNewCall(gateway, 62, 1000, { callsPerSecond: 10, meanLagSeconds: 4, maxLagSeconds: 5, calls: 30 })).toThrow(
      expect.objectContaining({ code: 'gateway_rate_limited' }) as Error,
    );
  });

  it('while the latest calls were dialled later than the bound after being accepted, refuses a new one: 503 controller_overloaded', () => {
    const limit = snapshot({ callsPerSecond: 400, maxWaitSeconds: 5 });
    // Taken at once (no backlog) but dialled late: the controllers run late, not the queue.
    const late = { callsPerSecond: 30, meanLagSeconds: 2.2, maxLagSeconds: 6.4, calls: 90 };
    let err: unknown;
    try {
      admitNewCall(limit, 0, 1000, late);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CapacityRefusedError);
    expect(err).toMatchObject({ code: 'controller_overloaded', kind: 'unavailable', retryAfterSeconds: 2 });
    expect((err as Error).message).toContain('waited up to 6.4 s since they were accepted (at most 5 s)');
    expect(() => admitNewCall(limit, 0, 1000, { ...late, maxLagSeconds: 5 })).not.toThrow();
    // No bound, no refusal.
    expect(() => admitNewCall(snapshot({ maxWaitSeconds: 0 }), 0, 1000, late)).not.toThrow();
  });

  it('a snapshot whose controller stopped (past validUntil) refuses nothing', () => {
    const refusing = snapshot({ refusing: { reason: 'idle_cpu', retryAfterSeconds: 5 } });
    expect(() => admitNewCall(refusing, 1000, 60_001)).not.toThrow();
  });
});

describe('SwitchCapacity', () => {
  let now = 1_000_000;
  let fs: FakeSwitch;
  let rates: number[];
  let published: CapacitySnapshot[];
  let capacity: SwitchCapacity;

  beforeEach(async () => {
    now = 1_000_000;
    fs = new FakeSwitch();
    rates = [];
    published = [];
    capacity = new SwitchCapacity({
      feed: fs,
      gatewayCallsPerSecond: 1000,
      switchSharePercent: 85,
      maxWaitSeconds: 5,
      applyRate: async (r) => void rates.push(r),
      publish: async (s) => void published.push(s),
      logger,
      now: () => now,
    });
    await capacity.start();
  });
  afterEach(() => capacity.stop());

  const beat = async (f: Parameters<typeof heartbeat>[0], statusFigures: Parameters<typeof status>[0] = {}): Promise<void> => {
    fs.statusText = status({ ...statusFigures, idle: f.idle ?? statusFigures.idle, sessions: f.sessions ?? statusFigures.sessions, max: f.max ?? statusFigures.max });
    fs.emit('event', heartbeat(f));
    await capacity.refresh();
  };

  it('sets the queue to the gateway rate, then to what the switch leaves, and publishes the snapshot', () => {
    expect(rates).toEqual([1000, 12]);
    expect(fs.asked).toEqual(['status']);
    expect(capacity.snapshot()).toMatchObject({ callsPerSecond: 12, limitedBy: 'switch', maxWaitSeconds: 5, refusing: null });
    expect(published.at(-1)).toMatchObject({ callsPerSecond: 12 });
  });

  it('follows a change of sessions-per-second at the next heartbeat', async () => {
    await beat({}, { sps: 200 });
    expect(rates.at(-1)).toBe(84);
    await beat({}, { sps: 200 });
    expect(rates).toHaveLength(3); // unchanged: not set again
  });

  it('refuses new calls and holds the queue while Idle-CPU is under min-idle-cpu, as the switch does; the wait is a heartbeat', async () => {
    await beat({ idle: 25 });
    expect(capacity.snapshot().refusing).toBeNull(); // the switch still takes channels at 25 %
    now += 5000;
    await beat({ idle: 24.9 });
    expect(capacity.snapshot().refusing).toEqual({ reason: 'idle_cpu', retryAfterSeconds: 5 });
    expect(capacity.holdMs()).toBe(5000);
    await expect(capacity.admit({ backlog: () => Promise.resolve(0) })).rejects.toMatchObject({ code: 'switch_at_capacity', kind: 'unavailable', retryAfterSeconds: 5 });
    expect(published.at(-1)?.refusing).toEqual({ reason: 'idle_cpu', retryAfterSeconds: 5 });
    now += 5000;
    await beat({ idle: 60 });
    expect(capacity.holdMs()).toBe(0);
    await expect(capacity.admit({ backlog: () => Promise.resolve(0) })).resolves.toBeUndefined();
  });

  it('min-idle-cpu 0 (off) never refuses for CPU; a switch out of sessions does', async () => {
    await beat({ idle: 1 }, { minIdle: 0 });
    expect(capacity.snapshot().refusing).toBeNull();
    await beat({ sessions: 999, max: 1000 }, { minIdle: 0 });
    expect(capacity.snapshot().refusing).toMatchObject({ reason: 'max_sessions' });
  });

  it('figures three heartbeats old are not used: the gateway rate and no refusal', async () => {
    await beat({ idle: 5 });
    expect(capacity.snapshot().refusing).not.toBeNull();
    now += 61_000; // heartbeat interval not yet measured: 20 s
    expect(capacity.snapshot()).toMatchObject({ refusing: null, callsPerSecond: 1000, limitedBy: 'gateway', switch: null });
  });

  it('asks for the backlog and the pace only when it matters', async () => {
    let asked = 0;
    const queue = (n: number) => ({
      backlog: () => {
        asked++;
        return Promise.resolve(n);
      },
      pace: () => {
        asked++;
        return Promise.resolve(null);
      },
    });
    await capacity.admit(queue(59)); // 60 calls at 12/s: 5 s
    await expect(capacity.admit(queue(60))).rejects.toMatchObject({ code: 'switch_at_capacity', retryAfterSeconds: 1 });
    expect(asked).toBe(4);
    await beat({ idle: 5 });
    await expect(capacity.admit(queue(0))).rejects.toMatchObject({ code: 'switch_at_capacity', retryAfterSeconds: 20 });
    expect(asked).toBe(4); // refusing anyway: neither is read
  });

  it('reads the limits again after every reconnect', async () => {
    fs.statusText = status({ sps: 100 });
    fs.emit('ready');
    await capacity.refresh();
    expect(fs.asked.length).toBeGreaterThanOrEqual(2);
    expect(capacity.snapshot().callsPerSecond).toBe(42);
  });
});
