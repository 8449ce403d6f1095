import type { PlatformEvent } from '../../src/events/platform-events';
import { createRedis } from '../../src/stores/redis';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';

describe('platform events: what webhooks and the agent console are fed', () => {
  let sys: TestSystem;
  beforeAll(async () => {
    sys = await startTestSystem();
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('a connected click-to-dial call reports calling, answered, bridged and completed in order, once each', async () => {
    const seen: PlatformEvent[] = [];
    const off = sys.app.events.onLocal((e) => {
      seen.push(e);
    });
    const subscriber = createRedis('redis://127.0.0.1:6379');
    const published: PlatformEvent[] = [];
    const unsubscribe = await sys.app.events.subscribe(subscriber, sys.tenantId, (e) => published.push(e));
    try {
      const a = '13800031001';
      const b = '13900031001';
      sys.sim.setPhone(a, { answer: 'answer' });
      sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 400 });
      const call = await sys.placeCall({ requestId: 'events-1', a, b });
      await sys.waitForCall(call.id);
      // call.completed is the last event of a call: wait until it is here and has come through Redis too.
      const completedIn = (events: PlatformEvent[]) => events.some((e) => e.callId === call.id && e.type === 'call.completed');
      await waitUntil('call.completed, locally and through Redis', () => completedIn(seen) && completedIn(published));
      const mine = seen.filter((e) => e.callId === call.id);
      const steps = mine.map((e) => `${e.type}${e.leg ? `:${e.leg}` : ''}`).filter((s) => !s.startsWith('call.ringing'));
      expect(steps).toEqual(['call.calling:a', 'call.answered:a', 'call.calling:b', 'call.answered:b', 'call.bridged', 'call.completed']);
      expect(new Set(mine.map((e) => e.id)).size).toBe(mine.length);
      const completed = mine.find((e) => e.type === 'call.completed')!;
      expect(completed.cdr).toMatchObject({ callId: call.id, result: 'connected', a, b });
      expect(mine.every((e) => e.tenantId === sys.tenantId)).toBe(true);
      // The same events reach a subscriber on another connection (another instance's console).
      expect(published.filter((e) => e.callId === call.id).map((e) => e.id)).toEqual(mine.map((e) => e.id));
    } finally {
      off();
      await unsubscribe();
      await subscriber.quit();
    }
  });

  it('a busy A reports calling and completed with the busy result, and no bridge', async () => {
    const seen: PlatformEvent[] = [];
    const off = sys.app.events.onLocal((e) => {
      seen.push(e);
    });
    try {
      const a = '13800031002';
      sys.sim.setPhone(a, { answer: 'busy' });
      const call = await sys.placeCall({ requestId: 'events-2', a, b: '13900031002' });
      await sys.waitForCall(call.id);
      const types = seen.filter((e) => e.callId === call.id).map((e) => e.type);
      expect(types).not.toContain('call.bridged');
      expect(types[0]).toBe('call.calling');
      expect(types[types.length - 1]).toBe('call.completed');
      expect(seen.find((e) => e.type === 'call.completed' && e.callId === call.id)!.cdr!.result).toBe('a_busy');
    } finally {
      off();
    }
  });
});
