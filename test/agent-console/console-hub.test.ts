import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ConsoleHub } from '../../src/agent-console/console-hub';
import { PlatformEventBus, type PlatformEvent } from '../../src/events/platform-events';
import { createRedis } from '../../src/stores/redis';
import { createTestRedis, type TestRedis } from '../support/redis';

describe('console hub: one Redis subscriber shared by every open console', () => {
  let redis: TestRedis;
  let subscriber: Redis;
  let bus: PlatformEventBus;
  let hub: ConsoleHub;

  beforeEach(async () => {
    redis = await createTestRedis();
    subscriber = createRedis(redis.url);
    bus = new PlatformEventBus(redis.redis, redis.prefix, (err) => {
      throw err;
    });
    hub = new ConsoleHub(bus, subscriber);
  });
  afterEach(async () => {
    await hub.close();
    await redis.cleanup();
  });

  /** Resolves with the next event `watch` hands to a listener. */
  function nextEvent(): { listener: (e: PlatformEvent) => void; received: Promise<PlatformEvent> } {
    let resolve: (e: PlatformEvent) => void = () => undefined;
    const received = new Promise<PlatformEvent>((r) => (resolve = r));
    return { listener: (e) => resolve(e), received };
  }

  const report = (tenantId: string, callId: string): void =>
    bus.report({ type: 'call.calling', tenantId, callId, leg: 'a', at: Date.now() });

  it("gives each console its tenant's events only, over one connection", async () => {
    const [t1, t2] = [randomUUID(), randomUUID()];
    const seen1: PlatformEvent[] = [];
    const seen2: PlatformEvent[] = [];
    const last1 = nextEvent();
    const last2 = nextEvent();
    await hub.watch(t1, (e) => {
      seen1.push(e);
      if (e.callId === 'end') last1.listener(e);
    });
    await hub.watch(t2, (e) => {
      seen2.push(e);
      if (e.callId === 'end') last2.listener(e);
    });
    report(t1, 'c1');
    report(t2, 'c2');
    report(t1, 'end');
    report(t2, 'end');
    await Promise.all([last1.received, last2.received]);
    expect(seen1.map((e) => [e.tenantId, e.callId])).toEqual([
      [t1, 'c1'],
      [t1, 'end'],
    ]);
    expect(seen2.map((e) => [e.tenantId, e.callId])).toEqual([
      [t2, 'c2'],
      [t2, 'end'],
    ]);
  });

  it('a console opened right as the last one of its tenant closes still gets events (reload)', async () => {
    const tenantId = randomUUID();
    const stopFirst = await hub.watch(tenantId, () => undefined);
    stopFirst(); // the tenant's channel is unsubscribed...
    const second = nextEvent();
    const stopSecond = await hub.watch(tenantId, second.listener); // ...and at once subscribed again
    report(tenantId, 'after-reload');
    expect((await second.received).callId).toBe('after-reload');

    // One console left of two: it keeps getting events.
    const third = nextEvent();
    const stopThird = await hub.watch(tenantId, third.listener);
    stopSecond();
    report(tenantId, 'still-open');
    expect((await third.received).callId).toBe('still-open');
    stopThird();
  });

  it('close() ends the subscriber connection', async () => {
    await hub.watch(randomUUID(), () => undefined);
    const ended = new Promise((r) => subscriber.once('end', r));
    await hub.close();
    await ended;
    expect(subscriber.status).toBe('end');
  });
});
