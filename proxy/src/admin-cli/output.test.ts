/**
 * The table shows what tenants' requests put in a cell (model names) escaped where it would
 * change what the terminal shows: controls, and the invisible characters that reorder or
 * break a line.
 */
import { describe, expect, it } from 'vitest';
import { renderRows } from './output.js';

const columns = [
  { header: 'model', value: (r: { model: string; cost: number }) => r.model },
  { header: 'cost_usd', value: (r: { model: string; cost: number }) => r.cost, numeric: true },
];

describe('the table format', () => {
  it.each([
    ['a right-to-left override', '\u202e', '\\u202e'],
    ['a line separator', '\u2028', '\\u2028'],
    ['a zero-width space', '\u200b', '\\u200b'],
    ['a first-strong isolate', '\u2068', '\\u2068'],
    ['a byte-order mark', '\ufeff', '\\ufeff'],
    ['an escape', '\u001b', '\\u001b'],
  ])('escapes %s in a model name', (_what, char, escaped) => {
    const out = renderRows([{ model: `gpt${char}4o`, cost: 12.5 }], columns, 'table');
    expect(out).toContain(`gpt${escaped}4o`);
    expect(out).not.toContain(char);
  });

  it('keeps letters of any script as they are', () => {
    const out = renderRows([{ model: 'модель-ج', cost: 1 }], columns, 'table');
    expect(out).toContain('модель-ج');
  });
});
