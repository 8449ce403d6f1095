import { Writable } from 'node:stream';
import { ConfigError, loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';

describe('config', () => {
  const base = { ESL_PASSWORD: 'secret' };

  it('has defaults for everything but the ESL password', () => {
    const c = loadConfig(base);
    expect(c.esl).toMatchObject({ host: '127.0.0.1', port: 8021, password: 'secret' });
    expect(c.callbacks.maxDurationSeconds).toBe(1800);
    expect(Object.isFrozen(c)).toBe(true);
    expect(c.redisClusterNodes).toEqual([]);
  });

  it('reads a Redis Cluster’s seed nodes, IPv6 in brackets', () => {
    expect(loadConfig({ ...base, REDIS_CLUSTER_NODES: 'redis-1:7000, 10.0.0.2:7001,[::1]:7002' }).redisClusterNodes).toEqual([
      { host: 'redis-1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
  });

  it.each([
    [{}, 'ESL_PASSWORD'],
    [{ ...base, HTTP_PORT: 'eighty' }, 'HTTP_PORT'],
    [{ ...base, ESL_PORT: '70000' }, 'ESL_PORT'],
    [{ ...base, MYSQL_URL: 'postgres://x' }, 'MYSQL_URL'],
    [{ ...base, PASSTHROUGH_ALLOWED: 'maybe' }, 'PASSTHROUGH_ALLOWED'],
    [{ ...base, DIAL_STRING_TEMPLATE: 'sofia/gateway/carrier/' }, 'DIAL_STRING_TEMPLATE'],
    [{ ...base, DIAL_STRING_OVERRIDES: '[1]' }, 'DIAL_STRING_OVERRIDES'],
    // click-to-dial's one originate line: its arguments split on spaces, its inline dialplan on ^
    [{ ...base, DIAL_STRING_TEMPLATE: 'sofia/gateway/carrier/{number} x' }, 'DIAL_STRING_TEMPLATE'],
    [{ ...base, DIAL_STRING_OVERRIDES: '{"1":"sofia/gw/a^b"}' }, 'DIAL_STRING_OVERRIDES'],
    [{ ...base, RINGBACK_TONE: "tone_stream://%(2000,4000,440,480);loops=-1 '" }, 'RINGBACK_TONE'],
    [{ ...base, REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2' }, 'REDIS_CLUSTER_NODES'],
    [{ ...base, REDIS_CLUSTER_NODES: '10.0.0.1:70000' }, 'REDIS_CLUSTER_NODES'],
    // braces would be a hash tag of their own and break the slot layout of the keys
    [{ ...base, REDIS_PREFIX: '{ng}' }, 'REDIS_PREFIX'],
  ])('fails fast naming the bad variable (%#)', (env, variable) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    try {
      loadConfig(env);
    } catch (e) {
      expect((e as ConfigError).variable).toBe(variable);
      expect((e as Error).message).toContain(variable);
    }
  });
});

describe('logger', () => {
  it('masks real numbers in messages, fields, child bindings and errors', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = createLogger('info', sink).child({ a: '13800000001' });
    log.info({ b: '+8613900000002', nested: { list: ['13700000003'] }, x: '700100000000001' }, 'calling 13600000004');
    log.error({ err: new Error('B 13500000005 busy') }, 'failed');
    const out = lines.join('');
    for (const n of ['13800000001', '13900000002', '13700000003', '13600000004', '13500000005']) expect(out).not.toContain(n);
    expect(out).toContain('138****0001');
    expect(out).toContain('700100000000001');
  });
});

describe('ring timeouts', () => {
  it('refuses a default the API and the job contract would refuse per call (5-120 s), naming the variable', () => {
    expect(() => loadConfig({ ESL_PASSWORD: 'x', RING_TIMEOUT_B_SECONDS: '121' })).toThrow(/RING_TIMEOUT_B_SECONDS/);
    expect(loadConfig({ ESL_PASSWORD: 'x', RING_TIMEOUT_A_SECONDS: '120' }).callbacks.ringTimeoutASeconds).toBe(120);
  });
});
