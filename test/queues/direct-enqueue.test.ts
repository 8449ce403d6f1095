import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { SCHEMA_FILES, schemaText } from '../../src/cli/write-schemas';
import { enqueueClickToDial, InvalidJobError, callbackQueueName, CLICK_TO_DIAL_JOB_NAME } from '../../src';
import { signClickToDialJob, type ClickToDialJobData } from '../../src/calls/click-to-dial-job';
import { createRedis } from '../../src/stores/redis';
import { startTestSystem, X, type TestSystem } from '../support/system';
import { waitUntil } from '../support/wait';

describe('backends queue click-to-dial jobs straight into BullMQ', () => {
  let sys: TestSystem;
  let backendRedis: Redis;
  let rawQueue: Queue;
  let events: QueueEvents;
  let eventsRedis: Redis;
  const address = () => ({ connection: backendRedis, prefix: sys.env.REDIS_PREFIX!, gateway: 'carrier' });
  const key = () => ({ keyId: sys.apiKeyId, apiKey: sys.apiKey });

  beforeAll(async () => {
    sys = await startTestSystem();
    backendRedis = createRedis('redis://127.0.0.1:6379');
    rawQueue = new Queue(callbackQueueName('carrier'), { connection: backendRedis, prefix: sys.env.REDIS_PREFIX! });
    eventsRedis = createRedis('redis://127.0.0.1:6379');
    events = new QueueEvents(callbackQueueName('carrier'), { connection: eventsRedis, prefix: sys.env.REDIS_PREFIX! });
    await events.waitUntilReady();
  });
  afterAll(async () => {
    await events?.close();
    await eventsRedis?.quit();
    await rawQueue?.close();
    await backendRedis?.quit();
    await sys?.stop();
  });

  it('a valid job is rung once, appears in the call API and the CDR list', async () => {
    const a = '13800005001';
    const b = '13900005001';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 500 });
    const callId = await enqueueClickToDial(address(), { tenantId: sys.tenantId, requestId: 'direct-1', a, b, userData: 'order 77' }, key());
    const done = await sys.waitForCall(callId);
    expect(done).toMatchObject({ requestId: 'direct-1', a, b, x: X, result: 'connected', userData: 'order 77' });
    expect(sys.sim.invitesTo(a)).toHaveLength(1);
    expect(sys.sim.invitesTo(b)).toHaveLength(1);
    const list = await sys.api<{ items: Array<{ callId: string }> }>('GET', '/v1/cdrs?userData=order%2077');
    expect(list.body.items.map((c) => c.callId)).toEqual([callId]);
  });

  it('queueing the same requestId twice (and again after the call) rings once', async () => {
    const a = '13800005002';
    const b = '13900005002';
    sys.sim.setPhone(a, { answer: 'answer' });
    sys.sim.setPhone(b, { answer: 'answer', hangupAfterMs: 300 });
    const payload = { tenantId: sys.tenantId, requestId: 'direct-dup', a, b };
    const [id1, id2] = await Promise.all([enqueueClickToDial(rawQueue, payload, key()), enqueueClickToDial(address(), payload, key())]);
    expect(id2).toBe(id1);
    await sys.waitForCall(id1);
    // After completion the job may be gone from the queue; the recorded call still stops a second ring.
    const job = await rawQueue.getJob(id1);
    if (job && (await job.getState()) !== 'completed') await job.waitUntilFinished(events, 10_000);
    await job?.remove();
    await enqueueClickToDial(rawQueue, payload, key());
    // The worker has had its go at the job queued again (finished, or already removed): a second ring would have happened by then.
    await waitUntil('the job queued again to be finished', async () => {
      const again = await rawQueue.getJob(id1);
      return !again || ['completed', 'failed'].includes(await again.getState());
    });
    expect(sys.sim.invitesTo(a)).toHaveLength(1);
    const [rows] = await sys.app.pool.query('SELECT COUNT(*) AS n FROM cdrs WHERE call_id = ?', [id1]);
    expect((rows as Array<{ n: number }>)[0]!.n).toBe(1);
  });

  it('the API and the queue agree: the same requestId through both is one call', async () => {
    const a = '13800005003';
    const b = '13900005003';
    sys.sim.setPhone(a, { answer: 'busy' });
    const viaApi = await sys.placeCall({ requestId: 'both-ways', a, b });
    const viaQueue = await enqueueClickToDial(address(), { tenantId: sys.tenantId, requestId: 'both-ways', a, b }, key());
    expect(viaQueue).toBe(viaApi.id);
    await sys.waitForCall(viaApi.id);
    expect(sys.sim.invitesTo(a)).toHaveLength(1);
  });

  it('the producer refuses a bad payload before it is queued', async () => {
    await expect(enqueueClickToDial(address(), { tenantId: sys.tenantId, requestId: 'p-1', a: '12', b: '13900005009' }, key())).rejects.toMatchObject({
      code: 'invalid_phone_number',
      field: 'a',
    });
    await expect(
      enqueueClickToDial(address(), { tenantId: sys.tenantId, requestId: 'p-2', a: '13800005009', b: '13900005009', userData: 'u'.repeat(257) }, key()),
    ).rejects.toBeInstanceOf(InvalidJobError);
  });

  const valid = (over: Record<string, unknown>) => ({ v: 1, tenantId: 'set-below', requestId: 'bad', a: '13800005100', b: '13900005100', ...over });
  it.each([
    ['a missing field', { b: undefined }, 'missing_field: b'],
    ['a bad number', { a: '999' }, 'invalid_phone_number: a'],
    ['a wrong type', { record: 'yes' }, 'invalid_field: record'],
    ['an unknown field', { colour: 'blue' }, 'invalid_field'],
    ['oversize userData', { userData: 'u'.repeat(257) }, 'invalid_field: userData'],
    ['an unknown version', { v: 2 }, 'invalid_field: v'],
    ['a forbidden display mode', { displayMode: 'passthrough', tenantId: 'strict' }, 'passthrough_forbidden: displayMode'],
    ["another tenant's X", { x: '700200000000001', tenantId: 'strict' }, 'x_not_in_pool: x'],
  ] as Array<[string, Record<string, unknown>, string]>)('a signed job with %s fails at once with its reason, without retry, ringing nobody', async (_name, over, reason) => {
    const strict = await sys.tenants.create({ name: 'strict', defaultX: X });
    const strictKey = await sys.tenants.createApiKey(strict.id, 'k');
    const data: Record<string, unknown> = valid({ tenantId: sys.tenantId, ...over });
    const signer = over.tenantId === 'strict' ? { keyId: strictKey.id, apiKey: strictKey.key } : key();
    if (over.tenantId === 'strict') data.tenantId = strict.id;
    if ('b' in over && over.b === undefined) delete data.b;
    await expectRefused(signClickToDialJob(data as ClickToDialJobData, signer), reason);
  });

  /** Queues the job raw (as whoever can write to Redis would) and expects it refused at once, nobody rung. */
  async function expectRefused(data: unknown, reason: string): Promise<void> {
    const before = sys.sim.originateCount();
    const job = await rawQueue.add(CLICK_TO_DIAL_JOB_NAME, data, { attempts: 5 });
    await expect(job.waitUntilFinished(events, 10_000)).rejects.toThrow(reason);
    const failed = await rawQueue.getJob(job.id!);
    expect(failed!.attemptsMade).toBe(1);
    expect(failed!.failedReason).toContain(reason);
    expect(sys.sim.originateCount()).toBe(before);
    expect(sys.sim.invitesTo('13800005200')).toHaveLength(0);
  }

  it('writing to Redis is not a credential: unsigned, forged, tampered, cross-tenant and revoked-key jobs ring nobody', async () => {
    const job = { v: 1 as const, tenantId: sys.tenantId, requestId: 'forge', a: '13800005200', b: '13900005200' };
    sys.sim.setPhone('13800005200', { answer: 'answer' });
    await expectRefused(job, 'unsigned_job: auth');
    await expectRefused({ ...job, auth: { keyId: sys.apiKeyId, signature: 'f'.repeat(64) } }, 'bad_signature: auth');
    await expectRefused({ ...signClickToDialJob(job, key()), b: '13900005201' }, 'bad_signature: auth');

    const other = await sys.tenants.create({ name: 'other' });
    const otherKey = await sys.tenants.createApiKey(other.id, 'k');
    // Signed with another tenant's key, or with this tenant's key id and another key.
    await expectRefused(signClickToDialJob(job, { keyId: otherKey.id, apiKey: otherKey.key }), 'bad_signature: auth');
    await expectRefused(signClickToDialJob(job, { keyId: sys.apiKeyId, apiKey: otherKey.key }), 'bad_signature: auth');

    const spare = await sys.tenants.createApiKey(sys.tenantId, 'spare');
    await sys.tenants.revokeApiKey(sys.tenantId, spare.id);
    await expectRefused(signClickToDialJob(job, { keyId: spare.id, apiKey: spare.key }), 'bad_signature: auth');
  });

  it('the JSON Schema file in the repository is the contract the worker enforces', () => {
    for (const [file, schema] of Object.entries(SCHEMA_FILES)) {
      const committed = readFileSync(path.resolve(__dirname, '../../schemas', file), 'utf8');
      expect(committed).toBe(schemaText(schema));
    }
  });
});
