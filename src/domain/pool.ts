import { ValidationError } from './errors';

/** The 10,000 15-digit 700 numbers of an 11-digit block: `<block>0000` .. `<block>9999`. */
export function blockNumbers(block: string, area: string): Array<{ x: string; area: string }> {
  if (!/^700\d{8}$/.test(block)) throw new ValidationError('block', 'block must be 700 followed by 8 digits', 'invalid_block');
  return Array.from({ length: 10_000 }, (_, i) => ({ x: `${block}${String(i).padStart(4, '0')}`, area }));
}
