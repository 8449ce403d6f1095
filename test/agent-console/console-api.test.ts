import { AgentTokenStore } from '../../src/stores/agent-tokens';
import { startTestSystem, type TestSystem } from '../support/system';

describe('agent console API', () => {
  let sys: TestSystem;
  let tokens: AgentTokenStore;

  beforeAll(async () => {
    sys = await startTestSystem();
    tokens = new AgentTokenStore(sys.app.pool);
  });
  let stopped = false;
  afterAll(async () => {
    if (!stopped) await sys?.stop();
  });

  /** Signs in; the cookie carries a random session id, never the token (test/agent-console/console-sessions.test.ts has the rest). */
  async function signIn(token: string): Promise<string> {
    const res = await sys.app.http.inject({ method: 'POST', url: '/console/api/session', payload: { token } });
    expect(res.statusCode).toBe(200);
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/^ng_agent=[A-Za-z0-9_-]{43}; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=43200$/);
    expect(cookie).not.toContain(token.slice(4));
    expect(res.body).not.toContain(token.slice(4));
    return cookie.split(';')[0]!;
  }

  const as = (cookie: string, method: 'GET' | 'POST', url: string, payload?: unknown) =>
    sys.app.http.inject({ method, url, headers: { cookie }, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });

  it('serves the page, and refuses the API without a valid session', async () => {
    const page = await sys.app.http.inject({ method: 'GET', url: '/console' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).toContain('Agent console');
    const anonymous = await sys.app.http.inject({ method: 'GET', url: '/console/api/recent' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json()).toMatchObject({ error: { code: 'unauthorized' } });
    const wrong = await sys.app.http.inject({ method: 'POST', url: '/console/api/session', payload: { token: 'agt_nope' } });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toMatchObject({ error: { code: 'unauthorized', field: 'token' } });
  });

  it('places a call with the agent as A, shows only its own calls, masks the customer; bad input names the field', async () => {
    const mine = await tokens.create(sys.tenantId, { name: 'Agent One', agentNumber: '13800050001' });
    const theirs = await tokens.create(sys.tenantId, { name: 'Agent Two', agentNumber: '13800050002' });
    const me = await signIn(mine.token);
    const them = await signIn(theirs.token);
    sys.sim.setPhone('13800050001', { answer: 'answer' });
    sys.sim.setPhone('13900050001', { answer: 'answer', hangupAfterMs: 300 });

    const placed = await as(me, 'POST', '/console/api/calls', { customer: '139 0005 0001', order: 'A-1001' });
    expect(placed.statusCode).toBe(202);
    const call = placed.json<{ id: string; customer: string; order: string }>();
    expect(call).toMatchObject({ customer: '139****0001', order: 'A-1001' });
    expect(placed.body).not.toContain('13900050001');
    const done = await sys.waitForCall(call.id);
    expect(done).toMatchObject({ a: '13800050001', b: '13900050001', result: 'connected', userData: 'A-1001' });

    const view = await as(me, 'GET', `/console/api/calls/${call.id}`);
    expect(view.json()).toMatchObject({ id: call.id, result: 'connected', steps: { callingYou: true, youAnswered: true, callingCustomer: true, connected: true } });
    expect((await as(them, 'GET', `/console/api/calls/${call.id}`)).statusCode).toBe(404);
    expect((await as(them, 'POST', `/console/api/calls/${call.id}/hangup`)).statusCode).toBe(404);
    expect((await as(them, 'GET', '/console/api/recent')).json()).toEqual({ items: [] });
    expect((await as(me, 'GET', '/console/api/recent')).json<{ items: Array<{ id: string }> }>().items.map((c) => c.id)).toEqual([call.id]);

    const bad = await as(me, 'POST', '/console/api/calls', { customer: '12' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { code: 'invalid_phone_number', field: 'customer' } });

    const again = await as(me, 'POST', `/console/api/calls/${call.id}/again`);
    expect(again.statusCode).toBe(202);
    expect(await sys.waitForCall(again.json<{ id: string }>().id)).toMatchObject({ b: '13900050001', userData: 'A-1001' });

    // Both calls are in the tenant's audit log as this agent's, with the customer masked.
    const audit = await sys.api<{ items: Array<{ actor: string; action: string; details: unknown }> }>('GET', '/v1/audit?action=call.create');
    expect(audit.body.items.map((e) => e.actor)).toEqual([`agent:${mine.id}`, `agent:${mine.id}`]);
    expect(JSON.stringify(audit.body)).not.toContain('13900050001');
  });

  it('sign-out revokes the session: its cookie, replayed, opens nothing', async () => {
    const t = await tokens.create(sys.tenantId, { name: 'Agent Seven', agentNumber: '13800050007' });
    const cookie = await signIn(t.token);
    expect((await as(cookie, 'GET', '/console/api/me')).statusCode).toBe(200);
    const out = await sys.app.http.inject({ method: 'DELETE', url: '/console/api/session', headers: { cookie } });
    expect(out.statusCode).toBe(204);
    expect(out.headers['set-cookie']).toMatch(/^ng_agent=; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=0$/);
    const replay = await as(cookie, 'GET', '/console/api/recent');
    expect(replay.statusCode).toBe(401);
    expect(replay.json()).toMatchObject({ error: { code: 'session_ended' } });
    // Neither the token nor the session id was logged.
    const logs = sys.logLines.join('');
    expect(logs).not.toContain(t.token.slice(4));
    expect(logs).not.toContain(cookie.slice('ng_agent='.length));
  });

  it('a revoked token signs no one in, its sessions end within seconds, and a cookie holding a token opens nothing', async () => {
    const t = await tokens.create(sys.tenantId, { name: 'Agent Three', agentNumber: '13800050003' });
    const cookie = await signIn(t.token);
    expect((await as(cookie, 'GET', '/console/api/me')).statusCode).toBe(200);
    await tokens.revoke(sys.tenantId, t.id); // as `agent-token revoke` does, from another process
    const deadline = Date.now() + 10_000;
    while ((await as(cookie, 'GET', '/console/api/me')).statusCode === 200) {
      if (Date.now() > deadline) throw new Error('the session outlived its revoked token');
      await new Promise((r) => setTimeout(r, 100));
    }
    const again = await sys.app.http.inject({ method: 'POST', url: '/console/api/session', payload: { token: t.token } });
    expect(again.statusCode).toBe(401);
    expect(again.headers['set-cookie']).toBeUndefined();
    // The cookie of an older console held the token itself: it is no session.
    const recent = await as(`ng_agent=${t.token}`, 'GET', '/console/api/recent');
    expect(recent.statusCode).toBe(401);
    expect(recent.json()).toMatchObject({ error: { code: 'session_ended' } });
  });

  it('pushes the progress of the agent\'s own calls, in order, and nothing of another agent\'s', async () => {
    const one = await tokens.create(sys.tenantId, { name: 'Agent Four', agentNumber: '13800050004' });
    const two = await tokens.create(sys.tenantId, { name: 'Agent Five', agentNumber: '13800050005' });
    const [cookieOne, cookieTwo] = [await signIn(one.token), await signIn(two.token)];
    sys.sim.setPhone('13800050004', { answer: 'answer' });
    sys.sim.setPhone('13800050005', { answer: 'answer' });
    sys.sim.setPhone('13900050004', { answer: 'answer', hangupAfterMs: 300 });
    sys.sim.setPhone('13900050005', { answer: 'busy' });
    const streamOne = await openEvents(cookieOne);
    const streamTwo = await openEvents(cookieTwo);

    const callOne = (await as(cookieOne, 'POST', '/console/api/calls', { customer: '13900050004' })).json<{ id: string }>();
    const seenByOne = await streamOne.until((e) => e.type === 'call.completed');
    expect(seenByOne.map((e) => [e.type, e.leg])).toEqual([
      ['call.calling', 'a'],
      ['call.ringing', 'a'],
      ['call.answered', 'a'],
      ['call.calling', 'b'],
      ['call.ringing', 'b'],
      ['call.answered', 'b'],
      ['call.bridged', null],
      ['call.completed', null],
    ]);
    expect(seenByOne.every((e) => e.callId === callOne.id)).toBe(true);
    expect(seenByOne.at(-1)).toMatchObject({ result: 'connected', talkSeconds: expect.any(Number) });
    expect(JSON.stringify(seenByOne)).not.toMatch(/1[38]\d{9}/);

    // Agent two's stream got its events in the same order: its own call's are all it saw.
    const callTwo = (await as(cookieTwo, 'POST', '/console/api/calls', { customer: '13900050005' })).json<{ id: string }>();
    const seenByTwo = await streamTwo.until((e) => e.type === 'call.completed');
    expect(new Set(seenByTwo.map((e) => e.callId))).toEqual(new Set([callTwo.id]));
    expect(seenByTwo.at(-1)).toMatchObject({ result: 'b_busy' });
    streamOne.close();
    streamTwo.close();
  });

  it('an open event stream does not hold up the shutdown: it is ended', async () => {
    const t = await tokens.create(sys.tenantId, { name: 'Agent Six', agentNumber: '13800050006' });
    const stream = await openEvents(await signIn(t.token));
    await sys.stop();
    stopped = true;
    expect(await stream.ended).toBe(true);
  });

  interface Pushed {
    type: string;
    callId: string;
    leg: string | null;
    result?: string;
    talkSeconds?: number;
  }

  /** A real HTTP event stream (inject cannot stream): the pushed progress events, as they come. */
  async function openEvents(cookie: string) {
    const address = sys.app.http.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const abort = new AbortController();
    const res = await fetch(`http://127.0.0.1:${port}/console/api/events`, { headers: { cookie }, signal: abort.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    const received: Pushed[] = [];
    let buffer = '';
    const wake: { waiter: (() => void) | null } = { waiter: null };
    const ended = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return true;
          buffer += value;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const message = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const data = message.split('\n').find((l) => l.startsWith('data: '));
            if (message.startsWith('event: progress') && data) received.push(JSON.parse(data.slice(6)) as Pushed);
          }
          wake.waiter?.();
        }
      } catch {
        return false;
      }
    })();
    return {
      ended,
      close: () => abort.abort(),
      async until(done: (e: Pushed) => boolean): Promise<Pushed[]> {
        while (!received.some(done)) await new Promise<void>((r) => (wake.waiter = r));
        return [...received];
      },
    };
  }
});
