/**
 * A limit on wrong admin tokens per client address, shared by the console's sign-in and the
 * admin API's bearer check: after `maxFailures` wrong tokens within `windowMs`, that address
 * is refused (429) until its oldest failure leaves the window, with the right token too (else
 * the answer to a guess would still tell right from wrong).
 *
 * Counted in PostgreSQL (migration 0003, `auth_attempt`), which every control plane has
 * (the embedded one too): every replica shares the count and a restart keeps it. Each attempt
 * is settled in one call under the address's row lock, after the token was compared, so
 * concurrent guesses are decided one at a time: a burst of a hundred wrong tokens gets ten
 * answers of 401 and ninety of 429, never a hundred verdicts.
 *
 * A row holds only failures still inside the window and goes once they have aged out, so the
 * table follows the wrong tokens of the last minute, not every address ever seen; there is no
 * table of addresses to push a counted one out of. IPv6 addresses count per /64, which one
 * host usually holds whole.
 */
import { createHash } from 'node:crypto';
import type { Db } from '../stores/postgres.js';

/** Limits; the defaults are what the control plane uses. */
export interface FailureThrottleOptions {
  maxFailures?: number;
  windowMs?: number;
  /**
   * The clock, in ms since the epoch; injected by tests. Each replica's own: a skew of
   * milliseconds between replicas is nothing to a window of a minute.
   */
  now?: () => number;
}

/** The throttle's verdict for an address that may not try now. */
export interface Refusal {
  /** Whole seconds until the oldest failure leaves the window (at least 1). */
  retryAfterS: number;
}

/** Counts wrong tokens per address and says when an address must wait. */
export interface FailureThrottle {
  /**
   * Settles one attempt from `address`, once its token has been compared: a refusal when the
   * address has used up its failures (this attempt is then not counted, right or wrong), else
   * undefined, the attempt counted when `wrong`. A request without a token is no guess:
   * `wrong` false. Undefined addresses (a socket already gone has none) share one count.
   */
  attempt(address: string | undefined, wrong: boolean): Promise<Refusal | undefined>;
  /**
   * Whether `address` must wait, without settling an attempt: for a request that presented
   * no token, which is no guess and so has nothing for timing to tell. One read, no row
   * written or locked: such requests cost the database no more than that.
   */
  blocked(address: string | undefined): Promise<Refusal | undefined>;
  /**
   * Deletes every address whose failures have all left the window; returns how many. Attempts
   * do this a few rows at a time; this is for a quiet control plane, so that no client
   * address stays stored for long when nobody calls.
   */
  sweep(): Promise<number>;
}

/** The key an address is counted under: IPv4 whole (also when IPv4-mapped), IPv6 by /64. */
export function addressKey(address: string | undefined): string {
  if (address === undefined) return '';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.toLowerCase().split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array(Math.max(8 - left.length - right.length, 0)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/**
 * The key an address is stored under: `addressKey`, or its digest when it is not the short
 * address text a socket gives (an X-Forwarded-For entry from a trusted proxy can be any
 * text, and a primary key has a size limit and takes no NUL).
 */
export function storedKey(address: string | undefined): string {
  const key = addressKey(address);
  return key.length <= 64 && /^[0-9a-z.:/]*$/.test(key)
    ? key
    : `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

function refusalOf(waitMs: number | null | undefined): Refusal | undefined {
  return waitMs === null || waitMs === undefined
    ? undefined
    : { retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) };
}

/** Creates a throttle counting in `db`; see the file header for its rules. */
export function createFailureThrottle(
  db: Db,
  { maxFailures = 10, windowMs = 60_000, now = () => Date.now() }: FailureThrottleOptions = {},
): FailureThrottle {
  return {
    async attempt(address, wrong) {
      const { rows } = await db.query<{ wait_ms: number | null }>(
        `SELECT auth_attempt($1, $2, $3::timestamptz, $4 * interval '1 millisecond', $5) AS wait_ms`,
        [storedKey(address), wrong, new Date(now()).toISOString(), windowMs, maxFailures],
      );
      return refusalOf(rows[0]?.wait_ms);
    },
    async blocked(address) {
      const { rows } = await db.query<{ wait_ms: number | null }>(
        `SELECT CASE WHEN count(*) >= $4
                  THEN greatest(extract(epoch FROM (min(t) + $3 * interval '1 millisecond' - $2::timestamptz)) * 1000, 0)
                END AS wait_ms
           FROM auth_failures, unnest(times) AS t
          WHERE address = $1 AND t > $2::timestamptz - $3 * interval '1 millisecond'`,
        [storedKey(address), new Date(now()).toISOString(), windowMs, maxFailures],
      );
      return refusalOf(rows[0]?.wait_ms);
    },
    async sweep() {
      const { rowCount } = await db.query(
        `DELETE FROM auth_failures WHERE last_failure <= $1::timestamptz - $2 * interval '1 millisecond'`,
        [new Date(now()).toISOString(), windowMs],
      );
      return rowCount ?? 0;
    },
  };
}
