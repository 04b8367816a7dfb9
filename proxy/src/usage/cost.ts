/**
 * Prices metered usage from the configured table (USD per 1M tokens). No price is ever
 * invented: a model absent from the table yields `undefined`, which callers count as
 * unpriced rather than booking as $0.
 */
import type { Price } from '../config/schema.js';
import type { Usage } from './usage.js';

/**
 * The table's price for `model`. Own entries only: model ids come from clients and
 * upstreams, and one named "constructor" or "toString" is unpriced, not Object's.
 */
export function priceOf(pricing: Readonly<Record<string, Price>>, model: string): Price | undefined {
  return Object.hasOwn(pricing, model) ? pricing[model] : undefined;
}

/** Cost in USD of `usage` at `price`, or undefined when the model has no price. */
export function costOf(usage: Usage, price: Price | undefined): number | undefined {
  if (!price) return undefined;
  const input = usage.input ?? 0;
  const cached = Math.min(usage.cachedInput ?? 0, input);
  const written = Math.min(usage.cacheWrite ?? 0, input - cached);
  const fresh = input - cached - written;
  const cost =
    fresh * price.input +
    cached * (price.cached_input ?? price.input) +
    written * (price.cache_write ?? price.input) +
    (usage.output ?? 0) * price.output;
  // `cost` is in micro-dollars. Rounded to a millionth of one (1e-12 USD), far below any
  // price, and divided once: the access log's and the span's cost_usd read 0.0000033, not
  // 0.0000032999999999999997.
  return Math.round(cost * 1_000_000) / 1e12;
}
