/**
 * One CSV (RFC 4180) cell, for the console's usage export and the CLI's `--format csv`. A
 * cell a spreadsheet would run as a formula (starting with = + - @, tab, CR or LF) is
 * prefixed with a quote: model names come from requests and upstream answers, so an export
 * must not carry someone's formula into an accountant's sheet. So is one where such a sign
 * follows leading white space (a sheet that trims on import runs " =1+1"), or is the
 * full-width form (＝ ＋ － ＠), which some spreadsheets read as the sign. The CLI had a
 * weaker copy of this, missing those three (found by review).
 */

const FORMULA_START = /^\s*[=+\-@\uFF1D\uFF0B\uFF0D\uFF20]|^[\t\r\n]/;
const NEEDS_QUOTES = /[",\r\n]/;
/** A plain number, a negative one or one in exponent form included: no formula. */
const NUMBER = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i;

/** One cell, neutralised and quoted as needed. */
export function csvCell(value: string): string {
  const safe = FORMULA_START.test(value) && !NUMBER.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
