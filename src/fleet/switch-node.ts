import { EventEmitter } from 'node:events';
import { EslClient, type EslClientOptions } from '../esl/client';
import type { SwitchClock } from '../esl/switch-clock';
import type { EslEvent } from '../esl/event';
import type { Logger } from '../logger';
import { LEGS_PER_CALL, SwitchCapacity, switchCallsPerSecond } from '../queues/switch-capacity';
import type { SwitchAdminState, SwitchHealth } from '../stores/switch-store';

/** Why a switch's calls are given up: unreachable longer than SWITCH_LOST_SECONDS, or back with a new Core-UUID (restarted). */
export type SwitchLoss = 'SWITCH_LOST' | 'SWITCH_RESTARTED';

export interface SwitchNodeOptions {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly state: SwitchAdminState;
  readonly esl: Omit<EslClientOptions, 'host' | 'port' | 'logger'>;
  readonly lostAfterMs: number;
  readonly gatewayCallsPerSecond: number;
  readonly switchSharePercent: number;
  /** Told after every new reading of the switch's load. */
  readonly changed: () => void;
  readonly logger: Logger;
}

/**
 * One switch of the fleet: its own event socket (reconnecting by itself), its load from HEARTBEAT and
 * `status`, and its fate. Implements what a call flow needs of a switch (flows/switch.ts), so a call
 * placed here sends every command here.
 *
 * Emits `ready` after every (re)connect, and `lost` (with a SwitchLoss) when its calls must be given
 * up: it stayed unreachable for lostAfterMs (from start, or from a lost connection), or it came back
 * as a new process (another Core-UUID: every channel it had is gone).
 */
export class SwitchNode extends EventEmitter {
  readonly name: string;
  readonly address: string;
  readonly client: EslClient;
  readonly capacity: SwitchCapacity;
  private adminState: SwitchAdminState;
  private coreUuid: string | null = null;
  private lostTimer: NodeJS.Timeout | undefined;
  private lostAs: SwitchLoss | null = null;
  private readonly log: Logger;
  /** Click-to-dial attempts of this controller on this switch now. */
  private calls = 0;
  private placedInSecond = { second: 0, count: 0 };
  private placedTotal = 0;

  constructor(private readonly opts: SwitchNodeOptions) {
    super();
    this.setMaxListeners(0);
    this.name = opts.name;
    this.address = `${opts.host}:${opts.port}`;
    this.adminState = opts.state;
    this.log = opts.logger.child({ switch: opts.name });
    this.client = new EslClient({ ...opts.esl, host: opts.host, port: opts.port, logger: this.log.child({ component: 'esl' }) });
    this.client.on('error', (err: unknown) => this.log.error({ err }, 'esl error'));
    this.client.on('ready', () => void this.onConnected());
    this.client.on('disconnected', () => this.armLostTimer());
    this.capacity = new SwitchCapacity({
      feed: this.client,
      gatewayCallsPerSecond: opts.gatewayCallsPerSecond,
      switchSharePercent: opts.switchSharePercent,
      maxWaitSeconds: 0,
      changed: opts.changed,
      logger: this.log,
    });
  }

  /** Starts connecting; never waits for the switch (the controller serves without it). */
  start(): void {
    this.armLostTimer();
    void this.capacity.start();
    this.client.start().catch((err: unknown) => this.log.error({ err }, 'switch not started (a refused password is not retried)'));
  }

  async stop(): Promise<void> {
    clearTimeout(this.lostTimer);
    this.capacity.stop();
    await this.client.stop();
  }

  get state(): SwitchAdminState {
    return this.adminState;
  }

  set state(state: SwitchAdminState) {
    if (state !== this.adminState) this.log.info({ state }, state === 'draining' ? 'switch draining: no new calls' : 'switch takes new calls again');
    this.adminState = state;
  }

  get connected(): boolean {
    return this.client.state === 'ready';
  }

  /** Set once the switch's calls were given up, until it is connected again. */
  get lost(): SwitchLoss | null {
    return this.lostAs;
  }

  /** May a new call be placed here: up, not draining, taking channels, with a session and a second's share left. */
  takesCalls(now: number = Date.now()): boolean {
    if (this.adminState !== 'active' || !this.connected || this.lostAs !== null) return false;
    const s = this.capacity.snapshot();
    if (s.refusing) return false;
    const r = s.switch;
    if (r && r.maxSessions > 0 && this.estimatedSessions() + LEGS_PER_CALL > r.maxSessions) return false;
    const cps = switchCallsPerSecond(r?.sessionsPerSecond ?? null, this.opts.switchSharePercent, null);
    return cps === null || this.placedThisSecond(now) < cps;
  }

  /** Sessions on the switch as last reported, or this controller's own calls on it if more (reports lag by a heartbeat). */
  estimatedSessions(): number {
    return Math.max(this.capacity.snapshot().switch?.sessions ?? 0, LEGS_PER_CALL * this.calls);
  }

  /** Load for placement: the share of the switch's sessions in use (its own count when it gives no maximum). */
  load(): number {
    const max = this.capacity.snapshot().switch?.maxSessions ?? 0;
    return max > 0 ? this.estimatedSessions() / max : this.calls / 1_000_000;
  }

  /** A call of this controller starts here; the returned function ends it. */
  callStarted(now: number = Date.now()): () => void {
    this.calls++;
    this.placedTotal++;
    const second = Math.floor(now / 1000);
    if (this.placedInSecond.second !== second) this.placedInSecond = { second, count: 0 };
    this.placedInSecond.count++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.calls--;
    };
  }

  get callsHere(): number {
    return this.calls;
  }

  get callsPlacedTotal(): number {
    return this.placedTotal;
  }

  health(): SwitchHealth {
    const r = this.capacity.snapshot().switch;
    return {
      connected: this.connected,
      state: this.adminState,
      lost: this.lostAs !== null,
      address: this.address,
      sessions: r?.sessions ?? null,
      maxSessions: r?.maxSessions ?? null,
      sessionsPerSecond: r?.sessionsPerSecond ?? null,
      idleCpu: r?.idleCpu ?? null,
      calls: this.calls,
    };
  }

  // ---- what a call flow needs of a switch (flows/switch.ts SwitchControl) ------------------------

  api(command: string, opts?: { timeoutMs?: number; quick?: boolean }): Promise<string> {
    return this.client.api(command, opts);
  }

  bgapi(command: string, opts?: { jobUuid?: string; timeoutMs?: number }): Promise<string> {
    return this.client.bgapi(command, opts);
  }

  execute(uuid: string, app: string, arg?: string, opts?: { eventUuid?: string; awaitCompletion?: boolean; timeoutMs?: number }): Promise<EslEvent | undefined> {
    return this.client.execute(uuid, app, arg, opts);
  }

  onChannel(uuid: string, listener: (e: EslEvent) => void): () => void {
    return this.client.onChannel(uuid, listener);
  }

  get clock(): SwitchClock {
    return this.client.clock;
  }

  // -----------------------------------------------------------------------------------------------

  private placedThisSecond(now: number): number {
    return this.placedInSecond.second === Math.floor(now / 1000) ? this.placedInSecond.count : 0;
  }

  private armLostTimer(): void {
    if (this.lostTimer || this.lostAs) return;
    this.lostTimer = setTimeout(() => {
      this.lostTimer = undefined;
      if (this.connected) return;
      this.giveUp('SWITCH_LOST');
    }, this.opts.lostAfterMs);
    this.lostTimer.unref();
  }

  private giveUp(loss: SwitchLoss): void {
    this.lostAs = loss;
    this.log.error({ loss, calls: this.calls }, 'switch lost: its calls are settled as failed; new calls go to other switches');
    this.emit('lost', loss);
  }

  private async onConnected(): Promise<void> {
    clearTimeout(this.lostTimer);
    this.lostTimer = undefined;
    let id: string | null = null;
    try {
      id = (await this.client.api('global_getvar core_uuid')).trim() || null;
    } catch (err) {
      this.log.warn({ err }, 'could not read the switch core uuid');
    }
    if (id !== null && this.coreUuid !== null && id !== this.coreUuid && this.lostAs === null) this.giveUp('SWITCH_RESTARTED');
    if (id !== null) this.coreUuid = id;
    if (this.lostAs !== null) this.log.info('switch back: it takes new calls again');
    this.lostAs = null;
    this.emit('ready');
  }

  /** The switch's Core-UUID as last read (null until connected once). */
  get identity(): string | null {
    return this.coreUuid;
  }
}
