import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';
import { waitUntil } from './wait';

/**
 * A redis-server of a test's own, on a free port, without persistence: fault tests pause it,
 * restart it empty or stop it without touching the Redis every other test (and teammate) shares.
 */
export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** A plain connection to it, for the test's own commands (CLIENT PAUSE, FLUSHALL, …). */
  readonly admin: Redis;
  /** Stops the server (SIGKILL: keys lost) and starts a new, empty one on the same port. */
  restartEmpty(): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function startServer(port: number): ChildProcess {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  child.unref();
  return child;
}

/** Whether a redis-server on this loopback port answers PING. */
export async function redisAnswers(port: number): Promise<boolean> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

async function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child = startServer(port);
  await waitUntil(`private redis-server on port ${port}`, () => redisAnswers(port));
  const admin = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: null });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    admin,
    async restartEmpty() {
      await stopped(child);
      child = startServer(port);
      await waitUntil(`private redis-server restarted on port ${port}`, () => redisAnswers(port));
    },
    async stop() {
      admin.disconnect();
      await stopped(child);
    },
  };
}
