import { checkPublicHost, isPublicAddress } from '../../src/webhooks/public-address';
import { startTestSystem, type TestSystem } from '../support/system';

describe('webhook URLs must reach public addresses (no SSRF into the operator network)', () => {
  it('tells public addresses from private, loopback, link-local and mapped ones', async () => {
    for (const a of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111']) expect(isPublicAddress(a)).toBe(true);
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.9', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fd00::1', 'fe80::1', '::ffff:10.0.0.1']) {
      expect(isPublicAddress(a)).toBe(false);
    }
    expect(await checkPublicHost('[::1]')).toEqual({ ok: false, reason: 'not_public' });
    expect(await checkPublicHost('localhost')).toEqual({ ok: false, reason: 'not_public' });
    expect(await checkPublicHost('no-such-host.invalid')).toEqual({ ok: false, reason: 'unresolvable' });
  });

  describe('PUT /v1/webhook with the guard on', () => {
    let sys: TestSystem;
    beforeAll(async () => {
      sys = await startTestSystem({ env: { WEBHOOK_ALLOW_PRIVATE_URLS: 'false' } });
    });
    afterAll(async () => {
      await sys?.stop();
    });

    it.each([
      ['http://127.0.0.1:8080/admin/queues', 'webhook_url_not_public'],
      ['http://169.254.169.254/latest/meta-data', 'webhook_url_not_public'],
      ['https://10.0.0.7/hook', 'webhook_url_not_public'],
      ['http://localhost/hook', 'webhook_url_not_public'],
      ['https://no-such-host.invalid/hook', 'webhook_url_unresolvable'],
    ])('%s is refused with %s', async (url, code) => {
      const res = await sys.api<{ error: { code: string; field: string } }>('PUT', '/v1/webhook', { url, secret: 's3cret-0123456789' });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code, field: 'url' });
    });

    it('a public address is accepted', async () => {
      const res = await sys.api('PUT', '/v1/webhook', { url: 'https://93.184.216.34/hooks/numguard', secret: 's3cret-0123456789' });
      expect(res.status).toBe(200);
    });
  });
});
