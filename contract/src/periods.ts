/**
 * The UTC periods both sides count in: the hour a usage bucket covers, the day and month a
 * budget covers. The proxy's stores write keys named after them and the control plane reads
 * those keys, so the two must cut time the same way.
 */

/** Window lengths in ms: tokens per hour slides over the hour, requests per minute over the minute. */
export const HOUR_MS = 3_600_000;
export const MINUTE_MS = 60_000;

/** The start (ms) of the UTC hour containing `now`: the key of an hourly usage bucket. */
export function hourStart(now: number): number {
  return now - (now % HOUR_MS);
}

export const DAY_MS = 24 * HOUR_MS;

/**
 * Memoizes a function of time over fixed UTC periods (a day, an hour): calls within the
 * period of the previous call return the previous result instead of formatting a date again.
 * Stores call these on every admission, nearly always for the current period.
 */
export function perPeriod<T>(periodMs: number, build: (now: number) => T): (now: number) => T {
  let period = Number.NaN;
  let value: T | undefined;
  return (now) => {
    const current = Math.floor(now / periodMs);
    if (current !== period || value === undefined) {
      period = current;
      value = build(now);
    }
    return value;
  };
}

/**
 * The UTC day a timestamp falls in, its calendar month (keys such as "2026-11-29" and
 * "2026-11"), and the instants each ends: the budget windows both stores count spend in.
 */
export interface BudgetDay {
  readonly day: string;
  readonly month: string;
  readonly nextDay: number;
  readonly nextMonth: number;
}

export const budgetDay = perPeriod(DAY_MS, (now): BudgetDay => {
  const d = new Date(now);
  const [year, month, date] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()];
  const iso = d.toISOString();
  return Object.freeze({
    day: iso.slice(0, 10),
    month: iso.slice(0, 7),
    nextDay: Date.UTC(year, month, date + 1),
    nextMonth: Date.UTC(year, month + 1, 1),
  });
});

/** Keys naming the UTC day and month a timestamp falls in, e.g. "2026-11-29" and "2026-11". */
export function budgetWindows(now: number): { readonly day: string; readonly month: string } {
  return budgetDay(now);
}

/** Seconds until the next UTC midnight and the next UTC month start, for budget windows. */
export function budgetResets(now: number): { dayS: number; monthS: number } {
  const { nextDay, nextMonth } = budgetDay(now);
  return { dayS: Math.ceil((nextDay - now) / 1000), monthS: Math.ceil((nextMonth - now) / 1000) };
}
