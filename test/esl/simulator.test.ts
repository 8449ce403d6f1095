/** EslClient against the team's FreeSWITCH simulator (test/simulator): reconnect + re-subscription end to end. */
import type { EslEvent } from '../../src/esl/event';
import { FreeSwitchSimulator } from '../simulator';
import { passesFilters } from '../simulator/esl';
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

describe('ESL filters (EslClient and the simulator, applied as mod_event_socket does)', () => {
  it('sends its filters after the subscription (BACKGROUND_JOB first) and then gets only the events they admit', async () => {
    const sim = new FreeSwitchSimulator({ timeScale: 0.01 });
    const { port } = await sim.start();
    const client = makeClient(port, { events: ['CHANNEL_ANSWER', 'CHANNEL_HANGUP_COMPLETE'], filters: [['variable_ng_call_id', '/./']] });
    try {
      await client.start();
      expect(sim.received.slice(sim.received.indexOf(client.subscription) + 1, sim.received.indexOf(client.subscription) + 3)).toEqual([
        'filter Event-Name BACKGROUND_JOB',
        'filter variable_ng_call_id /./',
      ]);
      const ours = '1b2c3d4e-0000-4000-8000-000000000001';
      const other = '1b2c3d4e-0000-4000-8000-000000000002';
      const names: string[] = [];
      client.on('event', (e: EslEvent) => names.push(`${e.uuid === ours ? 'ours' : e.uuid === other ? 'other' : '-'} ${e.name}`));
      sim.setPhone('13800000001', { answer: 'answer', hangupAfterMs: 50 });
      sim.setPhone('13800000002', { answer: 'answer', hangupAfterMs: 50 });
      // the BACKGROUND_JOB of each api() still comes (it carries no channel)
      await client.bgapi(`originate {origination_uuid=${other}}sofia/internal/13800000002@127.0.0.1:5090 &park()`, { timeoutMs: 5000 });
      await client.bgapi(`originate {origination_uuid=${ours},ng_call_id=c1}sofia/internal/13800000001@127.0.0.1:5090 &park()`, { timeoutMs: 5000 });
      await until(() => names.includes('ours CHANNEL_HANGUP_COMPLETE'));
      // the other call has ended too (its events, had any passed, would have come before ours)
      await until(() => !sim.channels().some((c) => c.uuid === other));
      const channelEvents = names.filter((n) => !n.endsWith('BACKGROUND_JOB'));
      expect(channelEvents).toEqual(expect.arrayContaining(['ours CHANNEL_ANSWER', 'ours CHANNEL_HANGUP_COMPLETE']));
      expect(channelEvents.filter((n) => !n.startsWith('ours '))).toEqual([]);
    } finally {
      await client.stop();
      await sim.stop();
    }
  });

  it('passesFilters: positive filters admit (any one), a matching negative one drops, /regex/ and case-insensitive values', () => {
    const ev = (h: Record<string, string>) => ({ get: (n: string) => h[n] });
    const call = ev({ 'Event-Name': 'CHANNEL_ANSWER', variable_ng_call_id: 'c1', Application: 'set' });
    expect(passesFilters([], call)).toBe(false);
    expect(passesFilters([['variable_ng_call_id', '/./']], call)).toBe(true);
    expect(passesFilters([['variable_ng_call_id', '/^x/']], call)).toBe(false);
    expect(passesFilters([['Event-Name', 'channel_answer']], call)).toBe(true);
    // a filter on a header the event does not carry says nothing
    expect(passesFilters([['Job-UUID', '/./']], call)).toBe(false);
    // negative filters drop whatever admitted the event before, in any order
    expect(passesFilters([['variable_ng_call_id', '/./'], ['Application', '-set']], call)).toBe(false);
    expect(passesFilters([['Application', '-set'], ['variable_ng_call_id', '/./']], call)).toBe(false);
    expect(passesFilters([['Application', '-bridge'], ['variable_ng_call_id', '/./']], call)).toBe(true);
    // `-/regex/` is not a regex in mod_event_socket (the leading / is tested on the raw value)
    expect(passesFilters([['variable_ng_call_id', '/./'], ['Application', '-/s.t/']], call)).toBe(true);
  });

  it('refuses a filter it could not send as one command', () => {
    expect(() => makeClient(1, { filters: [['Event Name', 'X']] })).toThrow(/filter/);
    expect(() => makeClient(1, { filters: [['Event-Name', 'A\nB']] })).toThrow();
  });
});
