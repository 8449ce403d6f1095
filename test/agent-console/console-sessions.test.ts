/**
 * Console sign-in sessions against a real MariaDB and Redis, with a clock the test moves (no
 * waiting for expiry): what the cookie holds and its flags, sign-out, idle and absolute expiry,
 * agent token expiry and revocation, and what is stored. The console API runs in a small server
 * of its own (no switch): /me and the event stream are all these tests need of it.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest, createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { RowDataPacket } from 'mysql2/promise';
import type { ConsoleHub } from '../../src/agent-console/console-hub';
import { ConsoleSessionStore } from '../../src/agent-console/console-sessions';
import type { ClickToDialService } from '../../src/calls/types';
import { ConfigError, loadConfig } from '../../src/config';
import { buildHttpServer } from '../../src/http/server';
import { registerConsoleRoutes, type ConsoleCookieOptions, type ConsoleDeps } from '../../src/agent-console/console-routes';
import { createLogger } from '../../src/logger';
import { AgentTokenStore } from '../../src/stores/agent-tokens';
import { TenantStore } from '../../src/stores/tenant-store';
import { createTestDatabase, type TestDatabase } from '../support/mysql';
import { createTestRedis, type TestRedis } from '../support/redis';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const CACHE_MS = 3000;
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

describe('agent console sessions', () => {
  let db: TestDatabase;
  let redis: TestRedis;
  let tokens: AgentTokenStore;
  let tenantId: string;
  let clock = Date.parse('2030-03-01T08:00:00Z');
  const now = (): number => clock;
  const logLines: string[] = [];
  const servers: FastifyInstance[] = [];
  let app: FastifyInstance;

  /** A console server; each has its own session store (and cache), as each controller instance does. */
  function consoleServer(opts: { cookie?: ConsoleCookieOptions; keepAliveMs?: number } = {}): FastifyInstance {
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logLines.push(String(chunk));
        cb();
      },
    });
    const calls = {} as ClickToDialService;
    const hub = { watch: async () => () => undefined } as unknown as ConsoleHub;
    const consoleDeps: ConsoleDeps = {
      tokens,
      sessions: new ConsoleSessionStore(db.pool, { lifetimeMs: 12 * HOUR, idleMs: 30 * MINUTE, cacheMs: CACHE_MS, now }),
      cookie: opts.cookie,
      calls,
      hub,
      redis: redis.redis,
      prefix: redis.prefix,
      keepAliveMs: opts.keepAliveMs,
    };
    const server = buildHttpServer({
      logger: createLogger('debug', sink),
      auth: { authenticate: async () => null },
      readiness: { check: async () => ({}) },
      routes: [(api) => registerConsoleRoutes(api, consoleDeps)],
    });
    servers.push(server);
    return server;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = await createTestRedis();
    tokens = new AgentTokenStore(db.pool, now);
    tenantId = (await new TenantStore(db.pool).create({ name: 'sessions' })).id;
    app = consoleServer();
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    await redis?.cleanup();
    await db?.drop();
  });

  async function newToken(input: { expiresAt?: number | null } = {}): Promise<{ id: string; token: string }> {
    return tokens.create(tenantId, { name: 'Zhang Wei', agentNumber: '13800090001', ...input });
  }

  async function signIn(token: string, server = app, headers: Record<string, string> = {}) {
    const res = await server.inject({ method: 'POST', url: '/console/api/session', payload: { token }, headers });
    expect(res.statusCode).toBe(200);
    const setCookie = String(res.headers['set-cookie']);
    const id = /^ng_agent=([^;]*);/.exec(setCookie)?.[1] ?? '';
    return { res, setCookie, id, cookie: `ng_agent=${id}` };
  }

  const me = (cookie: string, server = app) => server.inject({ method: 'GET', url: '/console/api/me', headers: { cookie } });
  const signOut = (cookie: string, server = app, headers: Record<string, string> = {}) =>
    server.inject({ method: 'DELETE', url: '/console/api/session', headers: { cookie, ...headers } });
  const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
  async function sessionRows(where = '1=1', params: unknown[] = []): Promise<RowDataPacket[]> {
    const [rows] = await db.pool.query<RowDataPacket[]>(`SELECT * FROM console_sessions WHERE ${where}`, params);
    return rows;
  }

  it('the cookie holds a random session id, never the token, with HttpOnly, SameSite=Strict, Path=/console', async () => {
    const { token } = await newToken();
    const { res, setCookie, id } = await signIn(token);
    expect(id).toMatch(SESSION_ID);
    expect(id).not.toContain(token);
    expect(id).not.toContain(token.slice(4));
    expect(setCookie).toBe(`ng_agent=${id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${12 * 3600}`);
    expect(res.body).not.toContain(token.slice(4));
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.json()).toEqual({
      agent: { name: 'Zhang Wei', agentNumber: '138****0001' },
      session: { expiresAt: new Date(clock + 12 * HOUR).toISOString() },
    });
    expect((await me(`ng_agent=${id}`)).json()).toEqual({ agent: { name: 'Zhang Wei', agentNumber: '138****0001' } });

    // A second sign-in is a new session: ids are not derived from the token.
    const again = await signIn(token, app);
    expect(again.id).not.toBe(id);
    expect(again.id).toMatch(SESSION_ID);
  });

  it('stores only the sha256 of the session id, with its tenant, agent token and times', async () => {
    const { id: tokenId, token } = await newToken();
    const { id } = await signIn(token);
    const rows = await sessionRows('agent_token_id = ?', [tokenId]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toEqual({
      id_hash: sha256(id),
      tenant_id: tenantId,
      agent_token_id: tokenId,
      created_at: new Date(clock),
      last_seen_at: new Date(clock),
      expires_at: new Date(clock + 12 * HOUR),
      revoked_at: null,
    });
    const [all] = await db.pool.query<RowDataPacket[]>('SELECT * FROM console_sessions');
    const [tokenRows] = await db.pool.query<RowDataPacket[]>('SELECT * FROM agent_tokens');
    for (const dump of [JSON.stringify(all), JSON.stringify(tokenRows)]) {
      expect(dump).not.toContain(id);
      expect(dump).not.toContain(token);
    }
  });

  it('sign-out revokes the session: the old cookie, replayed, is refused with session_ended, here at once and on another instance within the cache time', async () => {
    const other = consoleServer();
    const { token } = await newToken();
    const { id, cookie } = await signIn(token);
    expect((await me(cookie, other)).statusCode).toBe(200); // the other instance now holds it in its cache

    const out = await signOut(cookie);
    expect(out.statusCode).toBe(204);
    expect(out.headers['set-cookie']).toBe('ng_agent=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0');
    const replay = await me(cookie);
    expect(replay.statusCode).toBe(401);
    expect(replay.json()).toMatchObject({ error: { code: 'session_ended' } });
    expect(replay.headers['set-cookie']).toBe('ng_agent=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0');
    expect((await sessionRows('id_hash = ?', [sha256(id)]))[0]).toMatchObject({ revoked_at: new Date(clock) });

    clock += CACHE_MS;
    const elsewhere = await me(cookie, other);
    expect(elsewhere.statusCode).toBe(401);
    expect(elsewhere.json()).toMatchObject({ error: { code: 'session_ended' } });
    // Signing out twice, or without a session, is fine.
    expect((await signOut(cookie)).statusCode).toBe(204);
    expect((await app.inject({ method: 'DELETE', url: '/console/api/session' })).statusCode).toBe(204);
  });

  it('no cookie is unauthorized; a cookie that names no session (an old token cookie, a guess) is session_ended', async () => {
    const { token } = await newToken();
    const none = await app.inject({ method: 'GET', url: '/console/api/me' });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ error: { code: 'unauthorized' } });
    for (const value of [token, 'A'.repeat(43), 'x']) {
      const res = await me(`ng_agent=${value}`);
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ error: { code: 'session_ended' } });
    }
  });

  it('signing in again from the same browser ends the session it had', async () => {
    const { token } = await newToken();
    const first = await signIn(token);
    const second = await signIn(token, app, { cookie: first.cookie });
    expect((await me(first.cookie)).statusCode).toBe(401);
    expect((await me(second.cookie)).statusCode).toBe(200);
  });

  it('a session ends after CONSOLE_IDLE_MINUTES without a request; each request keeps it going', async () => {
    const { token } = await newToken();
    const { id, cookie } = await signIn(token);
    for (let i = 0; i < 4; i++) {
      clock += 29 * MINUTE;
      expect((await me(cookie)).statusCode).toBe(200);
    }
    expect((await sessionRows('id_hash = ?', [sha256(id)]))[0]!.last_seen_at).toEqual(new Date(clock));
    clock += 30 * MINUTE;
    const idle = await me(cookie);
    expect(idle.statusCode).toBe(401);
    expect(idle.json()).toMatchObject({ error: { code: 'session_ended' } });
    // Idle is final: the session does not come back.
    expect((await me(cookie)).statusCode).toBe(401);
  });

  it('an idle session is judged on what MySQL says: use through another instance keeps it alive here', async () => {
    const other = consoleServer();
    const { token } = await newToken();
    const { cookie } = await signIn(token);
    clock += 20 * MINUTE;
    expect((await me(cookie, other)).statusCode).toBe(200);
    clock += 20 * MINUTE; // 40 min since this instance last saw it, 20 since the other did
    expect((await me(cookie)).statusCode).toBe(200);
  });

  it('a session ends CONSOLE_SESSION_HOURS after sign-in however busy it is', async () => {
    const { token } = await newToken();
    const start = clock;
    const { cookie } = await signIn(token);
    while (clock + 20 * MINUTE < start + 12 * HOUR) {
      clock += 20 * MINUTE;
      expect((await me(cookie)).statusCode).toBe(200);
    }
    clock = start + 12 * HOUR - 1;
    expect((await me(cookie)).statusCode).toBe(200);
    clock = start + 12 * HOUR;
    const over = await me(cookie);
    expect(over.statusCode).toBe(401);
    expect(over.json()).toMatchObject({ error: { code: 'session_ended' } });
  });

  it('an expired agent token cannot sign in, and the sessions opened with it end when it expires', async () => {
    const { token } = await newToken({ expiresAt: clock + HOUR });
    const { setCookie, cookie, res } = await signIn(token);
    // The session is cut to the token's life.
    expect(setCookie).toContain('; Max-Age=3600');
    expect(res.json()).toMatchObject({ session: { expiresAt: new Date(clock + HOUR).toISOString() } });
    const start = clock;
    for (const at of [20 * MINUTE, 40 * MINUTE, HOUR - 1]) {
      clock = start + at;
      expect((await me(cookie)).statusCode).toBe(200);
    }
    clock = start + HOUR;
    expect((await me(cookie)).statusCode).toBe(401);
    const refused = await app.inject({ method: 'POST', url: '/console/api/session', payload: { token } });
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({ error: { code: 'unauthorized', field: 'token' } });
    expect(refused.headers['set-cookie']).toBeUndefined();
    expect(await tokens.authenticate(token)).toBeNull();
    await expect(tokens.create(tenantId, { name: 'x', agentNumber: '13800090001', expiresAt: clock })).rejects.toMatchObject({ field: 'expiresAt' });
  });

  it('revoking the agent token ends all its sessions (at once in MySQL; an instance that read one lets it go within the cache time)', async () => {
    const { id: tokenId, token } = await newToken();
    const laptop = await signIn(token);
    const phone = await signIn(token);
    const other = await newToken();
    const unrelated = await signIn(other.token);
    expect((await me(laptop.cookie)).statusCode).toBe(200);

    await tokens.revoke(tenantId, tokenId);
    expect((await sessionRows('agent_token_id = ?', [tokenId])).map((r) => r.revoked_at)).toEqual([new Date(clock), new Date(clock)]);
    // The phone's session was not in this instance's cache: refused at once.
    expect((await me(phone.cookie)).statusCode).toBe(401);
    clock += CACHE_MS;
    const res = await me(laptop.cookie);
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: { code: 'session_ended' } });
    expect((await me(unrelated.cookie)).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/console/api/session', payload: { token } })).statusCode).toBe(401);
  });

  it('an open event stream ends when its session signs out, and when its token is revoked', async () => {
    const server = consoleServer({ keepAliveMs: 50 });
    await server.listen({ host: '127.0.0.1', port: 0 });
    const port = (server.server.address() as AddressInfo).port;
    const { id: tokenId, token } = await newToken();
    const a = await signIn(token, server);
    const b = await signIn(token, server);
    /** Opens a stream; `ended` settles when the server ends it. */
    const open = async (cookie: string): Promise<{ ended: Promise<boolean> }> => {
      const res = await fetch(`http://127.0.0.1:${port}/console/api/events`, { headers: { cookie } });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const ended = (async () => {
        while (!(await reader.read()).done);
        return true;
      })();
      return { ended };
    };
    const streamA = await open(a.cookie);
    const streamB = await open(b.cookie);
    expect((await signOut(a.cookie, server)).statusCode).toBe(204);
    expect(await streamA.ended).toBe(true);

    // Revoked elsewhere (the CLI): the stream's next check, once this instance's copy is stale, ends it.
    await tokens.revoke(tenantId, tokenId);
    clock += CACHE_MS;
    expect(await streamB.ended).toBe(true);
    await server.close();
  });

  describe('the Secure flag', () => {
    it('is absent over plain HTTP, and a client cannot get it by claiming X-Forwarded-Proto without a trusted proxy', async () => {
      const { token } = await newToken();
      const plain = await signIn(token);
      expect(plain.setCookie).not.toMatch(/Secure/);
      const claimed = await signIn(token, app, { 'x-forwarded-proto': 'https' });
      expect(claimed.setCookie).not.toMatch(/Secure/);
    });

    it('behind a trusted proxy (CONSOLE_TRUST_PROXY): set when the proxy says https, on sign-in and sign-out', async () => {
      const proxied = consoleServer({ cookie: { trustProxy: true } });
      const { token } = await newToken();
      const https = await signIn(token, proxied, { 'x-forwarded-proto': 'https' });
      expect(https.setCookie).toBe(`ng_agent=${https.id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${12 * 3600}; Secure`);
      expect((await signIn(token, proxied, { 'x-forwarded-proto': 'HTTPS, http' })).setCookie).toMatch(/; Secure$/);
      expect((await signIn(token, proxied, { 'x-forwarded-proto': 'http' })).setCookie).not.toMatch(/Secure/);
      expect((await signIn(token, proxied)).setCookie).not.toMatch(/Secure/);
      const out = await signOut(https.cookie, proxied, { 'x-forwarded-proto': 'https' });
      expect(out.headers['set-cookie']).toBe('ng_agent=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0; Secure');
    });

    it('always with CONSOLE_COOKIE_SECURE=true', async () => {
      const always = consoleServer({ cookie: { alwaysSecure: true } });
      const { token } = await newToken();
      expect((await signIn(token, always)).setCookie).toMatch(/; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
    });

    it('set when the request came over TLS to the controller itself', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'console-tls-'));
      let tls: Server | undefined;
      try {
        const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
          '-subj', '/CN=localhost', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { encoding: 'utf8' });
        if (made.status !== 0) throw new Error(`openssl could not make a test certificate: ${made.stderr || made.error?.message}`);
        const server = consoleServer();
        await server.ready();
        tls = createHttpsServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) }, (req, res) =>
          server.routing(req, res),
        );
        await new Promise<void>((resolve) => tls!.listen(0, '127.0.0.1', resolve));
        const { token } = await newToken();
        const body = JSON.stringify({ token });
        const setCookie = await new Promise<string>((resolve, reject) => {
          const req = httpsRequest(
            {
              host: '127.0.0.1',
              port: (tls!.address() as AddressInfo).port,
              path: '/console/api/session',
              method: 'POST',
              ca: readFileSync(path.join(dir, 'cert.pem')),
              servername: 'localhost',
              agent: false,
              headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
            },
            (res) => {
              res.resume();
              res.on('end', () => (res.statusCode === 200 ? resolve(String(res.headers['set-cookie'])) : reject(new Error(`status ${res.statusCode}`))));
            },
          );
          req.on('error', reject);
          req.end(body);
        });
        expect(setCookie).toMatch(/^ng_agent=[A-Za-z0-9_-]{43}; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
      } finally {
        await new Promise<void>((resolve) => (tls ? tls.close(() => resolve()) : resolve()));
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('nothing logged carries a token or a session id', async () => {
    const { token } = await newToken();
    const { id, cookie } = await signIn(token);
    await me(cookie);
    await signOut(cookie);
    await me(cookie);
    const logs = logLines.join('');
    expect(logs).toContain('"route":"/console/api/session"');
    expect(logs).not.toContain(token.slice(4));
    expect(logs).not.toContain(id);
    expect(logs).not.toContain(sha256(id));
  });
});

describe('console session settings', () => {
  const base = { ESL_PASSWORD: 'x' };

  it('default to 12 h and 30 min idle, no proxy trusted, Secure only over TLS', () => {
    expect(loadConfig(base).agentConsole).toEqual({ sessionHours: 12, idleMinutes: 30, trustProxy: false, cookieSecure: false });
    expect(
      loadConfig({ ...base, CONSOLE_SESSION_HOURS: '2', CONSOLE_IDLE_MINUTES: '120', CONSOLE_TRUST_PROXY: 'true', CONSOLE_COOKIE_SECURE: 'yes' }).agentConsole,
    ).toEqual({ sessionHours: 2, idleMinutes: 120, trustProxy: true, cookieSecure: true });
  });

  it.each([
    ['CONSOLE_SESSION_HOURS', '0'],
    ['CONSOLE_SESSION_HOURS', '12h'],
    ['CONSOLE_SESSION_HOURS', '1000'],
    ['CONSOLE_IDLE_MINUTES', '0'],
    ['CONSOLE_IDLE_MINUTES', '721'], // longer than the 12 h session
    ['CONSOLE_TRUST_PROXY', 'maybe'],
    ['CONSOLE_COOKIE_SECURE', 'sometimes'],
  ])('a bad %s (%s) stops the start, naming it', (name, value) => {
    let thrown: unknown;
    try {
      loadConfig({ ...base, [name]: value });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect(thrown).toMatchObject({ variable: name });
    expect((thrown as Error).message).toContain(name);
  });
});
