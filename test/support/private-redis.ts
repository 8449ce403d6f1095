import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { waitUntil } from './wait';

/**
 * A redis-server of a test's own (no persistence), for fault tests that make Redis refuse or stop:
 * the shared Redis other suites and teammates use is never touched.
 */
export interface PrivateRedis {
  readonly url: string;
  /** A plain client for the test's own checks and for faults (CONFIG SET …). */
  readonly admin: Redis;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  const admin = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  await waitUntil('the private redis-server to answer', async () => {
    try {
      if (admin.status !== 'ready') await admin.connect();
      return (await admin.ping()) === 'PONG';
    } catch {
      return false;
    }
  }, 10_000);
  return {
    url,
    admin,
    async stop() {
      admin.disconnect();
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
