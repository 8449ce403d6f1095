import { EventEmitter } from 'node:events';
import type { AttemptPlacement, PlacedSwitch } from '../calls/click-to-dial-use-case';
import { EslDisconnectedError } from '../esl/errors';
import type { EslEvent } from '../esl/event';
import { SwitchClock } from '../esl/switch-clock';
import type { Logger } from '../logger';
import { admitToCallbackQueue, type CapacitySnapshot, type QueueState } from '../queues/switch-capacity';
import type { SwitchFleet } from './switch-fleet';

/**
 * A switch an attempt was placed on that is no longer in this controller's fleet (removed, or not
 * configured here): its calls cannot be followed, so it answers as lost and every command fails.
 */
class DepartedSwitch extends EventEmitter implements PlacedSwitch {
  readonly lost = 'SWITCH_LOST';
  readonly clock = new SwitchClock();
  constructor(readonly name: string) {
    super();
  }
  private gone(): Promise<never> {
    return Promise.reject(new EslDisconnectedError(`switch ${this.name} is not in the fleet`));
  }
  api(): Promise<string> {
    return this.gone();
  }
  bgapi(): Promise<string> {
    return this.gone();
  }
  execute(): Promise<EslEvent | undefined> {
    return this.gone();
  }
  onChannel(): () => void {
    return () => undefined;
  }
  callStarted(): () => void {
    return () => undefined;
  }
}

/** Click-to-dial placement over the fleet: a new attempt goes to the least loaded switch that takes calls. */
export function fleetPlacement(fleet: SwitchFleet, holdMs: () => number): AttemptPlacement {
  return {
    choose: () => fleet.choose(),
    byName: (name) => fleet.get(name) ?? new DepartedSwitch(name),
    holdMs: () => Math.max(250, holdMs()),
  };
}

export interface FleetBackPressureDeps {
  readonly fleet: SwitchFleet;
  /** Sets the callback queue's rate (BullMQ's global rate limit). */
  readonly applyRate: (callsPerSecond: number) => Promise<void>;
  /** Keeps the snapshot where direct producers read it (Redis). */
  readonly publish: (snapshot: CapacitySnapshot, ttlMs: number) => Promise<void>;
  readonly logger: Logger;
}

/**
 * The callback queue's back-pressure over the whole fleet (queues/switch-capacity.ts fleetSnapshot):
 * re-rated and republished whenever a switch reports, joins, leaves, connects or is lost.
 */
export class FleetBackPressure {
  private appliedRate: number | null = null;
  private pending: Promise<void> | undefined;
  private requested = 0;
  private published = 0;
  private readonly log: Logger;

  constructor(private readonly deps: FleetBackPressureDeps) {
    this.log = deps.logger.child({ component: 'switch-capacity' });
  }

  snapshot(): CapacitySnapshot {
    return this.deps.fleet.capacity();
  }

  /** Throws CapacityRefusedError for a new call that should not be queued (the queue's state is asked only when it matters). */
  admit(queue: QueueState): Promise<void> {
    const s = this.snapshot();
    return admitToCallbackQueue(s, queue, s.at);
  }

  /** ms to hold queued calls before dialling (0: some switch takes calls). */
  holdMs(): number {
    const s = this.snapshot();
    return s.refusing ? s.refusing.retryAfterSeconds * 1000 : 0;
  }

  /** Re-rates the queue and republishes; calls while one runs are folded into one more run. */
  changed(): Promise<void> {
    this.requested++;
    this.pending ??= this.publishRequested().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async publishRequested(): Promise<void> {
    while (this.published < this.requested) {
      this.published = this.requested;
      await this.publishOnce();
    }
  }

  private async publishOnce(): Promise<void> {
    const s = this.snapshot();
    if (s.callsPerSecond !== this.appliedRate) {
      try {
        await this.deps.applyRate(s.callsPerSecond);
        this.log.info({ callsPerSecond: s.callsPerSecond, limitedBy: s.limitedBy, switches: s.switches?.map((w) => ({ name: w.name, takesCalls: w.takesCalls })) }, 'callback rate set');
        this.appliedRate = s.callsPerSecond;
      } catch (err) {
        this.log.warn({ err }, 'could not set the callback rate');
      }
    }
    if (s.refusing) this.log.warn({ reason: s.refusing.reason }, 'no switch takes new calls: refusing them');
    try {
      await this.deps.publish(s, Math.max(1000, s.validUntil - s.at));
    } catch (err) {
      this.log.warn({ err }, 'could not publish the capacity snapshot');
    }
  }
}
