/** The CSV cell of the console's usage export and the CLI's `--format csv`. */
import { describe, expect, it } from 'vitest';
import { csvCell } from './csv.js';

describe('csvCell', () => {
  it('neutralises formulas and quotes separators, leaving numbers alone', () => {
    for (const number of ['1e5', '-1E-3', '42']) expect(csvCell(number)).toBe(number);
    expect(csvCell('=HYPERLINK("http://x")')).toBe(`"'=HYPERLINK(""http://x"")"`);
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('+1+2')).toBe("'+1+2");
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('-0.5')).toBe('-0.5');
    expect(csvCell('gpt-4o-mini')).toBe('gpt-4o-mini');
    // After white space a sheet may trim, and the full-width signs.
    for (const value of [
      ' =1+1',
      '\u00a0=1+1',
      '\u3000+1',
      ' \t@x',
      '\uFF1D1+1',
      '\uFF0B1',
      '\uFF0D1',
      '\uFF20x',
    ])
      expect(csvCell(value), JSON.stringify(value)).toMatch(/^"?'/);
    expect(csvCell('\n=1+1')).toBe(`"'\n=1+1"`);
    expect(csvCell('model =1')).toBe('model =1');
  });
});
