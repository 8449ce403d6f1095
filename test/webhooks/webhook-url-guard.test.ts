import { checkPublicHost, isPublicAddress, NOT_PUBLIC_RANGES, notPublicRange } from '../../src/webhooks/public-address';
import { startTestSystem, type TestSystem } from '../support/system';

/** [address, why it must be refused] */
const BLOCKED: ReadonlyArray<readonly [string, string]> = [
  ['0.0.0.0', 'this network'],
  ['10.1.2.3', 'private'],
  ['172.16.0.9', 'private'],
  ['172.31.255.254', 'private'],
  ['192.168.1.1', 'private'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['169.254.169.254', 'cloud metadata'],
  ['100.64.0.1', 'carrier-grade NAT'],
  ['100.127.255.254', 'carrier-grade NAT'],
  ['192.0.0.8', 'IETF protocol assignments'],
  ['192.0.2.1', 'documentation'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.9', 'documentation'],
  ['198.18.0.1', 'benchmarking'],
  ['192.88.99.1', '6to4 relay'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'broadcast'],
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
  ['::ffff:7f00:1', 'IPv4-mapped loopback, hex'],
  ['::ffff:10.0.0.1', 'IPv4-mapped private'],
  ['::ffff:169.254.169.254', 'IPv4-mapped metadata'],
  ['::ffff:a9fe:a9fe', 'IPv4-mapped metadata, hex'],
  ['::10.0.0.1', 'IPv4-compatible'],
  ['::8.8.8.8', 'IPv4-compatible (deprecated form, even of a public address)'],
  ['::ffff:0:a00:1', 'IPv4-translated'],
  ['64:ff9b::a00:1', 'NAT64 of 10.0.0.1'],
  ['64:ff9b::169.254.169.254', 'NAT64 of the metadata address'],
  ['64:ff9b::7f00:1', 'NAT64 of loopback'],
  ['64:ff9b:1::a00:1', 'local-use NAT64'],
  ['64:ff9b:1::808:808', 'local-use NAT64, whatever it embeds'],
  ['2002:a00:1::1', '6to4 of 10.0.0.1'],
  ['2002:7f00:1::', '6to4 of loopback'],
  ['2002:808:808::1', '6to4 (deprecated), whatever it embeds'],
  ['2001:0:4136:e378:8000:63bf:f5ff:fffe', 'Teredo'],
  ['2001:0:a00:1::', 'Teredo with a private server address'],
  ['2001:2::1', 'benchmarking'],
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation'],
  ['100::1', 'discard-only'],
  ['fc00::1', 'unique local'],
  ['fd12:3456::1', 'unique local'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local with a zone'],
  ['febf::1', 'link-local'],
  ['fec0::1', 'site-local'],
  ['ff02::1', 'multicast'],
  ['ff05::1:3', 'multicast'],
  ['4000::1', 'not global unicast'],
  ['not-an-ip', 'not an address'],
];

const PUBLIC = ['8.8.8.8', '1.1.1.1', '93.184.216.34', '2606:4700::1111', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e', '::ffff:8.8.8.8', '64:ff9b::808:808'];

describe('webhook URLs must reach public addresses (no SSRF into the operator network)', () => {
  it.each(BLOCKED)('%s is refused (%s)', (address) => {
    expect(isPublicAddress(address)).toBe(false);
    expect(notPublicRange(address)).not.toBeNull();
  });

  it.each(PUBLIC)('%s is public', (address) => {
    expect(notPublicRange(address)).toBeNull();
  });

  it('every row of the range table parses and says why', () => {
    expect(NOT_PUBLIC_RANGES.length).toBeGreaterThan(30);
    for (const r of NOT_PUBLIC_RANGES) expect(r.why.length).toBeGreaterThan(0);
  });

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
      ['http://[64:ff9b::a9fe:a9fe]/latest/meta-data', 'webhook_url_not_public'],
      ['https://[2002:a00:7::1]/hook', 'webhook_url_not_public'],
      ['http://[::ffff:127.0.0.1]:8080/hook', 'webhook_url_not_public'],
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
