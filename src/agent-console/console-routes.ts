import { randomUUID } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RedisClient } from '../stores/redis';
import { callIdFor } from '../calls/click-to-dial-request';
import type { CallView, ClickToDialService } from '../calls/types';
import type { TenantContext } from '../domain/tenant-context';
import { AppError, NotFoundError } from '../domain/errors';
import type { PlatformEvent } from '../events/platform-events';
import { maskPhone, parseRealNumber } from '../domain/phone-number';
import { registerAuditHook, type AuditSink } from '../http/audit-hook';
import { ErrorSchema } from '../http/schemas';
import type { AgentTokenInfo, AgentTokenStore } from '../stores/agent-tokens';
import type { ConsoleHub } from './console-hub';
import { sessionKey, type ConsoleSessionStore } from './console-sessions';
import { CONSOLE_PAGE } from './page';
import { redisKeys } from '../stores/keys';

/**
 * The agent console (SPEC §1): a page, and the small API it uses. An agent signs in with an
 * agent token, once: POST /console/api/session exchanges it for a server-side session
 * (console-sessions.ts) whose random id is all the cookie holds; the token is never sent back,
 * stored in the browser or logged. Sign-out (DELETE /console/api/session) revokes the session.
 * Calls are click-to-dial calls with the agent's own phone as A, placed through the same service
 * as POST /v1/calls; progress is pushed over Server-Sent Events. An agent sees only its own calls.
 */
export interface ConsoleDeps {
  /** Checks the token at sign-in (and only there). */
  readonly tokens: Pick<AgentTokenStore, 'authenticate'>;
  readonly sessions: Pick<ConsoleSessionStore, 'open' | 'authenticate' | 'revoke'>;
  readonly cookie?: ConsoleCookieOptions;
  readonly calls: ClickToDialService;
  readonly hub: ConsoleHub;
  readonly redis: RedisClient;
  readonly prefix: string;
  readonly audit?: AuditSink;
  readonly onAuditError?: (err: unknown) => void;
  /** SSE keep-alive comment interval (default 15 s); an open stream checks its session as often. */
  readonly keepAliveMs?: number;
}

/**
 * The session cookie is always HttpOnly, SameSite=Strict, Path=/console. It is also `Secure`
 * when the request came over TLS: to this server directly, or to a reverse proxy that says so in
 * `X-Forwarded-Proto: https` — believed only with `trustProxy` (the proxy must set the header
 * itself, replacing any the client sent). `alwaysSecure` sets it on every response.
 */
export interface ConsoleCookieOptions {
  /** CONSOLE_COOKIE_SECURE=true. */
  readonly alwaysSecure?: boolean;
  /** CONSOLE_TRUST_PROXY=true. */
  readonly trustProxy?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    agent?: AgentTokenInfo;
    /** The signed-in console session's key (the sha256 of its id). */
    consoleSession?: string;
  }
}

const COOKIE = 'ng_agent';
const RECENT_KEPT = 20;
const OWNERSHIP_TTL_SECONDS = 8 * 24 * 3600;

const SessionBody = Type.Object({ token: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });
const SessionReply = Type.Object({
  agent: Type.Object({ name: Type.String(), agentNumber: Type.String() }),
  session: Type.Object({ expiresAt: Type.String() }),
});
const CallBody = Type.Object(
  {
    customer: Type.String({ minLength: 1, maxLength: 32 }),
    order: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:~-]+$' }) });

/** What the page shows of a call: the customer masked but for the last four digits. */
export interface ConsoleCall {
  readonly id: string;
  readonly customer: string;
  readonly order: string | null;
  readonly state: CallView['state'];
  readonly result: CallView['result'];
  readonly talkSeconds: number | null;
  /** Who ended the call: 'platform' after Hang up (or the maximum duration). */
  readonly hangupSide: CallView['hangupSide'];
  readonly createdAt: string;
  readonly steps: { readonly callingYou: boolean; readonly youAnswered: boolean; readonly callingCustomer: boolean; readonly connected: boolean };
}

export function consoleView(call: CallView): ConsoleCall {
  return {
    id: call.id,
    customer: maskPhone(call.b),
    order: call.userData,
    state: call.state,
    result: call.result,
    talkSeconds: call.cdr ? call.cdr.talkSeconds : null,
    hangupSide: call.hangupSide,
    createdAt: call.createdAt,
    steps: {
      callingYou: call.state !== 'queued',
      youAnswered: call.legs.a.answerAt !== null,
      callingCustomer: call.legs.b.state !== 'idle' || call.state === 'calling_b' || call.state === 'bridged',
      connected: call.legs.b.answerAt !== null,
    },
  };
}

/** The part of a platform event the page needs (no numbers). */
function pushed(e: PlatformEvent): Record<string, unknown> {
  return {
    type: e.type,
    callId: e.callId,
    leg: e.leg ?? null,
    at: e.at,
    ...(e.cdr ? { result: e.cdr.result, talkSeconds: e.cdr.talkSeconds, hangupSide: e.cdr.hangupSide } : {}),
  };
}

/** The session id the request's cookie carries (a session id is base64url: nothing to decode). */
function cookieSession(request: FastifyRequest): string | null {
  const header = request.headers.cookie ?? '';
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) return v.join('=') || null;
  }
  return null;
}

/** Whether the request reached us over TLS (see ConsoleCookieOptions). */
export function cameOverTls(request: FastifyRequest, trustProxy: boolean): boolean {
  if ((request.raw.socket as { encrypted?: boolean } | undefined)?.encrypted === true) return true;
  if (!trustProxy) return false;
  const header = request.headers['x-forwarded-proto'];
  const first = (Array.isArray(header) ? header[0] : header)?.split(',')[0]?.trim().toLowerCase();
  return first === 'https';
}

const errors = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 429: ErrorSchema };

export function registerConsoleRoutes(app: FastifyInstance, deps: ConsoleDeps): void {
  const { consoleCallOwner: ownerKey, consoleRecentCalls: recentKey } = redisKeys(deps.prefix);
  const contextOf = (agent: AgentTokenInfo): TenantContext => ({ tenantId: agent.tenantId, actor: `agent:${agent.id}` });
  // Open event streams are ended when the server closes, when their session signs out here, and
  // when a periodic check finds their session over (expired, revoked elsewhere).
  const openStreams = new Set<() => void>();
  const streamsOf = new Map<string, Set<() => void>>();
  app.addHook('preClose', async () => {
    for (const end of [...openStreams]) end();
  });
  const endStreamsOf = (sessionKey: string): void => {
    for (const end of [...(streamsOf.get(sessionKey) ?? [])]) end();
  };

  const setCookie = (request: FastifyRequest, reply: FastifyReply, value: string, maxAgeSeconds: number): void => {
    const secure = deps.cookie?.alwaysSecure === true || cameOverTls(request, deps.cookie?.trustProxy === true);
    void reply.header(
      'set-cookie',
      `${COOKIE}=${value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`,
    );
  };
  const clearCookie = (request: FastifyRequest, reply: FastifyReply): void => setCookie(request, reply, '', 0);

  const placeCall = async (agent: AgentTokenInfo, customer: string, order: string | undefined): Promise<ConsoleCall> => {
    const requestId = `console-${randomUUID()}`;
    // The call's id is known before it exists: ownership is recorded first, so its very first
    // progress event already reaches this agent's console.
    const callId = callIdFor(agent.tenantId, requestId);
    await deps.redis
      .multi()
      .set(ownerKey(agent.id, callId), agent.id, 'EX', OWNERSHIP_TTL_SECONDS)
      .lpush(recentKey(agent.id), callId)
      .ltrim(recentKey(agent.id), 0, RECENT_KEPT - 1)
      .expire(recentKey(agent.id), OWNERSHIP_TTL_SECONDS)
      .exec();
    try {
      const { call } = await deps.calls.create(contextOf(agent), { requestId, a: agent.agentNumber, b: customer, userData: order });
      return consoleView(call);
    } catch (err) {
      await deps.redis.multi().del(ownerKey(agent.id, callId)).lrem(recentKey(agent.id), 1, callId).exec();
      throw err;
    }
  };

  const ownCall = async (agent: AgentTokenInfo, id: string): Promise<void> => {
    if ((await deps.redis.get(ownerKey(agent.id, id))) !== agent.id) throw new NotFoundError('call');
  };

  app.get('/console', { schema: { hide: true } }, async (_request, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'")
      .send(CONSOLE_PAGE),
  );

  void app.register(
    async (api) => {
      api.post<{ Body: Static<typeof SessionBody> }>(
        '/session',
        { schema: { hide: true, body: SessionBody, response: { 200: SessionReply, ...errors } } },
        async (request, reply) => {
          const agent = await deps.tokens.authenticate(request.body.token.trim());
          if (!agent) throw new AppError('unauthorized', 'unknown, expired or revoked agent token', 'token');
          // A session this browser still had ends: one sign-in, one session.
          const previous = cookieSession(request);
          if (previous) await deps.sessions.revoke(previous);
          const session = await deps.sessions.open(agent);
          setCookie(request, reply, session.id, session.maxAgeSeconds);
          void reply.header('cache-control', 'no-store');
          return {
            agent: { name: agent.name, agentNumber: maskPhone(agent.agentNumber) },
            session: { expiresAt: new Date(session.expiresAt).toISOString() },
          };
        },
      );

      // Sign-out: the session is revoked (its cookie, replayed, opens nothing) and the cookie cleared.
      api.delete('/session', { schema: { hide: true } }, async (request, reply) => {
        const id = cookieSession(request);
        if (id) {
          await deps.sessions.revoke(id);
          endStreamsOf(sessionKey(id));
        }
        clearCookie(request, reply);
        return reply.status(204).send();
      });

      void api.register(async (signedIn) => {
        signedIn.addHook('onRequest', async (request, reply) => {
          const id = cookieSession(request);
          if (!id) throw new AppError('unauthorized', 'sign in with your agent token');
          const session = await deps.sessions.authenticate(id);
          if (!session) {
            clearCookie(request, reply);
            throw new AppError('session_ended', 'your console session has ended (signed out, expired or revoked): sign in again');
          }
          request.agent = session.agent;
          request.consoleSession = session.key;
        });
        if (deps.audit) {
          registerAuditHook(
            signedIn,
            deps.audit,
            (request) => (request.agent ? contextOf(request.agent) : null),
            deps.onAuditError ?? (() => undefined),
          );
        }
        const agentOf = (request: FastifyRequest): AgentTokenInfo => {
          if (!request.agent) throw new AppError('unauthorized', 'sign in first');
          return request.agent;
        };

        signedIn.get('/me', { schema: { hide: true } }, async (request) => {
          const agent = agentOf(request);
          return { agent: { name: agent.name, agentNumber: maskPhone(agent.agentNumber) } };
        });

        signedIn.post<{ Body: Static<typeof CallBody> }>(
          '/calls',
          { schema: { hide: true, body: CallBody, response: errors } },
          async (request, reply) => {
            const agent = agentOf(request);
            const customer = parseRealNumber(request.body.customer, 'customer');
            const order = request.body.order?.trim() || undefined;
            return reply.status(202).send(await placeCall(agent, customer, order));
          },
        );

        signedIn.post<{ Params: Static<typeof IdParams> }>('/calls/:id/again', { schema: { hide: true, params: IdParams, response: errors } }, async (request, reply) => {
          const agent = agentOf(request);
          await ownCall(agent, request.params.id);
          const before = await deps.calls.get(contextOf(agent), request.params.id);
          return reply.status(202).send(await placeCall(agent, before.b, before.userData ?? undefined));
        });

        signedIn.get<{ Params: Static<typeof IdParams> }>('/calls/:id', { schema: { hide: true, params: IdParams } }, async (request) => {
          const agent = agentOf(request);
          await ownCall(agent, request.params.id);
          return consoleView(await deps.calls.get(contextOf(agent), request.params.id));
        });

        signedIn.post<{ Params: Static<typeof IdParams> }>('/calls/:id/hangup', { schema: { hide: true, params: IdParams } }, async (request) => {
          const agent = agentOf(request);
          await ownCall(agent, request.params.id);
          return consoleView(await deps.calls.cancel(contextOf(agent), request.params.id));
        });

        signedIn.get('/recent', { schema: { hide: true } }, async (request) => {
          const agent = agentOf(request);
          const ids = await deps.redis.lrange(recentKey(agent.id), 0, RECENT_KEPT - 1);
          const calls = await Promise.all(ids.map((id) => deps.calls.get(contextOf(agent), id).then(consoleView, () => null)));
          return { items: calls.filter((c): c is ConsoleCall => c !== null) };
        });

        signedIn.get('/events', { schema: { hide: true } }, async (request, reply) => {
          const agent = agentOf(request);
          const sessionId = cookieSession(request);
          const session = request.consoleSession;
          if (!sessionId || !session) throw new AppError('unauthorized', 'sign in first');
          reply.hijack();
          const res = reply.raw;
          let closed = false;
          // Read through a function: `closed` changes in callbacks, which narrowing cannot see.
          const isClosed = (): boolean => closed;
          let started = false;
          const backlog: string[] = [];
          let stopWatching: (() => void) | null = null;
          // Each beat also checks the session (without counting as use): an expired or revoked
          // session's stream ends, and the page, reconnecting, is told to sign in again.
          const keepAlive = setInterval(() => {
            if (started) send(': keep-alive\n\n');
            deps.sessions.authenticate(sessionId, { touch: false }).then(
              (live) => live || end(),
              (err: unknown) => request.log.warn({ err }, 'console session check failed'),
            );
          }, deps.keepAliveMs ?? 15_000);
          const end = (): void => {
            if (closed) return;
            closed = true;
            clearInterval(keepAlive);
            stopWatching?.();
            openStreams.delete(end);
            streamsOf.get(session)?.delete(end);
            if (streamsOf.get(session)?.size === 0) streamsOf.delete(session);
            if (!res.writableEnded) res.end();
          };
          const send = (chunk: string): void => {
            if (closed) return;
            if (started) res.write(chunk);
            else backlog.push(chunk);
          };
          openStreams.add(end);
          const streams = streamsOf.get(session) ?? new Set<() => void>();
          streamsOf.set(session, streams);
          streams.add(end);
          request.raw.on('close', end);

          const mine = new Set<string>();
          const others = new Set<string>();
          const isMine = async (callId: string): Promise<boolean> => {
            if (mine.has(callId)) return true;
            if (others.has(callId)) return false;
            // A call placed after this stream opened: its owner is read once, then remembered.
            const owned = (await deps.redis.get(ownerKey(agent.id, callId))) === agent.id;
            if (owned) mine.add(callId);
            else {
              if (others.size >= 1000) others.clear();
              others.add(callId);
            }
            return owned;
          };
          // Events are written in the order they came, also while an ownership check is on its way.
          let queue = Promise.resolve();
          const onEvent = (e: PlatformEvent): void => {
            const callId = e.callId;
            if (!callId || others.has(callId)) return;
            queue = queue
              .then(async () => {
                if (await isMine(callId)) send(`event: progress\ndata: ${JSON.stringify(pushed(e))}\n\n`);
              })
              .catch((err: unknown) => request.log.warn({ err }, 'console event not delivered'));
          };
          try {
            for (const id of await deps.redis.lrange(recentKey(agent.id), 0, RECENT_KEPT - 1)) mine.add(id);
            const stop = await deps.hub.watch(agent.tenantId, onEvent);
            if (isClosed()) {
              stop();
              return;
            }
            stopWatching = stop;
          } catch (err) {
            request.log.warn({ err }, 'console event stream not started');
            if (!isClosed()) res.writeHead(503, { 'content-type': 'text/plain' });
            end();
            return;
          }
          // Only now that events flow: the page reads the call again when the stream opens, so
          // nothing between that read and the first pushed event is lost.
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
          started = true;
          send(': connected\n\n');
          for (const chunk of backlog.splice(0)) send(chunk);
        });
      });
    },
    { prefix: '/console/api' },
  );
}
