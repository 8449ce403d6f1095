import type { RedisClient } from '../stores/redis';
import type { PlatformEvent, PlatformEventBus } from '../events/platform-events';

/**
 * Live call progress for agent consoles: ONE Redis subscriber per controller process, shared by
 * every open console; each tenant's channel is subscribed while at least one of its agents is
 * watching. Events come from whichever instance drives the call.
 */
export class ConsoleHub {
  private readonly watchers = new Map<string, Set<(e: PlatformEvent) => void>>();
  private readonly subscriptions = new Map<string, Promise<() => Promise<void>>>();
  /** A tenant's UNSUBSCRIBE still on its way: a new SUBSCRIBE waits for it, or it would undo it. */
  private readonly unsubscribing = new Map<string, Promise<void>>();

  constructor(
    private readonly events: Pick<PlatformEventBus, 'subscribe'>,
    private readonly subscriber: RedisClient,
  ) {
    // events.subscribe adds one 'message' listener per tenant watched.
    subscriber.setMaxListeners(0);
  }

  /** Calls `listener` with every event of the tenant until the returned function is called. */
  async watch(tenantId: string, listener: (e: PlatformEvent) => void): Promise<() => void> {
    let set = this.watchers.get(tenantId);
    if (!set) {
      const listeners = new Set<(e: PlatformEvent) => void>();
      set = listeners;
      this.watchers.set(tenantId, listeners);
      const previous = this.unsubscribing.get(tenantId) ?? Promise.resolve();
      this.subscriptions.set(
        tenantId,
        previous.then(() => this.events.subscribe(this.subscriber, tenantId, (e) => listeners.forEach((w) => w(e)))),
      );
    }
    const watchers = set;
    watchers.add(listener);
    const stop = (): void => {
      watchers.delete(listener);
      if (watchers.size > 0 || this.watchers.get(tenantId) !== watchers) return;
      this.watchers.delete(tenantId);
      const subscription = this.subscriptions.get(tenantId);
      this.subscriptions.delete(tenantId);
      const done = (subscription ?? Promise.reject(new Error('not subscribed'))).then((off) => off()).catch(() => undefined);
      this.unsubscribing.set(tenantId, done);
      void done.then(() => {
        if (this.unsubscribing.get(tenantId) === done) this.unsubscribing.delete(tenantId);
      });
    };
    try {
      await this.subscriptions.get(tenantId);
    } catch (err) {
      stop();
      throw err;
    }
    return stop;
  }

  async close(): Promise<void> {
    await Promise.all([...this.subscriptions.values()].map((p) => p.then((off) => off()).catch(() => undefined)));
    await Promise.all(this.unsubscribing.values());
    this.watchers.clear();
    this.subscriptions.clear();
    this.unsubscribing.clear();
    await this.subscriber.quit().catch(() => undefined);
  }
}
