/** EslClient against the team's FreeSWITCH simulator (test/simulator): reconnect + re-subscription end to end. */
import type { EslEvent } from '../../src/esl/event';
import { FreeSwitchSimulator } from '../simulator';
import { makeClient, once, until } from './support/helpers';

describe('EslClient with FreeSwitchSimulator', () => {
  it('reconnects after dropConnections(), re-subscribes, and originates again', async () => {
    const sim = new FreeSwitchSimulator({ timeScale: 0.01 });
    const { port } = await sim.start();
    const client = makeClient(port, { events: ['CHANNEL_ANSWER', 'CHANNEL_PARK'] });
    try {
      await client.start();
      const sub = client.subscription;
      expect(sim.received.filter((c) => c === sub)).toHaveLength(1);
      const disconnected = once(client, 'disconnected');
      const ready = once(client, 'ready');
      sim.dropConnections();
      await disconnected;
      await ready;
      expect(sim.received.filter((c) => c === sub)).toHaveLength(2);

      const uA = '7a1f0d2c-3b4e-4f50-8a6b-7c8d9e0f1a2b';
      const seen: string[] = [];
      client.onChannel(uA, (e: EslEvent) => seen.push(e.name));
      const job = await client.bgapi(`originate {origination_uuid=${uA},origination_caller_id_number=700100000000001}sofia/internal/13800000001@127.0.0.1:5090 &park()`, { timeoutMs: 5000 });
      expect(job).toBe(`+OK ${uA}\n`);
      await until(() => seen.includes('CHANNEL_PARK'));
      expect(seen).toContain('CHANNEL_ANSWER');
      await expect(client.api(`uuid_exists ${uA}`)).resolves.toBe('true');
    } finally {
      await client.stop();
      await sim.stop();
    }
  });
});
