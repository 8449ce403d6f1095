import { EslClient } from '../../src/esl/client';
import type { EslEvent } from '../../src/esl/event';
import { createLogger } from '../../src/logger';
import type { TestSystem } from './system';

/** What the switch said about a channel: its events, as an observer connected to it saw them. */
export class SwitchObserver {
  private readonly events = new Map<string, EslEvent[]>();
  private readonly unsubscribe: Array<() => void> = [];

  private constructor(readonly esl: EslClient) {}

  static async connect(sys: TestSystem): Promise<SwitchObserver> {
    const esl = new EslClient({
      host: sys.env.ESL_HOST!,
      port: Number(sys.env.ESL_PORT),
      password: 'ClueCon',
      events: ['CHANNEL_ANSWER', 'CHANNEL_BRIDGE', 'CHANNEL_HANGUP', 'CHANNEL_HANGUP_COMPLETE'],
      commandTimeoutMs: 5000,
      reconnectMinMs: 50,
      reconnectMaxMs: 500,
      logger: createLogger('silent'),
    });
    await esl.start();
    return new SwitchObserver(esl);
  }

  watch(uuid: string): void {
    this.events.set(uuid, []);
    this.unsubscribe.push(this.esl.onChannel(uuid, (e) => this.events.get(uuid)!.push(e)));
  }

  event(uuid: string, name: string): EslEvent | undefined {
    return this.events.get(uuid)?.find((e) => e.name === name);
  }

  /** The channel's first hangup: its cause and who sent it (recv_bye: the phone's BYE). */
  hangup(uuid: string): { cause: string; disposition: string | undefined; at: number } | undefined {
    const hangup = this.event(uuid, 'CHANNEL_HANGUP');
    const complete = this.event(uuid, 'CHANNEL_HANGUP_COMPLETE');
    if (!hangup || !complete) return undefined;
    return {
      cause: hangup.header('Hangup-Cause')!,
      disposition: complete.variable('sip_hangup_disposition'),
      at: Math.floor(Number(hangup.header('Event-Date-Timestamp')) / 1000),
    };
  }

  /** Epoch ms at which the switch stamped a channel's event. */
  at(uuid: string, name: string): number | undefined {
    const e = this.event(uuid, name);
    return e ? Math.floor(Number(e.header('Event-Date-Timestamp')) / 1000) : undefined;
  }

  billsec(uuid: string): number | undefined {
    const v = this.event(uuid, 'CHANNEL_HANGUP_COMPLETE')?.variable('billsec');
    return v === undefined ? undefined : Number(v);
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribe) u();
    await this.esl.stop();
  }
}
