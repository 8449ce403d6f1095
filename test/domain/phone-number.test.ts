import { maskPhone, maskPhonesInText, parsePhoneNumber, parsePrivacyNumber, parseRealNumber } from '../../src/domain/phone-number';
import { ValidationError } from '../../src/domain/errors';

describe('phone numbers', () => {
  it.each([
    ['13800138000', '13800138000', 'mobile'],
    ['+86 138-0013-8000', '13800138000', 'mobile'],
    ['0086 13800138000', '13800138000', 'mobile'],
    ['8613800138000', '13800138000', 'mobile'],
    ['010-12345678', '01012345678', 'fixed'],
    ['+86 10 12345678', '01012345678', 'fixed'],
    ['0755 1234 5678', '075512345678', 'fixed'],
    ['700100000000001', '700100000000001', 'x700'],
    ['95188', '95188', 'service95'],
    ['+44 20 7946 0958', '+442079460958', 'e164'],
    ['0044 20 7946 0958', '+442079460958', 'e164'],
  ])('normalizes %s', (input, digits, kind) => {
    expect(parsePhoneNumber(input, 'a')).toEqual({ digits, kind });
  });

  it.each(['', '12345', '1280000000', 'abc13800138000', '+0123', '7001000000000012', null, 42])('rejects %p naming the field', (input) => {
    expect(() => parsePhoneNumber(input, 'b')).toThrow(ValidationError);
    try {
      parsePhoneNumber(input, 'b');
    } catch (e) {
      expect((e as ValidationError).field).toBe('b');
      expect((e as ValidationError).code).toBe('invalid_phone_number');
    }
  });

  it('keeps privacy numbers out of A/B and legacy numbers out of X unless allowed', () => {
    expect(() => parseRealNumber('700100000000001', 'a')).toThrow(/real subscriber/);
    expect(() => parsePrivacyNumber('13800138000', 'x')).toThrow(/700 number/);
    expect(parsePrivacyNumber('13800138000', 'x', true)).toBe('13800138000');
  });

  it('masks numbers so they can be recognised but not called', () => {
    expect(maskPhone('13812345678')).toBe('138****5678');
    expect(maskPhone('+442079460958')).toBe('+442*****0958');
    expect(maskPhone('01012345678')).toBe('010****5678');
    expect(maskPhonesInText('A=13812345678 B=+8613900000002 X=700100000000001 id=1c6b5a0e-1111-4a2b-8c3d-123456789012'))
      .toBe('A=138****5678 B=+861******0002 X=700100000000001 id=1c6b5a0e-1111-4a2b-8c3d-123456789012');
  });

  it.each([
    ['138 1234 5678', '138****5678'],
    ['138-1234-5678', '138****5678'],
    ['138.1234.5678', '138****5678'],
    ['+86 138 1234 5678', '+861******5678'],
    ['0086 138 1234 5678', '008********5678'],
    ['86 138 1234 5678', '861******5678'],
    ['(010) 1234-5678', '010****5678'],
    ['0755-12345678', '075*****5678'],
    ['+86 10 1234 5678', '+861*****5678'],
    ['+44 20 7946 0958', '+442*****0958'],
    ['0044 20 7946 0958', '004*******0958'],
    ['+1 (555) 123-4567', '+155****4567'],
    ['local 1234-5678', 'local 12**5678'],
    ['call 138 1234 5678 2 times', 'call 138****5678 2 times'],
    ['A: 138 1234 5678, B: 139-0000-0002.', 'A: 138****5678, B: 139****0002.'],
    ['电话13812345678请回电', '电话138****5678请回电'],
    ['电话 138 1234 5678', '电话 138****5678'],
  ])('masks the formatted number in %p', (text, masked) => {
    expect(maskPhonesInText(text)).toBe(masked);
  });

  it.each([
    ['a 700 number, formatted', '700 1000 0000 0001'],
    ['a 700 number, dashed', '700-100-000-000-001'],
    ['a date', 'since 2026-11-20, at 2026-11-20T10:00:00Z'],
    ['a date and time', '2026-11-20 10:00:00'],
    ['an IP address', 'from 192.168.100.200'],
    ['a version', 'v1.2.3 build 20.4'],
    ['an amount', 'paid 1,234,567'],
    ['a list of digits', '1 2 3 4 5 6 7 8 9 0 1 2 3'],
    ['a uuid', 'id=1c6b5a0e-1111-4a2b-8c3d-123456789012'],
  ])('leaves %s readable', (_what, text) => {
    expect(maskPhonesInText(text)).toBe(text);
  });
});
