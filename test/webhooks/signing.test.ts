import { createHmac } from 'node:crypto';
import { signWebhook, verifyWebhook, webhookHeaders } from '../../src/webhooks/signing';
import { deliveryErrorText } from '../../src/webhooks/webhook-store';

const secret = 'whsec_0123456789abcdef';
const body = JSON.stringify({ id: 'e1', type: 'call.completed', data: { cdr: { a: '13800138000' } } });

describe('webhook signatures', () => {
  it('a signed body verifies, and the signature is the documented HMAC of `${timestamp}.${body}`', () => {
    const now = 1_767_000_000_000;
    const headers = webhookHeaders(secret, 'e1', body, now);
    expect(headers['X-Numguard-Timestamp']).toBe('1767000000');
    const expected = createHmac('sha256', secret).update(`1767000000.${body}`).digest('hex');
    expect(headers['X-Numguard-Signature']).toBe(`v1=${expected}`);
    // Node lower-cases incoming header names.
    const incoming = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    expect(verifyWebhook(secret, incoming, body, 300, now + 10_000)).toEqual({ ok: true, eventId: 'e1', timestamp: 1_767_000_000 });
    expect(verifyWebhook(secret, new Headers(headers), Buffer.from(body), 300, now)).toMatchObject({ ok: true });
  });

  it('a tampered body, another secret or a missing header is rejected', () => {
    const now = Date.now();
    const headers = webhookHeaders(secret, 'e1', body, now);
    expect(verifyWebhook(secret, headers, body.replace('13800138000', '13800138001'), 300, now)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyWebhook('another-secret-0000', headers, body, 300, now)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyWebhook(secret, { ...headers, 'X-Numguard-Signature': 'v1=zz' }, body, 300, now)).toEqual({ ok: false, reason: 'bad_signature' });
    const unsigned = { ...headers };
    delete unsigned['X-Numguard-Signature'];
    expect(verifyWebhook(secret, unsigned, body, 300, now)).toEqual({ ok: false, reason: 'missing_signature' });
    const undated = { ...headers };
    delete undated['X-Numguard-Timestamp'];
    expect(verifyWebhook(secret, undated, body, 300, now)).toEqual({ ok: false, reason: 'missing_timestamp' });
  });

  it('a timestamp outside the tolerance is rejected even with a valid signature (replay)', () => {
    const signedAt = 1_767_000_000_000;
    const headers = webhookHeaders(secret, 'e1', body, signedAt);
    expect(verifyWebhook(secret, headers, body, 300, signedAt + 301_000)).toEqual({ ok: false, reason: 'stale_timestamp' });
    expect(verifyWebhook(secret, headers, body, 300, signedAt - 301_000)).toEqual({ ok: false, reason: 'stale_timestamp' });
    expect(verifyWebhook(secret, headers, body, 300, signedAt + 299_000)).toMatchObject({ ok: true });
    // Re-dating the request breaks the signature.
    expect(verifyWebhook(secret, { ...headers, 'X-Numguard-Timestamp': String(Math.floor(signedAt / 1000) + 400) }, body, 300, signedAt + 400_000)).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('any of several v1 signatures may match (secret rotation)', () => {
    const ts = 1_767_000_000;
    const both = `${signWebhook('old-secret-0123456789', ts, body)},${signWebhook(secret, ts, body)}`;
    expect(verifyWebhook(secret, { 'x-numguard-signature': both, 'x-numguard-timestamp': String(ts) }, body, 300, ts * 1000)).toMatchObject({ ok: true });
  });

  it('delivery errors shown to the tenant are short and have phone numbers masked', () => {
    const text = deliveryErrorText(`receiver said: unknown caller 13812345678 ${'x'.repeat(400)}`);
    expect(text).not.toContain('13812345678');
    expect(text).toContain('138****5678');
    expect(text.length).toBeLessThanOrEqual(255);
  });
});
