/**
 * Builds the Observation a dialect returns for one body or event, leaving out what is
 * absent, so "nothing seen" stays undefined and never turns into zeros.
 */
import type { Usage } from '../usage/usage.js';
import type { Observation } from './dialect.js';
import { text } from './json-value.js';

/** An observation of the given parts, or undefined when none of them is present. */
export function observation(
  usage: Usage | undefined,
  model: unknown,
  error: string | undefined,
): Observation | undefined {
  const obs: Observation = {};
  if (usage) obs.usage = usage;
  const m = text(model);
  if (m) obs.model = m;
  if (error) obs.error = error;
  return obs.usage || obs.model || obs.error ? obs : undefined;
}
