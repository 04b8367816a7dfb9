/**
 * --from and --to: a UTC day (YYYY-MM-DD) or an ISO-8601 time. A day given to --to means
 * through the end of that day, as people read "--from 2026-11-01 --to 2026-11-30"; an
 * exact time is used as given (the range ends just before it). A time without an offset is
 * UTC, like every time the control plane reports.
 */
import { CliUsageError } from './errors.js';

const DAY_MS = 86_400_000;
const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/** The instant a --from or --to value names; CliUsageError for anything else. */
export function parseBound(flag: 'from' | 'to', value: string): Date {
  const day = DAY.exec(value);
  const time = day ? undefined : TIME.exec(value);
  let date = new Date(NaN);
  if (day) date = new Date(`${value}T00:00:00Z`);
  else if (time) {
    const [, ymd, hh, mm, ss = '00', fraction = '', zone = 'Z'] = time;
    const offset = zone.toUpperCase() === 'Z' ? 'Z' : zone.replace(/^([+-]\d{2})(\d{2})$/, '$1:$2');
    date = new Date(`${ymd}T${hh}:${mm}:${ss}${fraction.slice(0, 4)}${offset}`);
  }
  // Date rolls 2026-02-30 over to March; comparing the day back catches it.
  const ymd = day ? value : time?.[1];
  const valid =
    !Number.isNaN(date.getTime()) &&
    (!day || date.toISOString().slice(0, 10) === ymd) &&
    (!time || new Date(`${ymd}T00:00:00Z`).toISOString().slice(0, 10) === ymd);
  if (!valid)
    throw new CliUsageError(
      `--${flag} must be a day (YYYY-MM-DD) or an ISO-8601 time (2026-11-01T00:00:00Z), not ${JSON.stringify(value)}`,
    );
  return day && flag === 'to' ? new Date(date.getTime() + DAY_MS) : date;
}
