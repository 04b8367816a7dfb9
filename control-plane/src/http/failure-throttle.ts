/**
 * A limit on wrong admin tokens per client address, shared by the console's sign-in and the
 * admin API's bearer check: after `maxFailures` wrong tokens within `windowMs`, that address
 * is refused (429) until its oldest failure leaves the window, with the right token too (else
 * the answer to a guess would still tell right from wrong).
 *
 * In this process only: the control plane may run without Redis, and a token of at least 16
 * random characters makes the limit defence in depth, not the only defence. With several
 * replicas an address gets the limit once per replica.
 *
 * Memory is bounded: each address keeps at most `maxFailures` timestamps, and at most
 * `maxAddresses` addresses are tracked; beyond that the address whose last failure is oldest
 * is forgotten. IPv6 addresses count per /64, which one host usually holds whole.
 */

/** Limits; the defaults are what the control plane uses. */
export interface FailureThrottleOptions {
  maxFailures?: number;
  windowMs?: number;
  maxAddresses?: number;
  /** The clock, in ms; injected by tests. */
  now?: () => number;
}

/** The throttle's verdict for an address that may not try now. */
export interface Refusal {
  /** Whole seconds until the oldest failure leaves the window (at least 1). */
  retryAfterS: number;
}

/** Counts failures per address and says when an address must wait. */
export interface FailureThrottle {
  /**
   * A refusal when `address` has used up its failures, else undefined. Undefined addresses
   * (a socket already gone has none) share one count.
   */
  check(address: string | undefined): Refusal | undefined;
  /** Records one wrong token from `address`. */
  fail(address: string | undefined): void;
  /** How many addresses are tracked (for tests of the bound). */
  readonly size: number;
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

/** Creates a throttle; see the file header for its rules. */
export function createFailureThrottle({
  maxFailures = 10,
  windowMs = 60_000,
  maxAddresses = 10_000,
  now = () => Date.now(),
}: FailureThrottleOptions = {}): FailureThrottle {
  // Insertion order is recency of the last failure (fail() re-inserts), so the first key is
  // the one to forget when the map is full.
  const failures = new Map<string, number[]>();

  function recent(key: string, at: number): number[] {
    const times = (failures.get(key) ?? []).filter((t) => t > at - windowMs);
    if (times.length === 0) failures.delete(key);
    return times;
  }

  return {
    check(address) {
      const at = now();
      const times = recent(addressKey(address), at);
      if (times.length < maxFailures) return undefined;
      return { retryAfterS: Math.max(1, Math.ceil((times[0]! + windowMs - at) / 1000)) };
    },
    fail(address) {
      const key = addressKey(address);
      const at = now();
      const times = recent(key, at);
      times.push(at);
      failures.delete(key);
      failures.set(key, times.slice(-maxFailures));
      while (failures.size > maxAddresses) failures.delete(failures.keys().next().value!);
    },
    get size() {
      return failures.size;
    },
  };
}
