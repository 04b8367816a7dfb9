/** CSV (RFC 4180) for the usage export: cells as the contract's csvCell makes them (formulas neutralised). */
import { csvCell } from '@lanekeeper/contract';

/** A whole document: a header line, then one line per row, CRLF line ends. */
export function toCsv<K extends string>(columns: readonly K[], rows: readonly Record<K, string>[]): string {
  const lines = [columns.map(csvCell).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvCell(row[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
