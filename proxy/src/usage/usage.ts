/**
 * Token usage as the proxy meters it, normalised across dialects. Every field is optional:
 * absent means "not reported", which differs from 0 (a stream cut off before its usage
 * event reports nothing, not zero).
 */
import { MAX_TOKENS } from '@lanekeeper/contract';

/**
 * Where a usage figure came from; billing tells them apart. `invalid`: the upstream reported
 * a figure no real answer has (negative, fractional, above MAX_TOKENS), which was clamped.
 */
export type Provenance = 'reported' | 'estimated' | 'partial' | 'invalid';

// More tokens than any single answer has; a larger figure is an upstream's error (or an attack).
export { MAX_TOKENS };

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

/**
 * A token figure from an untrusted JSON value: any number as it is (JSON's 1e400 is
 * Infinity), undefined for anything else. Absurd numbers are kept so that `sanitiseUsage`
 * can clamp them and say so, instead of their vanishing into an estimate.
 */
export function count(value: unknown): number | undefined {
  return typeof value === 'number' && !Number.isNaN(value) ? value : undefined;
}

/** A figure that was clamped: which field, and what the upstream sent. */
export interface InvalidFigure {
  readonly field: (typeof USAGE_FIELDS)[number];
  readonly value: number;
}

/**
 * Clamps every figure into a whole number in [0, MAX_TOKENS], the range every store, Redis
 * script and ledger column takes. Returns the usage unchanged (same object) when all were
 * valid, which is the common case.
 */
export function sanitiseUsage(usage: Usage): { usage: Usage; invalid: InvalidFigure[] } {
  let invalid: InvalidFigure[] | undefined;
  let clean: Usage | undefined;
  for (const field of USAGE_FIELDS) {
    const value = usage[field];
    if (value === undefined || (Number.isInteger(value) && value >= 0 && value <= MAX_TOKENS)) continue;
    (invalid ??= []).push({ field, value });
    clean ??= { ...usage };
    clean[field] = Number.isNaN(value) || value < 0 ? 0 : Math.min(MAX_TOKENS, Math.floor(value));
  }
  return clean && invalid ? { usage: clean, invalid } : { usage, invalid: [] };
}
