import { AgentTokenStore } from '../../src/stores/agent-tokens';
import { startTestSystem, type TestSystem } from '../support/system';

/**
 * The failed-authentication throttle in the whole app: counted in Redis, AUTH_FAILURES_PER_MINUTE
 * per client address, on every surface that checks a credential (API key, admin token, agent
 * token at console sign-in, console session cookie).
 */
describe('failed authentications in the app (Redis, AUTH_FAILURES_PER_MINUTE)', () => {
  const ADMIN_TOKEN = 'throttle-admin-token-0123456789';
  let sys: TestSystem;
  let agentToken: string;

  beforeAll(async () => {
    sys = await startTestSystem({ workers: false, env: { ADMIN_TOKEN, AUTH_FAILURES_PER_MINUTE: '3' } });
    agentToken = (await new AgentTokenStore(sys.app.pool).create(sys.tenantId, { name: 'throttled', agentNumber: '13800080001' })).token;
  });
  afterAll(async () => {
    await sys?.stop();
  });

  const from = (remoteAddress: string) => ({
    api: (key: string) => sys.app.http.inject({ method: 'GET', url: '/v1/cdrs', headers: { authorization: `Bearer ${key}` }, remoteAddress }),
    admin: (token: string) => sys.app.http.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${token}` }, remoteAddress }),
    signIn: (token: string) => sys.app.http.inject({ method: 'POST', url: '/console/api/session', payload: { token }, remoteAddress }),
    me: (cookie: string) => sys.app.http.inject({ method: 'GET', url: '/console/api/me', headers: { cookie }, remoteAddress }),
  });

  it('bad agent tokens at console sign-in: the 4th attempt is 429, even with a good token; another address signs in', async () => {
    const attacker = from('198.51.100.41');
    for (let i = 0; i < 3; i++) expect((await attacker.signIn(`agt_wrong${i}`)).statusCode).toBe(401);
    const refused = await attacker.signIn(agentToken);
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({ error: { code: 'too_many_failed_auth', message: expect.any(String) } });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.headers['set-cookie']).toBeUndefined();
    expect((await from('198.51.100.42').signIn(agentToken)).statusCode).toBe(200);
  });

  it('bad API keys, admin tokens and session cookies all count, against the same address', async () => {
    const attacker = from('198.51.100.43');
    expect((await attacker.api('ngk_wrong')).statusCode).toBe(401);
    expect((await attacker.admin('wrong-admin-token-0123456789')).statusCode).toBe(401);
    expect((await attacker.me('ng_agent=not-a-session')).statusCode).toBe(401);
    expect((await attacker.api(sys.apiKey)).statusCode).toBe(429);
    expect((await attacker.admin(ADMIN_TOKEN)).statusCode).toBe(429);
    // Elsewhere, the same good credentials work.
    const other = from('198.51.100.44');
    expect((await other.api(sys.apiKey)).statusCode).toBe(200);
    expect((await other.admin(ADMIN_TOKEN)).statusCode).toBe(200);
  });
});
