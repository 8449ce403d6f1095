import { EslAuthError, EslCommandError, EslDisconnectedError, EslTimeoutError } from '../../src/esl/errors';
import type { EslEvent } from '../../src/esl/event';
import type { EslClient } from '../../src/esl/client';
import { createLogger } from '../../src/logger';
import { backgroundJob, bgapiReply, BYTES, invalidSession, ScriptedEslPeer } from './support/scripted-peer';
import { makeClient, once, shuffle, sleep, until } from './support/helpers';
import { plainEvents, recvWhere } from './support/traces';

describe('EslClient against recorded FreeSWITCH bytes', () => {
  let peer: ScriptedEslPeer;
  let client: EslClient | undefined;

  beforeEach(async () => {
    peer = new ScriptedEslPeer();
    await peer.start();
  });
  afterEach(async () => {
    await client?.stop();
    client = undefined;
    await peer.stop();
  });

  it('authenticates, then sends one narrow plain subscription', async () => {
    client = makeClient(peer.port);
    await client.start();
    expect(client.state).toBe('ready');
    const conn = await peer.connection(0);
    expect(conn.commands.map((c) => c.raw)).toEqual([
      'auth ClueCon\n\n',
      'event plain CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB CHANNEL_EXECUTE_COMPLETE\n\n',
    ]);
    // no modesl auto-subscription (`event json BACKGROUND_JOB CHANNEL_EXECUTE_COMPLETE`)
    expect(peer.received.filter((l) => l.startsWith('event json'))).toEqual([]);
  });

  it('rejects start() with EslAuthError on a wrong password, keeps no socket and does not retry', async () => {
    client = makeClient(peer.port, { password: 'WrongPassword' });
    const closed = peer.connection(0).then((c) => once(c.socket, 'close'));
    await expect(client.start()).rejects.toBeInstanceOf(EslAuthError);
    expect(client.state).toBe('stopped');
    await closed;
    // Proving that nothing happens takes time: five times the 20 ms reconnect delay, and a retry would have connected.
    await sleep(100);
    expect(peer.connections).toHaveLength(1);
    expect((await peer.connection(0)).commands.map((c) => c.line)).toEqual(['auth WrongPassword']);
  });

  it('matches 50 concurrent api() results to their own command although the jobs complete shuffled', async () => {
    peer.autoJobs = false;
    client = makeClient(peer.port);
    await client.start();
    const conn = await peer.connection(0);
    const results = Array.from({ length: 50 }, (_, i) => client!.api(`uuid_exists id-${i}`));
    await until(() => conn.commands.filter((c) => c.line.startsWith('bgapi')).length === 50);
    const jobs = conn.commands.filter((c) => c.line.startsWith('bgapi'));
    for (const j of jobs) conn.write(bgapiReply(j.headers['Job-UUID'] as string));
    for (const j of shuffle(jobs)) {
      const arg = j.line.split(' ')[2] as string;
      conn.write(backgroundJob(j.headers['Job-UUID'] as string, j.line.slice(6), `result for ${arg}`));
    }
    expect(await Promise.all(results)).toEqual(Array.from({ length: 50 }, (_, i) => `result for id-${i}`));
    // each command carried its own Job-UUID
    expect(new Set(jobs.map((j) => j.headers['Job-UUID'])).size).toBe(50);
  });

  it('returns -ERR job results instead of throwing, and passes a caller-chosen Job-UUID', async () => {
    peer.jobBody = (cmd) => (cmd.startsWith('uuid_kill') ? '-ERR No such channel!\n' : 'false');
    client = makeClient(peer.port);
    await client.start();
    await expect(client.api('uuid_kill 6f1d3c5e-0000-4000-8000-000000000000')).resolves.toBe('-ERR No such channel!\n');
    const jobUuid = '0b9c8f7e-1111-4222-8333-444455556666';
    await expect(client.bgapi('uuid_exists abc', { jobUuid })).resolves.toBe('false');
    const cmd = (await peer.connection(0)).commands.find((c) => c.line === 'bgapi uuid_exists abc');
    expect(cmd?.raw).toBe(`bgapi uuid_exists abc\nJob-UUID: ${jobUuid}\n\n`);
  });

  it('runs a quick api as `api` (no Job-UUID, no BACKGROUND_JOB), and a timed-out one’s late reply answers no later command', async () => {
    peer.jobBody = (cmd) => (cmd.startsWith('hash select') ? 'kept|figures\n' : '+OK\n');
    client = makeClient(peer.port);
    await client.start();
    const conn = await peer.connection(0);
    await expect(client.api('hash select/numguard_handover/abc', { quick: true })).resolves.toBe('kept|figures\n');
    const sent = conn.commands.find((c) => c.line === 'api hash select/numguard_handover/abc');
    expect(sent?.raw).toBe('api hash select/numguard_handover/abc\n\n');
    expect(conn.commands.some((c) => c.line.startsWith('bgapi'))).toBe(false);

    // FreeSWITCH answers api commands in order: the first one's reply comes after it timed out, then the second's.
    peer.handler = (cmd) => cmd.line === 'api hash delete/numguard_handover/slow';
    await expect(client.api('hash delete/numguard_handover/slow', { quick: true, timeoutMs: 30 })).rejects.toBeInstanceOf(EslTimeoutError);
    peer.handler = (cmd) => {
      if (cmd.line !== 'api hash select/numguard_handover/next') return false;
      for (const body of ['-ERR late\n', 'next|figures\n']) conn.write(`Content-Type: api/response\nContent-Length: ${Buffer.byteLength(body)}\n\n${body}`);
      return true;
    };
    await expect(client.api('hash select/numguard_handover/next', { quick: true })).resolves.toBe('next|figures\n');
  });

  it('times out a command with EslTimeoutError, and its late reply reaches nobody else', async () => {
    peer.autoJobs = false;
    client = makeClient(peer.port);
    await client.start();
    const conn = await peer.connection(0);
    let slowJob = '';
    peer.handler = (cmd) => {
      if (cmd.line === 'bgapi slow_cmd') {
        slowJob = cmd.headers['Job-UUID'] as string; // no reply at all for now
        return true;
      }
      return false;
    };
    await expect(client.api('slow_cmd', { timeoutMs: 50 })).rejects.toBeInstanceOf(EslTimeoutError);
    const fast = client.api('fast_cmd');
    const fastCmd = await conn.waitFor((c) => c.line === 'bgapi fast_cmd');
    const fastJob = fastCmd.headers['Job-UUID'] as string;
    // FreeSWITCH finally answers the slow command: its reply and its job come first.
    conn.write(bgapiReply(slowJob));
    conn.write(bgapiReply(fastJob));
    conn.write(backgroundJob(slowJob, 'slow_cmd', 'SLOW RESULT\n'));
    conn.write(backgroundJob(fastJob, 'fast_cmd', 'FAST RESULT\n'));
    await expect(fast).resolves.toBe('FAST RESULT\n');
  });

  it('a command that never gets even its command/reply times out and does not shift later replies', async () => {
    client = makeClient(peer.port);
    await client.start();
    const conn = await peer.connection(0);
    const held: string[] = [];
    peer.handler = (cmd) => {
      if (cmd.line === 'bgapi held_cmd') {
        held.push(cmd.headers['Job-UUID'] as string);
        return true;
      }
      return false;
    };
    await expect(client.api('held_cmd', { timeoutMs: 30 })).rejects.toBeInstanceOf(EslTimeoutError);
    peer.handler = (cmd) => {
      if (cmd.line === 'sendmsg 2b14e048-7cfe-4a14-8fc0-50c49f35228e') {
        conn.write(bgapiReply(held[0] as string)); // the late reply of the held command arrives first
        conn.write(invalidSession('2b14e048-7cfe-4a14-8fc0-50c49f35228e'));
        return true;
      }
      return false;
    };
    // if the late +OK were matched to this sendmsg, it would resolve instead of rejecting
    await expect(client.execute('2b14e048-7cfe-4a14-8fc0-50c49f35228e', 'hangup', 'USER_BUSY')).rejects.toBeInstanceOf(EslCommandError);
  });

  it('rejects pending commands when the socket drops, reconnects with backoff and re-subscribes', async () => {
    peer.autoJobs = false;
    client = makeClient(peer.port, { reconnectMinMs: 20, reconnectMaxMs: 1000 });
    await client.start();
    const first = await peer.connection(0);
    const pending = client.api('status');
    await first.waitFor((c) => c.line === 'bgapi status');
    const disconnected = once(client, 'disconnected');
    // the next three connections fail right after accept: the gaps between them must grow
    const acceptedAt: number[] = [];
    let failing = 3;
    peer.handler = (cmd, conn) => {
      if (cmd.line.startsWith('auth') && failing > 0) {
        failing--;
        acceptedAt.push(Date.now());
        conn.socket.destroy();
        return true;
      }
      return false;
    };
    const readyAgain = once(client, 'ready');
    const droppedAt = Date.now();
    first.socket.destroy();
    await expect(pending).rejects.toBeInstanceOf(EslDisconnectedError);
    await disconnected;
    expect(client.state).not.toBe('ready');
    await expect(client.api('status')).rejects.toBeInstanceOf(EslDisconnectedError);
    await readyAgain;
    expect(client.state).toBe('ready');
    expect(peer.connections).toHaveLength(5);
    const gaps = [acceptedAt[0]! - droppedAt, acceptedAt[1]! - acceptedAt[0]!, acceptedAt[2]! - acceptedAt[1]!];
    expect(gaps[0]).toBeGreaterThanOrEqual(15);
    expect(gaps[2]).toBeGreaterThanOrEqual(40 - 5); // attempt 2: 40..80 ms
    expect(gaps[2]).toBeGreaterThan(gaps[0]!);
    const last = await peer.connection(4);
    expect(last.commands.map((c) => c.raw)).toEqual([
      'auth ClueCon\n\n',
      'event plain CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB CHANNEL_EXECUTE_COMPLETE\n\n',
    ]);
    // and it works again
    peer.autoJobs = true;
    await expect(client.api('status')).resolves.toBe('+OK\n');
  });

  it('reconnects after the 15c shutdown notice (FreeSWITCH closes without +OK bye)', async () => {
    client = makeClient(peer.port);
    await client.start();
    const conn = await peer.connection(0);
    const disconnected = once(client, 'disconnected');
    const ready = once(client, 'ready');
    conn.write(BYTES.shutdown);
    conn.socket.end();
    await disconnected;
    await ready;
    expect(peer.connections.length).toBeGreaterThanOrEqual(2);
    expect((await peer.connection(1)).commands.map((c) => c.line)[1]).toMatch(/^event plain /);
  });

  it('keeps trying while FreeSWITCH refuses connections (restart) and gets ready when it is back', async () => {
    // The client logs each refused attempt as it ends (state back to disconnected, next attempt not yet begun).
    let refused = 0;
    let onRefused = (): void => undefined;
    const logger = createLogger('warn', {
      write(line: string) {
        if (!line.includes('esl connect attempt failed')) return;
        refused += 1;
        onRefused();
      },
    });
    client = makeClient(peer.port, { logger });
    await client.start();
    const port = peer.port;
    const refusedTwice = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the client did not try again while refused')), 3000);
      onRefused = () => {
        if (refused < 2) return;
        clearTimeout(timer);
        resolve();
      };
    });
    await peer.stop(); // drop + refuse
    await once(client, 'disconnected');
    // Tried, refused, and tried again: checked as the second refusal ends, before the next attempt starts.
    await refusedTwice;
    expect(client.state).toBe('disconnected');
    peer = new ScriptedEslPeer();
    const ready = once(client, 'ready');
    await peer.start(port);
    await ready;
    expect(client.state).toBe('ready');
  });

  it('execute() with awaitCompletion resolves on the EXECUTE_COMPLETE whose Application-UUID is ours', async () => {
    client = makeClient(peer.port);
    await client.start();
    const conn = await peer.connection(0);
    const uA = '2b14e048-7cfe-4a14-8fc0-50c49f35228e';
    const eventUuid = 'cf9373dd-4720-4303-a559-3f5f7275d46e'; // the Event-UUID 09b sent with its bridge
    const complete = (app: string): string =>
      recvWhere('09b', (r) => r.includes('Event-Name: CHANNEL_EXECUTE_COMPLETE') && r.includes(`\nApplication: ${app}\n`));
    peer.handler = (cmd) => {
      if (cmd.line !== `sendmsg ${uA}`) return false;
      conn.write(BYTES.sendmsgOk);
      conn.write(complete('playback')); // another app's completion on the same channel: not ours
      setTimeout(() => conn.write(complete('bridge')), 20);
      return true;
    };
    const arg = '{origination_uuid=bfb32a7a-9e75-4007-b174-a3efc49bd5bd,origination_caller_id_number=700100000000001,origination_caller_id_name=700100000000001,leg_timeout=20}sofia/internal/13900000002@127.0.0.1:5091';
    const done = await client.execute(uA, 'bridge', arg, { eventUuid, awaitCompletion: true });
    expect(done?.name).toBe('CHANNEL_EXECUTE_COMPLETE');
    expect(done?.header('Application')).toBe('bridge');
    expect(done?.header('Application-UUID')).toBe(eventUuid);
    expect(done?.variable('originate_disposition')).toBe('USER_BUSY');
    // exactly the bytes 09b sent
    expect(conn.commands.find((c) => c.line.startsWith('sendmsg'))?.raw).toBe(
      `sendmsg ${uA}\ncall-command: execute\nexecute-app-name: bridge\nexecute-app-arg: ${arg}\nEvent-UUID: ${eventUuid}\n\n`,
    );
  });

  it('execute() without awaitCompletion resolves on +OK; -ERR invalid session id rejects with EslCommandError', async () => {
    client = makeClient(peer.port);
    await client.start();
    const conn = await peer.connection(0);
    await expect(client.execute('2b14e048-7cfe-4a14-8fc0-50c49f35228e', 'playback', 'tone_stream://%(500,500,480,620);loops=1')).resolves.toBeUndefined();
    peer.handler = (cmd) => {
      if (!cmd.line.startsWith('sendmsg')) return false;
      conn.write(invalidSession(cmd.line.split(' ')[1] as string));
      return true;
    };
    const err = await client.execute('9f1e0c1d-0000-4000-8000-000000000001', 'hangup', 'USER_BUSY', { awaitCompletion: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EslCommandError);
    expect((err as EslCommandError).reply).toBe('-ERR invalid session id [9f1e0c1d-0000-4000-8000-000000000001]');
  });

  it('refuses command text with a newline (it would inject a second command)', async () => {
    client = makeClient(peer.port);
    await client.start();
    await expect(client.api('status\n\napi fsctl shutdown')).rejects.toThrow(/newline/);
  });

  it('emits recorded plain events as EslEvents and routes them per channel uuid', async () => {
    client = makeClient(peer.port);
    await client.start();
    const conn = await peer.connection(0);
    const raws = plainEvents('04');
    const uA = /\nUnique-ID: ([0-9a-f-]+)\n/.exec(raws[0] as string)?.[1] as string; // A's CHANNEL_CREATE
    const all: EslEvent[] = [];
    const forA: string[] = [];
    client.on('event', (e: EslEvent) => all.push(e));
    const off = client.onChannel(uA, (e) => forA.push(e.name));
    conn.write(raws.join(''));
    await until(() => all.length === raws.length);
    expect(all.map((e) => e.name)).toEqual(raws.map((r) => /Event-Name: (\w+)/.exec(r)?.[1]));
    expect(forA.length).toBeGreaterThan(0);
    expect(forA.length).toBe(all.filter((e) => e.uuid === uA).length);
    expect(forA).toContain('CHANNEL_BRIDGE');
    off();
    conn.write(raws[0] as string);
    await until(() => all.length === raws.length + 1);
    expect(forA.length).toBe(all.filter((e) => e.uuid === uA).length - (all.at(-1)?.uuid === uA ? 1 : 0));
  });

  it('stop() sends exit, rejects pending commands and does not reconnect', async () => {
    peer.autoJobs = false;
    client = makeClient(peer.port);
    await client.start();
    const conn = await peer.connection(0);
    const pending = client.api('status');
    await conn.waitFor((c) => c.line === 'bgapi status');
    await client.stop();
    await expect(pending).rejects.toBeInstanceOf(EslDisconnectedError);
    expect(client.state).toBe('stopped');
    expect(conn.commands.at(-1)?.raw).toBe('exit\n\n');
    // Proving that nothing happens takes time: four times the 20 ms reconnect delay, and a reconnect would have arrived.
    await sleep(80);
    expect(peer.connections).toHaveLength(1);
  });
});
