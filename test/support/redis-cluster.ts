import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { redisAnswers } from './private-redis';
import { waitUntil } from './wait';

/**
 * A real Redis Cluster of a test's own: three masters (no replicas) on loopback ports, started with
 * `redis-server --cluster-enabled yes` and joined with `redis-cli --cluster create`, without
 * persistence, in a temporary directory that is removed when it stops.
 */
export interface TestRedisCluster {
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  /** REDIS_CLUSTER_NODES for a controller process. */
  readonly nodesEnv: string;
  stop(): Promise<void>;
}

/** Why a cluster cannot be started here (redis-server or redis-cli missing), or null when it can. */
export function redisClusterUnavailable(): string | null {
  for (const tool of ['redis-server', 'redis-cli']) {
    const probe = spawnSync(tool, ['--version'], { stdio: 'ignore' });
    if (probe.error || probe.status !== 0) return `${tool} is not installed`;
  }
  return null;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port whose cluster bus port (port + 10000) is free too. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 25_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await portFree(port)) && (await portFree(port + 10_000))) {
      taken.add(port);
      taken.add(port + 10_000);
      return port;
    }
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

async function clusterOk(port: number): Promise<boolean> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await probe.connect();
    const info = String(await probe.call('CLUSTER', 'INFO'));
    return info.includes('cluster_state:ok') && info.includes('cluster_slots_assigned:16384');
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export async function startRedisCluster(masters = 3): Promise<TestRedisCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ng-redis-cluster-'));
  const taken = new Set<number>();
  const ports: number[] = [];
  for (let i = 0; i < masters; i++) ports.push(await clusterPort(taken));
  const children: ChildProcess[] = ports.map((port) => {
    const child = spawn(
      'redis-server',
      [
        '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
        '--cluster-config-file', path.join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '5000',
        '--save', '', '--appendonly', 'no', '--dir', dir,
      ],
      { stdio: 'ignore' },
    );
    child.unref();
    return child;
  });
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) {
              resolve();
              return;
            }
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) await waitUntil(`cluster node on port ${port}`, () => redisAnswers(port));
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    for (const port of ports) await waitUntil(`cluster_state:ok on port ${port}`, () => clusterOk(port), 30_000, 100);
  } catch (err) {
    await stop();
    throw err;
  }
  const nodes = ports.map((port) => ({ host: '127.0.0.1', port }));
  return { nodes, nodesEnv: nodes.map((n) => `${n.host}:${n.port}`).join(','), stop };
}
