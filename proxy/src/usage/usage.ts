/**
 * Token usage as the proxy meters it, normalised across dialects. Every field is optional:
 * absent means "not reported", which differs from 0 (a stream cut off before its usage
 * event reports nothing, not zero).
 */

/** Where a usage figure came from; billing tells the three apart. */
export type Provenance = 'reported' | 'estimated' | 'partial';

export interface Usage {
  /** All input tokens, including cached reads and cache writes. */
  input?: number;
  /** Output tokens, including reasoning tokens. */
  output?: number;
  /** Input tokens served from the provider's prompt cache (a subset of `input`). */
  cachedInput?: number;
  /** Input tokens written to the provider's prompt cache (a subset of `input`). */
  cacheWrite?: number;
  /** Reasoning/thinking tokens (a subset of `output`). */
  reasoning?: number;
}

export const USAGE_FIELDS = ['input', 'output', 'cachedInput', 'cacheWrite', 'reasoning'] as const;

/** Combines usage seen so far with a newer report: later fields win, absent fields keep the old value. */
export function mergeUsage(base: Usage, later: Usage | undefined): Usage {
  if (!later) return base;
  const merged: Usage = { ...base };
  for (const field of USAGE_FIELDS) {
    const value = later[field];
    if (value !== undefined) merged[field] = value;
  }
  return merged;
}

/** True when the usage carries at least one reported figure. */
export function hasUsage(usage: Usage): boolean {
  return USAGE_FIELDS.some((field) => usage[field] !== undefined);
}

/** Input plus output: what tokens-per-hour limits charge. */
export function totalTokens(usage: Usage): number {
  return (usage.input ?? 0) + (usage.output ?? 0);
}

/** A non-negative integer from an untrusted JSON value, or undefined. */
export function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
}
