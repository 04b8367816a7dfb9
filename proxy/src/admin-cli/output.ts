/**
 * What the admin commands print: a table with aligned columns for people, CSV (RFC 4180:
 * quoted where needed, CRLF line ends) for spreadsheets, JSON for scripts. Values come from
 * the API and in part from tenants' requests (model names), so the table shows control
 * characters escaped (no terminal escape sequences reach the screen) and the CSV neutralises
 * cells a spreadsheet would run as a formula, as the console's export does.
 */
import { csvCell } from '@lanekeeper/contract';
import { CliUsageError } from './errors.js';

export const FORMATS = ['table', 'csv', 'json'] as const;
export type Format = (typeof FORMATS)[number];

/** The --format flag's value; table when absent. */
export function formatOf(value: string | undefined): Format {
  if (value === undefined) return 'table';
  if ((FORMATS as readonly string[]).includes(value)) return value as Format;
  throw new CliUsageError(`--format must be one of ${FORMATS.join(', ')}, not ${JSON.stringify(value)}`);
}

/** One column: its header and how to read it from a row. */
export interface Column<T> {
  header: string;
  value(row: T): unknown;
  /** Numbers read better right-aligned. */
  numeric?: boolean;
}

/** A value as one line of text: objects as compact JSON, null and undefined as empty. */
function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// C0 and C1 controls and DEL: shown as \u escapes, so a cell cannot move the cursor or recolour the
// terminal. So are the invisible ones that change what is shown: bidi overrides and isolates (a
// right-to-left override in a model name turned the rest of its row around, numbers included),
// line and paragraph separators, zero-width characters and the byte-order mark.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
const forScreen = (cell: string) =>
  cell.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

function alignedTable(header: string[], rows: string[][], numeric: boolean[]): string {
  const cells = [header, ...rows].map((row) => row.map(forScreen));
  const widths = header.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells
    .map((row) =>
      row
        .map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

/**
 * A list: one row per item under the columns (table and CSV), or the items themselves
 * (JSON). `footer` rows (a total) appear in the table only: in CSV they would be summed again.
 */
export function renderRows<T>(
  rows: readonly T[],
  columns: readonly Column<T>[],
  format: Format,
  opts: { json?: unknown; footer?: T[] } = {},
): string {
  if (format === 'json') return `${JSON.stringify(opts.json ?? rows, null, 2)}\n`;
  const header = columns.map((c) => c.header);
  const body = rows.map((row) => columns.map((c) => text(c.value(row))));
  if (format === 'csv') return [header, ...body].map((line) => `${line.map(csvCell).join(',')}\r\n`).join('');
  const footer = (opts.footer ?? []).map((row) => columns.map((c) => text(c.value(row))));
  const table = alignedTable(
    header,
    [...body, ...footer],
    columns.map((c) => c.numeric === true),
  );
  return rows.length === 0 && footer.length === 0 ? `${table}(none)\n` : table;
}

/** One object: field and value per line (table), a header and one row (CSV), or JSON. */
export function renderObject(object: Record<string, unknown>, format: Format): string {
  if (format === 'json') return `${JSON.stringify(object, null, 2)}\n`;
  const fields = Object.keys(object);
  if (format === 'csv')
    return `${fields.map(csvCell).join(',')}\r\n${fields.map((f) => csvCell(text(object[f]))).join(',')}\r\n`;
  const widths = Math.max(...fields.map((f) => forScreen(f).length));
  return fields
    .map((f) => `${forScreen(f).padEnd(widths)}  ${forScreen(text(object[f]))}`.trimEnd() + '\n')
    .join('');
}
