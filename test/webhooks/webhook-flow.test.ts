import { Redis } from 'ioredis';
import type { CallView } from '../../src/calls/types';
import { CdrQueue, cdrJobId } from '../../src/queues/cdr-queue';
import { AuditStore } from '../../src/stores/audit-store';
import type { Delivery } from '../../src/webhooks/webhook-store';
import { TEST_REDIS_URL } from '../support/redis';
import { startTestSystem, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';
import { makeOutcome } from '../stores/fixtures';
import { startReceiver, type Receiver } from './receiver';

interface ErrorBody {
  error: { code: string; field?: string };
}
interface WebhookView {
  url: string;
  events: string[] | null;
  enabled: boolean;
}

const SECRET = 'flow-test-secret-0123456789';

describe('webhooks end to end: API, signed deliveries, the delivery log', () => {
  let sys: TestSystem;
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    // A request nobody answers is held for 20 s: long enough to see that calls do not wait for it.
    sys = await startTestSystem({ env: { WEBHOOK_TIMEOUT_MS: '20000' } });
  });
  afterAll(async () => {
    // Closing the receivers first lets hanging deliveries fail at once, so the worker stops promptly.
    for (const r of receivers) await r.close();
    await sys?.stop();
  });

  async function receiver(reply?: Parameters<typeof startReceiver>[1]): Promise<Receiver> {
    const r = await startReceiver(SECRET, reply);
    receivers.push(r);
    return r;
  }

  async function deliveries(query = '', key?: string): Promise<Delivery[]> {
    const res = await sys.api<{ items: Delivery[] }>('GET', `/v1/webhook/deliveries${query}`, undefined, key);
    expect(res.status).toBe(200);
    return res.body.items;
  }

  it('rejects bad settings with a code and the field, and has no webhook until one is set', async () => {
    expect((await sys.api<ErrorBody>('GET', '/v1/webhook')).body.error.code).toBe('not_found');
    const cases: Array<[unknown, string, string]> = [
      [{ url: 'ftp://example.com/hook', secret: SECRET }, 'invalid_url', 'url'],
      [{ url: 'not a url', secret: SECRET }, 'invalid_url', 'url'],
      [{ url: 'https://example.com/hook', secret: 'short' }, 'secret_too_short', 'secret'],
      [{ url: 'https://example.com/hook', secret: SECRET, events: ['call.answered', 'call.exploded'] }, 'unknown_event_type', 'events'],
      [{ url: 'https://example.com/hook' }, 'missing_field', 'secret'],
      [{ url: 'https://example.com/hook', secret: SECRET, colour: 'red' }, 'unknown_field', 'colour'],
      [{ url: 'https://example.com/hook', secret: SECRET, events: [] }, 'invalid_field', 'events'],
    ];
    for (const [body, code, field] of cases) {
      const res = await sys.api<ErrorBody>('PUT', '/v1/webhook', body);
      expect({ status: res.status, ...res.body.error }).toMatchObject({ status: 400, code, field });
    }
    expect((await sys.api<ErrorBody>('GET', '/v1/webhook/deliveries?limit=abc')).status).toBe(400);
    expect((await sys.api<ErrorBody>('POST', '/v1/webhook/test')).status).toBe(404);
    expect((await sys.api('GET', '/v1/webhook')).status).toBe(404);
  });

  it('delivers answered, bridged and completed (with the CDR), signed, once each, and lists them in the log', async () => {
    const r = await receiver();
    const put = await sys.api<WebhookView>('PUT', '/v1/webhook', { url: r.url, secret: SECRET, events: ['call.answered', 'call.bridged', 'call.completed'] });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ url: r.url, events: ['call.answered', 'call.bridged', 'call.completed'], enabled: true });
    const got = await sys.api<WebhookView>('GET', '/v1/webhook');
    expect(got.body).toMatchObject({ url: r.url, enabled: true });
    expect(JSON.stringify(got.body)).not.toContain(SECRET);
    expect(JSON.stringify(put.body)).not.toContain(SECRET);

    const a = '13800041001';
    const b = '13900041001';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 400 });
    const call = await sys.placeCall({ requestId: 'webhook-flow-1', a, b, userData: 'order-17' });
    await sys.waitForCall(call.id);
    // Deliveries run concurrently, so they may arrive in any order: wait for all four.
    await r.waitFor((ws) => ws.filter((w) => w.payload.data.callId === call.id).length >= 4);

    const mine = r.received.filter((w) => w.payload.data.callId === call.id);
    expect(mine.every((w) => w.verification.ok)).toBe(true);
    expect(mine.map((w) => `${w.payload.type}${w.payload.data.leg ? `:${w.payload.data.leg}` : ''}`).sort()).toEqual(
      ['call.answered:a', 'call.answered:b', 'call.bridged', 'call.completed'].sort(),
    );
    expect(new Set(mine.map((w) => w.payload.id)).size).toBe(4);
    for (const w of mine) {
      expect(w.headers['x-numguard-event-id']).toBe(w.payload.id);
      expect(w.payload.tenantId).toBe(sys.tenantId);
      expect(Number.isNaN(Date.parse(w.payload.createdAt))).toBe(false);
    }
    const completed = mine.find((w) => w.payload.type === 'call.completed')!;
    const { body: cdrs } = await sys.api<{ items: Array<Record<string, unknown>> }>('GET', '/v1/cdrs');
    const cdr = cdrs.items.find((c) => c.callId === call.id);
    // The CDR exactly as /v1/cdrs shows it: the tenant's own numbers, userData, result.
    expect(completed.payload.data.cdr).toEqual(cdr);
    expect(completed.payload.data.cdr).toMatchObject({ result: 'connected', a, b, userData: 'order-17' });

    // The log lists each delivery once it is recorded (right after the 2xx).
    const ids = mine.map((w) => w.payload.id);
    const deadline = Date.now() + 10_000;
    let log: Delivery[] = [];
    while (Date.now() < deadline) {
      log = (await deliveries('?limit=200')).filter((d) => ids.includes(d.eventId));
      if (log.length === ids.length) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(log.map((d) => d.eventId).sort()).toEqual([...ids].sort());
    expect(log.every((d) => d.status === 'delivered' && d.attempt === 1 && d.httpStatus === 200 && d.url === r.url)).toBe(true);
    const byEvent = await deliveries(`?eventId=${completed.payload.id}`);
    expect(byEvent.map((d) => [d.eventId, d.eventType])).toEqual([[completed.payload.id, 'call.completed']]);

    // Another tenant sees neither the endpoint nor the log.
    const other = await sys.tenants.create({ name: 'other' });
    const { key } = await sys.tenants.createApiKey(other.id, 'k');
    expect(await deliveries('', key)).toEqual([]);
    expect((await sys.api('GET', '/v1/webhook', undefined, key)).status).toBe(404);
  });

  it('POST /v1/webhook/test sends a signed webhook.test event', async () => {
    const r = await receiver();
    expect((await sys.api('PUT', '/v1/webhook', { url: r.url, secret: SECRET, events: ['binding.expired'] })).status).toBe(200);
    const res = await sys.api<{ eventId: string }>('POST', '/v1/webhook/test');
    expect(res.status).toBe(202);
    await r.waitFor((ws) => ws.some((w) => w.payload.id === res.body.eventId));
    const w = r.received.find((x) => x.payload.id === res.body.eventId)!;
    expect(w.payload).toMatchObject({ type: 'webhook.test', tenantId: sys.tenantId });
    expect(w.verification.ok).toBe(true);

    expect((await sys.api('PUT', '/v1/webhook', { url: r.url, secret: SECRET, enabled: false })).status).toBe(200);
    expect((await sys.api<ErrorBody>('POST', '/v1/webhook/test')).body.error.code).toBe('webhook_disabled');
  });

  it('an endpoint that never answers does not delay calls', async () => {
    const r = await receiver(() => 'hang');
    expect((await sys.api('PUT', '/v1/webhook', { url: r.url, secret: SECRET })).status).toBe(200);
    const a = '13800041002';
    const b = '13900041002';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer' });
    const call = await sys.placeCall({ requestId: 'webhook-flow-hang', a, b });
    // Connected, with the call's first events' requests held open by the endpoint; then the call is ended.
    // (The tenant gets 5 requests in flight at once, WEBHOOK_TENANT_CONCURRENCY: later events wait for a slot.)
    await r.waitFor((ws) => ws.some((w) => w.payload.type === 'call.calling' && w.payload.data.callId === call.id));
    await sys.waitForCall(call.id, (c) => c.state === 'bridged');
    expect((await sys.api<CallView>('POST', `/v1/calls/${call.id}/cancel`)).status).toBe(200);
    const done = await sys.waitForCall(call.id);
    expect(done.cdr).not.toBeNull();
    // The call finished while every request to the endpoint was still unanswered.
    expect(r.answered()).toBe(0);
    expect(r.pending()).toBeGreaterThan(0);
    expect(r.pending()).toBeLessThanOrEqual(5);
    // Let the held requests fail now, so the tenant's slots are free for the next test.
    await r.close();
  });

  it('a finished call whose instance died before queueing call.completed still gets it, once, from the CDR job', async () => {
    const r = await receiver();
    expect((await sys.api('PUT', '/v1/webhook', { url: r.url, secret: SECRET, events: ['call.completed'] })).status).toBe(200);
    // What the dying instance left behind: the CDR job only (it is queued first), no live event at all.
    const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const cdrQueue = new CdrQueue({ connection, prefix: sys.env.REDIS_PREFIX! });
    try {
      const outcome = makeOutcome(sys.tenantId, {}, false);
      await cdrQueue.enqueue(outcome);
      await r.waitFor((ws) => ws.some((w) => w.payload.data.callId === outcome.cdr.callId));
      // the same CDR again (a redelivery, or the live path catching up): still one delivery
      const again = await cdrQueue.queue.add('cdr', outcome, { jobId: `${cdrJobId(outcome.cdr.callId)}-again` });
      await waitUntil('the repeated CDR job to be processed', async () => {
        const job = await cdrQueue.queue.getJob(again.id!);
        return !job || ['completed', 'failed'].includes(await job.getState());
      });
      // Nothing must follow: give a second delivery (queued by the repeated job) the time it would take to arrive.
      await new Promise((res) => setTimeout(res, 1500));
      const mine = r.received.filter((w) => w.payload.data.callId === outcome.cdr.callId);
      expect(mine.map((w) => w.payload.type)).toEqual(['call.completed']);
      expect(mine[0]!.verification.ok).toBe(true);
      expect(mine[0]!.payload.data.cdr).toMatchObject({ callId: outcome.cdr.callId, result: 'connected', a: outcome.cdr.a });
    } finally {
      await cdrQueue.close();
      await connection.quit();
    }
  });

  it('DELETE /v1/webhook removes the endpoint; changes are audited without the secret', async () => {
    expect((await sys.api('DELETE', '/v1/webhook')).status).toBe(204);
    expect((await sys.api('GET', '/v1/webhook')).status).toBe(404);
    expect((await sys.api('DELETE', '/v1/webhook')).status).toBe(404);
    // Audit entries are written after the responses, a batch at a time (within 0.2 s).
    const audit = await waitUntil('the delete audited', async () => {
      const entries = await new AuditStore(sys.app.pool).list(sys.tenantId);
      return entries[0]?.action === 'webhook.delete' ? entries : null;
    });
    const actions = audit.map((e) => e.action);
    expect(actions[0]).toBe('webhook.delete');
    expect(actions.filter((x) => x === 'webhook.set').length).toBeGreaterThanOrEqual(4);
    expect(JSON.stringify(audit)).not.toContain(SECRET);
  });
});
