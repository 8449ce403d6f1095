/**
 * Binding creation through the HTTP API with real MySQL and Redis (goal >= 5,000 bindings/s,
 * p99 <= 20 ms), and pool efficiency: distinct X used against Δ (the largest number of
 * concurrent bindings any one number holds) for several workloads.
 */
import { randomBytes } from 'node:crypto';
import { startApp } from '../src/app';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { TenantStore } from '../src/stores/tenant-store';
import { dropDatabase, testDatabaseUrl } from '../test/support/mysql';
import { deletePrefixKeys } from '../test/support/redis';
import { createRedis } from '../src/stores/redis';
import { RemoteSimulator } from './support/remote-simulator';
import { postFromWorker } from './support/http-load';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function run(): Promise<Record<string, unknown>> {
  const sim = await RemoteSimulator.start(0);
  const dbName = `ng_bench_${randomBytes(6).toString('hex')}`;
  const prefix = `ngbench${randomBytes(4).toString('hex')}`;
  const app = await startApp(
    loadConfig({
      ESL_HOST: sim.address.host,
      ESL_PORT: String(sim.address.port),
      ESL_PASSWORD: 'ClueCon',
      MYSQL_URL: testDatabaseUrl(dbName),
      REDIS_PREFIX: prefix,
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      OUTBOUND_SOCKET_PORT: '0',
      LOG_LEVEL: 'error',
      // Measures the registry, not abuse control: the star workload binds one number 150 times.
      BINDINGS_PER_NUMBER_PER_HOUR: '0',
      TENANT_REQUESTS_PER_SECOND: '0',
    }),
    createLogger('error'),
    { workers: false },
  );
  const tenants = new TenantStore(app.pool);
  const tenant = await tenants.create({ name: 'bench' });
  const { key } = await tenants.createApiKey(tenant.id, 'bench');
  const addr = app.http.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const post = async (path: string, body: unknown): Promise<number> => {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    await res.arrayBuffer();
    return res.status;
  };
  await post('/v1/pool/numbers', { block: '70010000000', area: '010' });

  // Creation: disjoint pairs with allocated X, `concurrency` requests in flight from a client thread.
  const total = Number(process.env.BENCH_BINDINGS ?? 4000);
  const concurrency = 32;
  const load = await postFromWorker(
    url,
    { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    Array.from({ length: total }, (_, i) => ({
      path: '/v1/bindings',
      body: { mode: 'axb', a: `138${String(i).padStart(8, '0')}`, b: `139${String(i).padStart(8, '0')}` },
    })),
    concurrency,
  );
  const elapsed = load.elapsedMs;
  const failures = load.statuses.filter((s) => s !== 201).length;
  const latencies = [...load.latenciesMs].sort((a, b) => a - b);

  // Efficiency: first-fit on workloads with different degree skews (through the registry).
  const efficiency: Array<Record<string, number | string>> = [];
  for (const [name, pairs, hot, people] of [
    ['uniform', 2000, 2000, 2000],
    ['skewed (5 hot numbers)', 2000, 5, 4000],
    ['star (1 number, 150 partners)', 150, 1, 150],
  ] as const) {
    const degree = new Map<string, number>();
    const used = new Set<string>();
    let s = 7;
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const seen = new Set<string>();
    let made = 0;
    while (made < pairs) {
      const a = `1370${String(Math.floor(rnd() * hot)).padStart(7, '0')}`;
      const b = `1360${String(efficiency.length * 100_000 + Math.floor(rnd() * people)).padStart(7, '0')}`;
      if (seen.has(`${a}${b}`)) continue;
      seen.add(`${a}${b}`);
      const { binding } = await app.bindings.bind({ tenantId: tenant.id, mode: 'axb', a, b, userData: name });
      used.add(binding.x);
      for (const n of [a, b]) degree.set(n, (degree.get(n) ?? 0) + 1);
      made++;
    }
    const delta = Math.max(...degree.values());
    efficiency.push({ workload: name, pairs, delta, distinctX: used.size, deltaPlusOne: delta + 1, pairsOver200: Math.ceil(pairs / 200) });
  }

  await app.stop();
  await sim.stop();
  await dropDatabase(dbName);
  const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await deletePrefixKeys(redis, prefix);
  await redis.quit();
  return {
    creationViaHttp: {
      bindings: total,
      concurrency,
      client: 'a worker thread (undici), so the clients do not share the controller\'s event loop',
      failures,
      bindingsPerSecond: Math.round((total / elapsed) * 1000),
      p50Ms: Number(percentile(latencies, 50).toFixed(2)),
      p99Ms: Number(percentile(latencies, 99).toFixed(2)),
      goal: '>= 5000/s, p99 <= 20 ms',
    },
    poolEfficiency: efficiency,
  };
}

if (require.main === module) {
  run().then(
    (r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
}
