/**
 * The state the simulator's parts share, its clock, and the parts themselves: the ESL protocol side (`esl`), event
 * rendering (`events`), the call flows (`calls`) and the outbound socket (`outbound`). Each part reaches the others
 * through this object.
 */
import { randomUUID } from 'crypto';
import { CallFlows } from './calls';
import { Channel, nowUs } from './channel';
import { Conn, EslProtocol } from './esl';
import { EventRenderer } from './events';
import { SimMessages } from './messages';
import { OutboundSocket } from './outbound';
import type { PhoneBehaviour, SeenByCaller, SeenInvite } from './types';

export class SimContext {
  /** Every command line received on any socket; and every message whole: headers and body. */
  readonly received: string[] = [];
  readonly receivedRaw: string[] = [];
  readonly conns = new Set<Conn>();
  readonly chans = new Map<string, Channel>();
  readonly phones = new Map<string, PhoneBehaviour>();
  readonly invites = new Map<string, SeenInvite[]>();
  readonly callerMessages = new Map<string, SeenByCaller[]>();
  /** The events sent on each call to X's outbound socket, by the channel's uuid: their names, in order. */
  readonly socketEvents = new Map<string, string[]>();
  readonly originates = new Map<string, number>();
  originateTotal = 0;
  seq = 1000;
  sessionsSinceStartup = 0;
  readonly startedAt = Date.now();
  /** mod_hash: `hash insert|select|delete/<realm>/<key>[/<value>]`. */
  readonly hashes = new Map<string, string>();
  /** What `sched_broadcast` played, when it fired: to which channel (and its phone's number), what. */
  readonly broadcasts: Array<{ readonly uuid: string; readonly number: string; readonly path: string; readonly at: number }> = [];
  /** This switch's identity, as every event's Core-UUID and `global_getvar core_uuid` give it. */
  readonly coreUuid = randomUUID();
  /** See FreeSwitchSimulator.onCommand. */
  commandHook: ((raw: string) => void | Promise<void>) | undefined;

  readonly esl = new EslProtocol(this);
  readonly events = new EventRenderer(this);
  readonly calls = new CallFlows(this);
  readonly outbound = new OutboundSocket(this);
  readonly messages = new SimMessages(this);

  constructor(readonly password: string, readonly scale: number) {}

  now(): number { return this.dueUs ?? nowUs(); }
  sleep(ms: number): Promise<void> { const t = ms * this.scale; return new Promise((r) => (t < 1 ? setImmediate(r) : setTimeout(r, t))); }
  /**
   * Inside a timer's callback the clock reads the time the timer was due, not the time it fired: a phone scripted to hang
   * up 2 s after answering gives billsec 2 however late a loaded host runs the timer (time is scaled, so lag is magnified).
   */
  private dueUs: number | undefined;
  timer(ch: Channel, ms: number, fn: () => void): void {
    const dueUs = this.now() + ms * this.scale * 1000;
    const t = setTimeout(() => {
      ch.timers = ch.timers.filter((x) => x !== t);
      this.dueUs = dueUs;
      try { fn(); } finally { this.dueUs = undefined; }
    }, ms * this.scale);
    ch.timers.push(t);
  }
}
