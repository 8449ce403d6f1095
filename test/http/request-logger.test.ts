import { Writable } from 'node:stream';
import { buildHttpServer } from '../../src/http/server';
import { createLogger, type Logger } from '../../src/logger';

/**
 * Each request's logger: its lines carry the request id and have numbers masked, and the pino
 * child behind it is made only when the request writes a line at an enabled level.
 */
function build(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger(level, sink);
  const app = buildHttpServer({
    logger,
    auth: { authenticate: async (key) => (key === 'ngk_good' ? { tenantId: 't1', keyId: 'k1' } : null) },
    readiness: { check: async () => ({ mysql: true }) },
    v1Routes: [
      (v1) =>
        v1.get('/boom', async (request) => {
          request.log.warn({ b: '13900000002' }, 'about 13800000001');
          throw new Error('B 13500000005 busy');
        }),
    ],
  });
  return { app, lines, logger };
}

describe('request logger', () => {
  it('writes the request id with every line of a request, numbers masked', async () => {
    const { app, lines } = build('info');
    const res = await app.inject({ method: 'GET', url: '/v1/boom', headers: { authorization: 'Bearer ngk_good' } });
    expect(res.statusCode).toBe(500);
    const id = res.headers['x-request-id'];
    const mine = lines.filter((l) => l.reqId === id);
    expect(mine.map((l) => l.msg)).toEqual(expect.arrayContaining(['about 138****0001', 'unexpected error', 'request']));
    expect(mine.find((l) => l.msg === 'request')).toMatchObject({ component: 'http', status: 500, route: '/v1/boom' });
    const out = JSON.stringify(lines);
    for (const n of ['13800000001', '13900000002', '13500000005']) expect(out).not.toContain(n);
    await app.close();
  });

  it('makes no child logger for a request that writes no enabled line', async () => {
    const { app, lines } = build('error');
    await app.ready();
    const http = app.log as unknown as Logger;
    const child = jest.spyOn(Object.getPrototypeOf(http) as Logger, 'child');
    const quiet = await app.inject({ method: 'GET', url: '/healthz' });
    expect(quiet.statusCode).toBeLessThan(500);
    expect(child).not.toHaveBeenCalled();
    const res = await app.inject({ method: 'GET', url: '/v1/boom', headers: { authorization: 'Bearer ngk_good' } });
    expect(child).toHaveBeenCalledTimes(1);
    expect(lines.map((l) => [l.msg, l.reqId])).toEqual([['unexpected error', res.headers['x-request-id']]]);
    child.mockRestore();
    await app.close();
  });
});
