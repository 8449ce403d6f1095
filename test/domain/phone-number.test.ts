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
});
