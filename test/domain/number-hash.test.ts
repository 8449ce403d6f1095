import { numberHasher, tenantNumberHash } from '../../src/domain/number-hash';

// Known answers, computed with Python's hmac module: Redis keys and abuse flags written by any
// earlier version must be found again, so the hash of a number never changes.
describe('number hash', () => {
  it('is HMAC-SHA256 under the platform key, first 32 hex digits', () => {
    expect(numberHasher('0123456789abcdef0123456789abcdef')('t1|13800138000')).toBe('444ade83288d4d8983e9061359074efb');
    expect(numberHasher('k'.repeat(100))('x')).toBe('8c1858bff6cf9cb73708b4b54f43bca6');
  });

  it('takes the key as UTF-8, whatever characters it has', () => {
    expect(numberHasher('号码保护-numguard-secret-key-0123456789')('13800138000')).toBe('35139b3ed72fa52d21d0d046cc884f7c');
  });

  it('scopes a number by tenant', () => {
    const hash = numberHasher('0123456789abcdef0123456789abcdef');
    expect(tenantNumberHash(hash, 't1', '13800138000')).toBe('444ade83288d4d8983e9061359074efb');
    expect(tenantNumberHash(hash, 't2', '13800138000')).not.toBe(tenantNumberHash(hash, 't1', '13800138000'));
  });

  it('refuses a key shorter than 32 characters', () => {
    expect(() => numberHasher('x'.repeat(31))).toThrow('at least 32 characters');
  });
});
