/**
 * Binding creation through the HTTP API with real MySQL and Redis (goal >= 5,000 bindings/s
 * sustained 60 s, p99 <= 20 ms, >= 0.5 of the floor), and pool efficiency: distinct X used
 * against Δ (the largest number of concurrent bindings any one number holds) for several
 * workloads, and churn (bindings arriving and expiring over simulated hours in several areas).
 * The floor (durable single-row INSERTs/s from 64 connections) is measured in the same run, and
 * bindings/s is given as a share of it.
 *
 * Creation: short runs at several concurrencies (BENCH_CONCURRENCY, default 16,32,64,128;
 * BENCH_SWEEP_SECONDS each, default 5), then the sustained run (BENCH_SUSTAINED_SECONDS, default
 * 60) at the concurrency that reached the most bindings/s with p99 <= 20 ms (or the most
 * bindings/s). Each run gives CPU ms per binding of the controller, MariaDB, Redis and the client,
 * which the machine's other load changes less than the rates. BENCH_ECONOMY=0 skips the pool
 * economy workloads; BENCH_FLOOR_SECONDS (default 10) sets the floor's length.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import os from 'node:os';
import type { RowDataPacket } from 'mysql2/promise';
import { startApp, type App } from '../src/app';
import { loadConfig } from '../src/config';
import { benchLogger } from './support/bench-logger';
import { TenantStore } from '../src/stores/tenant-store';
import { dropDatabase, testDatabaseUrl } from '../test/support/mysql';
import { deletePrefixKeys } from '../test/support/redis';
import { createRedis } from '../src/stores/redis';
import { createPool } from 'mysql2/promise';
import type { BindingService } from '../src/bindings/binding-service';
import { blockNumbers } from '../src/domain/pool';
import type { Pool } from '../src/stores/mysql';
import { RemoteSimulator } from './support/remote-simulator';
import { loadFromProcess, type ProcessLoadResult } from './support/http-load-process';
import { pidListeningOn, processCpuMs } from './support/proc-cpu';
import { countCommands, takeCounts } from './support/command-counter';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function run(): Promise<Record<string, unknown>> {
  countCommands();
  const { logger, logLevel } = benchLogger();
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
      LOG_LEVEL: logLevel,
      // Measures the registry, not abuse control: the star workload binds one number 150 times.
      BINDINGS_PER_NUMBER_PER_HOUR: '0',
      // The machine this runs on is shared and often overloaded: a slow Redis moment is not a failed bind here.
      ROUTE_WRITE_TIMEOUT_MS: '10000',
      // BENCH_RECONCILE_SECONDS: the route index reconcile's interval (the controller's default otherwise).
      ...(process.env.BENCH_RECONCILE_SECONDS ? { ROUTE_RECONCILE_INTERVAL_SECONDS: process.env.BENCH_RECONCILE_SECONDS } : {}),
      TENANT_REQUESTS_PER_SECOND: '0',
      // BIND_BATCH_MAX / BIND_BATCH_IN_FLIGHT: group commit's tuning (the controller's defaults otherwise).
      ...(process.env.BIND_BATCH_MAX ? { BIND_BATCH_MAX: process.env.BIND_BATCH_MAX } : {}),
      ...(process.env.BIND_BATCH_IN_FLIGHT ? { BIND_BATCH_IN_FLIGHT: process.env.BIND_BATCH_IN_FLIGHT } : {}),
    }),
    logger,
    { workers: false },
  );
  const tenants = new TenantStore(app.pool);
  const tenant = await tenants.create({ name: 'bench', poolQuota: 20_000 });
  const { key } = await tenants.createApiKey(tenant.id, 'bench');
  const addr = app.http.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  // The operator assigns the pool (POST /v1/pool/numbers is operator-only).
  await app.bindings.importNumbers(tenant.id, blockNumbers('70010000000', '010'));

  // The floor, measured now on the same MariaDB: durable single-row INSERTs from 64 connections
  // into a table like bindings, each its own autocommitted transaction.
  const floor = await insertFloor(app.pool, testDatabaseUrl(dbName), Number(process.env.BENCH_FLOOR_SECONDS ?? 10));

  // Creation through the API: disjoint pairs with allocated X, a closed loop of `concurrency`
  // requests in flight from a process of its own. Short runs at several concurrencies first; then
  // the sustained run at the one that reached the most bindings/s with p99 <= 20 ms (the most
  // bindings/s when none did).
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const bodyTemplate = JSON.stringify({ mode: 'axb', a: '138{i}', b: '139{i}' });
  let offset = 0;
  const measure = async (concurrency: number, seconds: number): Promise<CreationRun> => {
    const cpu0 = cpuNow();
    const reads0 = await bufferPoolDiskReads(app.pool);
    takeCounts();
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const run = await loadFromProcess({ baseUrl: url, path: '/v1/bindings', headers, concurrency, seconds, bodyTemplate, offset });
    loopDelay.disable();
    offset += run.sent;
    const innodbDiskReads = (await bufferPoolDiskReads(app.pool)) - reads0;
    return { ...creationRun(concurrency, run, cpuSince(cpu0), takeCounts()), eventLoopDelayMaxMs: Math.round(loopDelay.max / 1e6), innodbDiskReads, perSecond: run.perSecond };
  };
  const sweepSeconds = Number(process.env.BENCH_SWEEP_SECONDS ?? 5);
  const sweep: CreationRun[] = [];
  // BENCH_CPU_PROFILE=<file>: a CPU profile of the controller (this process) during the sweep only.
  const profile = process.env.BENCH_CPU_PROFILE ? await startCpuProfile() : null;
  for (const c of (process.env.BENCH_CONCURRENCY ?? '16,32,64,128').split(',').map(Number)) sweep.push(await measure(c, sweepSeconds));
  if (profile && process.env.BENCH_CPU_PROFILE) await profile.stopInto(process.env.BENCH_CPU_PROFILE);
  const within = sweep.filter((r) => r.p99Ms <= 20);
  const best = (within.length ? within : sweep).reduce((p, q) => (q.bindingsPerSecond > p.bindingsPerSecond ? q : p));
  const sustainedSeconds = Number(process.env.BENCH_SUSTAINED_SECONDS ?? 60);
  const sustained = sustainedSeconds > 0 ? await measure(best.concurrency, sustainedSeconds) : null;
  const violations = await invariantViolations(app.pool);
  const routed = await sampleRoutes(app, 500);

  // Efficiency: first-fit on workloads with different degree skews (through the registry).
  const efficiency: Array<Record<string, number | string>> = [];
  const economy = process.env.BENCH_ECONOMY !== '0';
  for (const [name, pairs, hot, people] of [
    ['uniform', 2000, 2000, 2000],
    ['skewed (5 hot numbers)', 2000, 5, 4000],
    ['star (1 number, 150 partners)', 150, 1, 150],
  ] as const) {
    if (!economy) break;
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
      const { binding } = await bindConfirmed(app.bindings, { tenantId: tenant.id, mode: 'axb', a, b, userData: name, requestId: `eco-${efficiency.length}-${made}` });
      used.add(binding.x);
      for (const n of [a, b]) degree.set(n, (degree.get(n) ?? 0) + 1);
      made++;
    }
    const delta = Math.max(...degree.values());
    efficiency.push({ workload: name, pairs, delta, distinctX: used.size, deltaPlusOne: delta + 1, pairsOver200: Math.ceil(pairs / 200) });
  }

  const churn = economy ? await churnWorkload(app.bindings, tenant.id) : [];
  const innodbBufferPoolMiB = await bufferPoolMiB(app.pool);

  await app.stop();
  await sim.stop();
  await dropDatabase(dbName);
  const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await deletePrefixKeys(redis, prefix);
  await redis.quit();
  const headline = sustained ?? best;
  return {
    creationViaHttp: {
      workload: 'POST /v1/bindings, AXB, disjoint pairs, X allocated from a 10,000-number pool',
      client: 'a separate process (node:http, keep-alive), closed loop',
      bindingsPerSecond: headline.bindingsPerSecond,
      p50Ms: headline.p50Ms,
      p99Ms: headline.p99Ms,
      concurrency: headline.concurrency,
      goal: '>= 5000/s sustained 60 s, p99 <= 20 ms',
      sweep,
      sustained,
      invariantViolations: violations,
      routesChecked: routed,
    },
    floor,
    // A buffer pool smaller than the run's tables turns index lookups into disk reads and the rate falls as they grow
    // (MariaDB's default of 128 MiB: 2,628/s falling from ~3,400 to ~2,000 over 60 s; with 1 GiB, 2,976/s and level).
    mariadb: { innodbBufferPoolMiB },
    bindingsPerSecondOverFloor: Number((headline.bindingsPerSecond / floor.insertsPerSecond).toFixed(3)),
    ratioGoal: '>= 0.5',
    poolEfficiency: efficiency,
    churn,
  };
}

interface CreationRun {
  readonly concurrency: number;
  readonly seconds: number;
  readonly bindings: number;
  readonly failures: Record<string, number>;
  readonly bindingsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Completed per second: the slowest, middle and fastest whole second. */
  readonly perSecondMin: number;
  readonly perSecondMedian: number;
  readonly perSecondMax: number;
  /** CPU ms per created binding: the controller, MariaDB, Redis and the load generator. */
  readonly cpuMsPerBinding: Record<string, number | null>;
  /** Redis commands and MySQL statements the controller sent, per created binding (independent of the host's load). */
  readonly commandsPerBinding: Record<string, number>;
  readonly loadAverage: number;
  /** The controller's longest event-loop stall during the run, and completions per second (a stall shows as a dip). */
  readonly eventLoopDelayMaxMs?: number;
  /** Pages InnoDB had to read from disk during the run (Innodb_buffer_pool_reads): 0 when the buffer pool holds the tables. */
  readonly innodbDiskReads?: number;
  readonly perSecond?: readonly number[];
}

async function bufferPoolDiskReads(pool: Pool): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_reads'");
  return Number(rows[0]?.Value ?? 0);
}

async function bufferPoolMiB(pool: Pool): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT @@innodb_buffer_pool_size AS size');
  return Math.round(Number(rows[0]?.size ?? 0) / 1048576);
}

const MYSQLD = pidListeningOn('127.0.0.1', 3306);
const REDIS_SERVER = pidListeningOn('127.0.0.1', 6379);

function cpuNow(): { controller: number; mysqld: number | null; redis: number | null } {
  const c = process.cpuUsage();
  return { controller: (c.user + c.system) / 1000, mysqld: MYSQLD && processCpuMs(MYSQLD), redis: REDIS_SERVER && processCpuMs(REDIS_SERVER) };
}

function cpuSince(t0: ReturnType<typeof cpuNow>): { controller: number; mysqld: number | null; redis: number | null } {
  const t1 = cpuNow();
  const diff = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : b - a);
  return { controller: t1.controller - t0.controller, mysqld: diff(t0.mysqld, t1.mysqld), redis: diff(t0.redis, t1.redis) };
}

function creationRun(concurrency: number, run: ProcessLoadResult, cpu: ReturnType<typeof cpuSince>, commands: Record<string, number>): CreationRun {
  const created = run.statuses['201'] ?? 0;
  const latencies = [...run.latenciesMs].sort((a, b) => a - b);
  // The last second is cut short by the deadline: left out of the per-second figures.
  const whole = run.perSecond.slice(0, Math.max(1, Math.floor(run.elapsedMs / 1000))).sort((a, b) => a - b);
  const per = (ms: number | null): number | null => (ms === null || created === 0 ? null : Number((ms / created).toFixed(3)));
  return {
    concurrency,
    seconds: Number((run.elapsedMs / 1000).toFixed(1)),
    bindings: created,
    failures: Object.fromEntries(Object.entries(run.statuses).filter(([status]) => status !== '201')),
    bindingsPerSecond: Math.round((created / run.elapsedMs) * 1000),
    p50Ms: Number(percentile(latencies, 50).toFixed(2)),
    p99Ms: Number(percentile(latencies, 99).toFixed(2)),
    perSecondMin: whole[0] ?? 0,
    perSecondMedian: whole[Math.floor(whole.length / 2)] ?? 0,
    perSecondMax: whole.at(-1) ?? 0,
    cpuMsPerBinding: { controller: per(cpu.controller), mysqld: per(cpu.mysqld), redis: per(cpu.redis), client: per(run.cpuMs) },
    commandsPerBinding: created === 0 ? {} : Object.fromEntries(Object.entries(commands).map(([name, n]) => [name, Number((n / created).toFixed(3))])),
    loadAverage: Number(os.loadavg()[0]!.toFixed(1)),
  };
}

async function startCpuProfile(): Promise<{ stopInto(file: string): Promise<void> }> {
  const session = new Session();
  session.connect();
  const post = (method: string): Promise<unknown> =>
    new Promise((resolve, reject) => session.post(method, (err, result) => (err ? reject(err) : resolve(result))));
  await post('Profiler.enable');
  await post('Profiler.start');
  return {
    async stopInto(file) {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      await writeFile(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/** Active bindings breaking the reuse invariant (a number twice on one X, anything beside an XB), or missing their members. */
async function invariantViolations(pool: Pool): Promise<{ numberTwiceOnX: number; besideXb: number; membersMissing: number }> {
  // Fresh statistics first: after tens of thousands of inserts the optimizer otherwise joins bindings to itself in full.
  await pool.query('ANALYZE TABLE bindings, binding_members');
  const [[twice], [xb], [members]] = await Promise.all([
    pool.query<RowDataPacket[]>(
      `SELECT COUNT(*) AS n FROM (SELECT x, n FROM (SELECT x, a AS n FROM bindings WHERE state = 'active' AND kind = 'axb' AND expires_at > NOW(3)
         UNION ALL SELECT x, b FROM bindings WHERE state = 'active' AND expires_at > NOW(3)) t GROUP BY x, n HAVING COUNT(*) > 1) d`,
    ),
    pool.query<RowDataPacket[]>(
      `SELECT STRAIGHT_JOIN COUNT(*) AS n FROM bindings xb JOIN bindings o ON o.x = xb.x
        WHERE xb.kind = 'xb' AND xb.state = 'active' AND xb.expires_at > NOW(3) AND o.id <> xb.id AND o.state = 'active' AND o.expires_at > NOW(3)`,
    ),
    pool.query<RowDataPacket[]>(
      `SELECT COUNT(*) AS n FROM bindings b LEFT JOIN (SELECT binding_id, COUNT(*) AS c FROM binding_members GROUP BY binding_id) m ON m.binding_id = b.id
        WHERE b.state = 'active' AND b.kind = 'axb' AND COALESCE(m.c, 0) <> 2`,
    ),
  ]);
  return { numberTwiceOnX: Number(twice[0]?.n ?? 0), besideXb: Number(xb[0]?.n ?? 0), membersMissing: Number(members[0]?.n ?? 0) };
}

/** A random sample of the active bindings, looked up in the route index both ways: how many route as MySQL says. */
async function sampleRoutes(app: App, sample: number): Promise<{ sampled: number; routedBothWays: number }> {
  const [rows] = await app.pool.query<RowDataPacket[]>("SELECT x, a, b FROM bindings WHERE state = 'active' AND kind = 'axb' ORDER BY RAND() LIMIT ?", [sample]);
  let routed = 0;
  for (const r of rows) {
    const [fromA, fromB] = await Promise.all([app.routes.lookup(String(r.x), String(r.a)), app.routes.lookup(String(r.x), String(r.b))]);
    if ('route' in fromA && fromA.route.target === String(r.b) && 'route' in fromB && fromB.route.target === String(r.a)) routed++;
  }
  return { sampled: rows.length, routedBothWays: routed };
}

/** Durable single-row INSERTs per second from 64 connections into a copy of the bindings table. */
async function insertFloor(pool: Pool, url: string, seconds: number): Promise<{ connections: number; seconds: number; insertsPerSecond: number; p50Ms: number; p99Ms: number }> {
  await pool.query('CREATE TABLE floor_probe LIKE bindings');
  const connections = 64;
  const probe = createPool({ uri: url, connectionLimit: connections });
  const deadline = performance.now() + seconds * 1000;
  const latencies: number[] = [];
  let seq = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const id = `00000000-0000-4000-8000-${String(seq++).padStart(12, '0')}`;
      const start = performance.now();
      await probe.query(
        `INSERT INTO floor_probe (id, tenant_id, request_id, kind, x, a, b, state, expires_at, created_at, updated_at)
         VALUES (?, 'floor', NULL, 'axb', '700100000000001', '13800000001', '13900000002', 'active', NOW(3), NOW(3), NOW(3))`,
        [id],
      );
      latencies.push(performance.now() - start);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = performance.now() - started;
  await probe.end();
  await pool.query('DROP TABLE floor_probe');
  latencies.sort((a, b) => a - b);
  return {
    connections,
    seconds: Number((elapsed / 1000).toFixed(1)),
    insertsPerSecond: Math.round((latencies.length / elapsed) * 1000),
    p50Ms: Number(percentile(latencies, 50).toFixed(2)),
    p99Ms: Number(percentile(latencies, 99).toFixed(2)),
  };
}

/**
 * A bind retried (same requestId, so a replay) while the route index does not confirm it in time:
 * on a machine loaded enough for Redis to miss its bound, the economy workloads still finish.
 */
async function bindConfirmed(bindings: BindingService, input: Parameters<BindingService['bind']>[0], now?: number): ReturnType<BindingService['bind']> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await bindings.bind(input, now);
    } catch (err) {
      if ((err as { code?: string }).code !== 'route_index_unavailable' || attempt >= 10) throw err;
    }
  }
}

/**
 * Churn: bindings arriving and expiring over simulated hours in several areas (couriers with many
 * customers each), bound through the service with a simulated clock. Per area: distinct X used
 * against the peak Δ (the most bindings any number held at once).
 */
async function churnWorkload(bindings: BindingService, tenantId: string): Promise<Array<Record<string, number | string>>> {
  const areas = [
    ['020', '70020000000'],
    ['021', '70021000000'],
    ['0755', '70075500000'],
  ] as const;
  for (const [area, block] of areas) await bindings.importNumbers(tenantId, blockNumbers(block, area).slice(0, 1000));
  let s = 11;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const hours = Number(process.env.BENCH_CHURN_HOURS ?? 6);
  const start = Date.now();
  const out: Array<Record<string, number | string>> = [];
  for (const [ai, [area]] of areas.entries()) {
    const live: Array<{ a: string; b: string; endsAt: number }> = [];
    const used = new Set<string>();
    let peakDelta = 0;
    let made = 0;
    // About one binding a minute per courier: 15 couriers, customers mostly new, lives of 5 to 90 minutes.
    for (let t = start; t < start + hours * 3600_000; t += 4000 + Math.floor(rnd() * 4000)) {
      const a = `1371${String(ai * 1000 + Math.floor(rnd() * 15)).padStart(7, '0')}`;
      const b = `1372${String(ai * 1_000_000 + Math.floor(rnd() * 20_000)).padStart(7, '0')}`;
      const life = 300 + Math.floor(rnd() * 5100);
      for (let i = live.length - 1; i >= 0; i--) if (live[i]!.endsAt <= t) live.splice(i, 1);
      if (live.some((l) => (l.a === a && l.b === b) || (l.a === b && l.b === a))) continue;
      try {
        const { binding } = await bindConfirmed(bindings, { tenantId, mode: 'axb', a, b, area, strictArea: true, ttlSeconds: life, requestId: `churn-${ai}-${made}` }, t);
        used.add(binding.x);
      } catch (err) {
        if ((err as { code?: string }).code === 'pair_rate_limited') continue;
        throw err;
      }
      live.push({ a, b, endsAt: t + life * 1000 });
      made++;
      const degree = new Map<string, number>();
      for (const l of live) for (const n of [l.a, l.b]) degree.set(n, (degree.get(n) ?? 0) + 1);
      peakDelta = Math.max(peakDelta, ...degree.values());
    }
    out.push({ area, simulatedHours: hours, bindings: made, peakDelta, distinctX: used.size, deltaPlusOne: peakDelta + 1, twoDeltaMinusOne: 2 * peakDelta - 1 });
  }
  return out;
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
