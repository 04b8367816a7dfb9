/**
 * CSV (RFC 4180) for the usage export. A cell that a spreadsheet would run as a formula
 * (starting with = + - @, tab, CR or LF) is prefixed with a quote: model names come from
 * requests, so the export must not carry someone's formula into an accountant's sheet. So
 * is one where such a sign follows leading white space (a sheet that trims on import runs
 * " =1+1"), or is the full-width form (＝ ＋ － ＠), which some spreadsheets read as the sign.
 */

const FORMULA_START = /^\s*[=+\-@\uFF1D\uFF0B\uFF0D\uFF20]|^[\t\r\n]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One cell, neutralised and quoted as needed. Numbers pass through (a negative number is no formula). */
export function csvCell(value: string): string {
  const safe = FORMULA_START.test(value) && !/^-?\d+(\.\d+)?$/.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** A whole document: a header line, then one line per row, CRLF line ends. */
export function toCsv<K extends string>(columns: readonly K[], rows: readonly Record<K, string>[]): string {
  const lines = [columns.map(csvCell).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvCell(row[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
