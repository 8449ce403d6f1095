import { EventEmitter } from 'node:events';
import type { SwitchAddress } from '../config';
import type { EslClientOptions } from '../esl/client';
import type { EslEvent } from '../esl/event';
import type { Logger } from '../logger';
import { fleetSnapshot, type CapacitySnapshot } from '../queues/switch-capacity';
import type { SwitchAdminState, SwitchRow } from '../stores/switch-store';
import { SwitchNode } from './switch-node';

export interface SwitchFleetOptions {
  /** SWITCHES (or the one ESL_HOST switch): always part of the fleet. */
  readonly configured: readonly SwitchAddress[];
  readonly esl: Omit<EslClientOptions, 'host' | 'port' | 'logger'>;
  readonly lostAfterMs: number;
  readonly gatewayCallsPerSecond: number;
  readonly switchSharePercent: number;
  readonly maxWaitSeconds: number;
  /** Told after every new reading of any switch, and whenever the fleet changes. */
  readonly changed: () => void;
  readonly logger: Logger;
}

export interface FleetMemberState {
  readonly name: string;
  readonly address: string;
  readonly connected: boolean;
  readonly state: SwitchAdminState;
}

/**
 * Every switch the controller drives. Each has its own connection and health (SwitchNode); the
 * fleet places new click-to-dial calls, answers which switch owns a call, forwards every switch's
 * events (`event`, with the node) to those that listen to all of them (text messages), and follows
 * the `switches` table (apply()).
 */
export class SwitchFleet extends EventEmitter {
  private readonly nodes = new Map<string, SwitchNode>();
  private readonly log: Logger;
  private roundRobin = 0;
  private started = false;

  constructor(private readonly opts: SwitchFleetOptions) {
    super();
    this.setMaxListeners(0);
    this.log = opts.logger.child({ component: 'fleet' });
    for (const s of opts.configured) this.add(s.name, s.host, s.port, 'active');
  }

  start(): void {
    this.started = true;
    for (const n of this.nodes.values()) n.start();
  }

  async stop(): Promise<void> {
    this.started = false;
    await Promise.all([...this.nodes.values()].map((n) => n.stop()));
  }

  get(name: string): SwitchNode | undefined {
    return this.nodes.get(name);
  }

  list(): SwitchNode[] {
    return [...this.nodes.values()];
  }

  /** The first switch configured (the one of ESL_HOST without SWITCHES). */
  get primary(): SwitchNode {
    const first = this.nodes.values().next().value;
    if (!first) throw new Error('the fleet has no switch');
    return first;
  }

  /** Whether any switch is connected. */
  get anyConnected(): boolean {
    return this.list().some((n) => n.connected);
  }

  /** Resolves once every switch has connected (or timeoutMs passed); for tests and tools. */
  async whenConnected(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.list().every((n) => n.connected && n.identity !== null)) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  }

  /**
   * The switch for a new call: among those that take calls (up, active, with headroom), the least
   * loaded; equal loads take turns. null: none can take one now.
   */
  choose(now: number = Date.now()): SwitchNode | null {
    const open = this.list().filter((n) => n.takesCalls(now));
    if (open.length === 0) return null;
    const start = this.roundRobin++ % open.length;
    let best: SwitchNode | null = null;
    for (let i = 0; i < open.length; i++) {
      const n = open[(start + i) % open.length] as SwitchNode;
      if (!best || n.load() < best.load()) best = n;
    }
    return best;
  }

  /** Which switch sent an outbound-socket connection (its Core-UUID), if one of the fleet. */
  byIdentity(coreUuid: string | undefined): SwitchNode | undefined {
    if (!coreUuid) return undefined;
    return this.list().find((n) => n.identity === coreUuid);
  }

  /** The callback queue's back-pressure over every switch. */
  capacity(now: number = Date.now()): CapacitySnapshot {
    return fleetSnapshot(
      this.list().map((n) => ({ name: n.name, eligible: n.state === 'active' && n.connected && n.lost === null, capacity: n.capacity, maxCallsPerSecond: null })),
      { gatewayCallsPerSecond: this.opts.gatewayCallsPerSecond, switchSharePercent: this.opts.switchSharePercent, maxWaitSeconds: this.opts.maxWaitSeconds },
      now,
    );
  }

  states(): FleetMemberState[] {
    return this.list().map((n) => ({ name: n.name, address: n.address, connected: n.connected, state: n.state }));
  }

  /**
   * Follows the `switches` table: switches it adds join, an address it changes is reconnected, its drain
   * marks apply (to configured switches too), and a switch it no longer names leaves (unless configured).
   */
  async apply(rows: readonly SwitchRow[]): Promise<void> {
    const configured = new Map(this.opts.configured.map((s) => [s.name, s]));
    const wanted = new Map<string, { host: string; port: number; state: SwitchAdminState }>();
    for (const s of this.opts.configured) wanted.set(s.name, { host: s.host, port: s.port, state: 'active' });
    for (const r of rows) {
      const base = configured.get(r.name);
      const host = r.host ?? base?.host;
      const port = r.port ?? base?.port;
      if (host === undefined || port === undefined) continue; // a drain mark of a switch this controller is not configured with
      wanted.set(r.name, { host, port, state: r.state });
    }
    for (const [name, node] of this.nodes) {
      const w = wanted.get(name);
      if (!w || `${w.host}:${w.port}` !== node.address) {
        this.log.info({ switch: name }, w ? 'switch address changed: reconnecting' : 'switch removed from the fleet');
        this.nodes.delete(name);
        node.emit('lost', 'SWITCH_LOST');
        await node.stop();
      }
    }
    for (const [name, w] of wanted) {
      const node = this.nodes.get(name);
      if (node) node.state = w.state;
      else {
        this.log.info({ switch: name, address: `${w.host}:${w.port}`, state: w.state }, 'switch joins the fleet');
        this.add(name, w.host, w.port, w.state).start();
      }
    }
    if (!this.started) return;
    this.opts.changed();
  }

  private add(name: string, host: string, port: number, state: SwitchAdminState): SwitchNode {
    const node = new SwitchNode({
      name,
      host,
      port,
      state,
      esl: this.opts.esl,
      lostAfterMs: this.opts.lostAfterMs,
      gatewayCallsPerSecond: this.opts.gatewayCallsPerSecond,
      switchSharePercent: this.opts.switchSharePercent,
      changed: this.opts.changed,
      logger: this.opts.logger,
    });
    node.client.on('event', (e: EslEvent) => this.emit('event', e, node));
    node.on('ready', () => this.opts.changed());
    node.on('lost', () => this.opts.changed());
    this.nodes.set(name, node);
    return node;
  }
}
