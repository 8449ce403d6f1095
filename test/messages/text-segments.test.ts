import { characterCount, concatenationFromSar, concatenationOf, concatenationUdh, encodingFor, lengthIn, MAX_PARTS, reassemble, segmentText } from '../../src/messages/text-segments';

describe('text segments', () => {
  it('chooses GSM 7-bit for the default alphabet and UCS-2 for anything else', () => {
    expect(encodingFor('Hello @ £5, see you at 6!')).toBe('gsm7');
    expect(encodingFor('price: 5€ [approx]')).toBe('gsm7');
    expect(encodingFor('你好')).toBe('ucs2');
    expect(encodingFor('ok 👍')).toBe('ucs2');
    expect(encodingFor('raw \u001b escape')).toBe('ucs2');
  });

  it('counts extension characters as two septets and astral characters as two UCS-2 units', () => {
    expect(lengthIn('a€[', 'gsm7')).toBe(5);
    expect(lengthIn('你👍', 'ucs2')).toBe(3);
    expect(characterCount('你👍')).toBe(2);
  });

  it('keeps a text that fits one part whole: 160 septets or 70 UCS-2 units', () => {
    expect(segmentText('a'.repeat(160)).parts).toHaveLength(1);
    expect(segmentText('你'.repeat(70))).toEqual({ encoding: 'ucs2', parts: ['你'.repeat(70)] });
  });

  it('splits longer texts into 153-septet or 67-unit parts that join back to the text', () => {
    const gsm = 'b'.repeat(161);
    expect(segmentText(gsm).parts.map((p) => p.length)).toEqual([153, 8]);
    const ucs = '字'.repeat(71);
    expect(segmentText(ucs).parts.map((p) => p.length)).toEqual([67, 4]);
    expect(segmentText(ucs).parts.join('')).toBe(ucs);
  });

  it('never cuts a surrogate pair or an escape from its character', () => {
    const emoji = `${'x'.repeat(66)}👍${'y'.repeat(10)}`;
    const parts = segmentText(emoji).parts;
    expect(parts[0]).toBe('x'.repeat(66));
    expect(parts.join('')).toBe(emoji);
    const euro = `${'a'.repeat(152)}€${'b'.repeat(10)}`;
    const gsmParts = segmentText(euro).parts;
    expect(gsmParts[0]).toBe('a'.repeat(152));
    expect(lengthIn(gsmParts[1]!, 'gsm7')).toBe(12);
  });

  it(`refuses more than ${MAX_PARTS} parts`, () => {
    expect(() => segmentText('字'.repeat(67 * MAX_PARTS + 1))).toThrow(RangeError);
  });

  it('reads concatenation from a UDH (8- and 16-bit references) or sar_ TLVs, and writes the 8-bit form', () => {
    expect(concatenationOf([Buffer.from([0x00, 0x03, 0x2a, 3, 2])])).toEqual({ reference: 0x2a, total: 3, sequence: 2 });
    expect(concatenationOf([Buffer.from([0x08, 0x04, 0x01, 0x02, 2, 1])])).toEqual({ reference: 0x0102, total: 2, sequence: 1 });
    expect(concatenationOf([Buffer.from([0x00, 0x03, 0x2a, 3, 4])])).toBeNull();
    expect(concatenationOf([])).toBeNull();
    expect(concatenationFromSar(7, 2, 2)).toEqual({ reference: 7, total: 2, sequence: 2 });
    expect(concatenationFromSar(7, undefined, 2)).toBeNull();
    expect([...concatenationUdh(0x12a, 3, 1)]).toEqual([0x05, 0x00, 0x03, 0x2a, 3, 1]);
  });

  it('reassembles parts in sequence order, only once all are there', () => {
    const part = (sequence: number, text: string) => ({ reference: 1, total: 3, sequence, text });
    expect(reassemble([part(2, 'b'), part(1, 'a')])).toBeNull();
    expect(reassemble([part(3, 'c'), part(1, 'a'), part(2, 'b')])).toBe('abc');
    expect(reassemble([])).toBeNull();
  });
});
