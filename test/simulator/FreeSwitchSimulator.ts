/**
 * A FreeSWITCH 1.10.12 simulator that speaks the Event Socket protocol over TCP, for tests and
 * benchmarks. Behaviour and bytes follow the recorded traces in shared/fs-traces (see README.md here).
 *
 * This class is the public face; the parts are: esl.ts (the protocol side), calls.ts and channel.ts (the channel
 * model and call flows), events.ts (events rendered from the recorded templates), outbound.ts (calls to X), with
 * their shared state in context.ts.
 */
import { setClockSkewMs } from './channel';
import { SimContext } from './context';
import type { SimMessages } from './messages';
import { templates } from './templates';
import type { OutboundCall, PhoneBehaviour, SeenByCaller, SeenInvite, SimulatorOptions } from './types';

export { parseVarBlock } from './channel';
export type { ByeRace, OutboundCall, PhoneBehaviour, SeenByCaller, SeenInvite, SimulatorOptions } from './types';

export class FreeSwitchSimulator {
  readonly received: string[];
  /** Every message received on any socket (inbound and outbound), whole: headers and body. */
  readonly receivedRaw: string[];
  private readonly sim: SimContext;
  private readonly host: string;
  private readonly port: number;
  /** This switch's identity, as every event's Core-UUID and `global_getvar core_uuid` give it. */
  readonly coreUuid: string;
  private stopping = false;

  constructor(opts: SimulatorOptions = {}) {
    this.sim = new SimContext(opts.password ?? 'ClueCon', opts.timeScale ?? 1);
    this.received = this.sim.received;
    this.receivedRaw = this.sim.receivedRaw;
    this.coreUuid = this.sim.coreUuid;
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port ?? 0;
    templates();
  }

  start(): Promise<{ host: string; port: number }> { return this.sim.esl.listen(this.host, this.port); }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const ch of this.sim.chans.values()) for (const t of ch.timers) clearTimeout(t);
    this.sim.chans.clear();
    for (const c of this.sim.conns) { c.closed = true; c.sock.destroy(); }
    this.sim.conns.clear();
    await this.sim.esl.closeServer();
  }

  setPhone(number: string, behaviour: PhoneBehaviour): void { this.sim.phones.set(number, behaviour); }
  /**
   * Runs the switch's clock `ms` from the system's (negative: behind), as a loaded FreeSWITCH's timer drifts until
   * `fsctl sync_clock`: every event stamp and `*_uepoch` moves, nothing else. Every simulator of this process shares
   * it; 0 puts it back.
   */
  skewClock(ms: number): void { setClockSkewMs(ms); }
  /**
   * Runs `hook` with each message a client sends (whole, as in receivedRaw) before the switch handles it, and
   * holds that connection's later messages until it resolves: a test acts at an exact point of the conversation
   * (e.g. just before an originate reaches the switch). The hook must not wait for anything sent on the same
   * connection. `undefined` removes it.
   */
  onCommand(hook: ((raw: string) => void | Promise<void>) | undefined): void { this.sim.commandHook = hook; }
  /** Text messages (messages.ts, recordings 18a/18b): a carrier's MESSAGE to X, what the switch sent, the carrier's answer. */
  get messages(): Pick<SimMessages, 'receive' | 'sent' | 'carrierAnswer'> { return this.sim.messages; }
  /** What `sched_broadcast` played to the channel of phone `number` (the callee's number, or a caller's to X), in order. */
  broadcastsTo(number: string): Array<{ path: string; at: number }> {
    return this.sim.broadcasts.filter((b) => b.number === number).map(({ path, at }) => ({ path, at }));
  }
  invitesTo(number: string): SeenInvite[] { return [...(this.sim.invites.get(number) ?? [])]; }
  /** What the phone `number` received while calling X (connectOutbound): responses to its INVITE, BYE. */
  seenByCaller(number: string): SeenByCaller[] { return [...(this.sim.callerMessages.get(number) ?? [])]; }
  /** The names of the events the switch sent on the outbound socket of the call to X on channel `uuid`, in order. */
  socketEventsOf(uuid: string): string[] { return [...(this.sim.socketEvents.get(uuid) ?? [])]; }
  channels(): Array<{ uuid: string; number: string; state: string; answered: boolean }> {
    return [...this.sim.chans.values()].filter((c) => !c.hungup).map((c) => ({ uuid: c.uuid, number: c.ep.number, state: c.answered ? 'CS_EXECUTE' : 'CS_CONSUME_MEDIA', answered: c.answered }));
  }
  /** What mod_hash holds under `realm/key` (e.g. a leg's figures kept by its api_reporting_hook); undefined when nothing. */
  hashEntry(realm: string, key: string): string | undefined { return this.sim.hashes.get(`${realm}/${key}`); }
  /** mod_hash's keys of a realm. */
  hashKeys(realm: string): string[] { return [...this.sim.hashes.keys()].filter((k) => k.startsWith(`${realm}/`)).map((k) => k.slice(realm.length + 1)); }
  originateCount(uuid?: string): number { return uuid === undefined ? this.sim.originateTotal : this.sim.originates.get(uuid) ?? 0; }
  dropConnections(): void { for (const c of this.sim.conns) { c.closed = true; c.sock.destroy(); } this.sim.conns.clear(); }

  /** `fsctl shutdown`: live calls end with SYSTEM_SHUTDOWN, every connection gets the shutdown notice. */
  shutdown(): Promise<void> { return this.sim.esl.shutdown(); }

  connectOutbound(target: { host: string; port: number }, call: OutboundCall): Promise<string> {
    return this.sim.outbound.connect(target, call);
  }
}
