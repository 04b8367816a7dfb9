/**
 * Which model ids an upstream serves: exact ids or globs with `*` (any run of characters,
 * none included), as the proxy's `upstreams.*.models` and the control plane's
 * LANEKEEPER_UPSTREAM_MODELS write them. Both sides refuse a plan whose model nothing serves,
 * so they must match globs the same way.
 */
import { modelChain, type ModelTarget } from './tenancy.js';

/** True when the model id matches the glob. */
export function globMatches(glob: string, id: string): boolean {
  if (!glob.includes('*')) return glob === id;
  const parts = glob.split('*');
  const first = parts[0] as string;
  const last = parts[parts.length - 1] as string;
  if (!id.startsWith(first) || id.length < first.length + last.length || !id.endsWith(last)) return false;
  let at = first.length;
  const end = id.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i] as string;
    const found = id.indexOf(part, at);
    if (found === -1 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

/** The aliases and ids of `models` that `serves` refuses, in order. */
export function unservedModels(
  models: Readonly<Record<string, ModelTarget>>,
  serves: (id: string) => boolean,
): { alias: string; id: string }[] {
  const out: { alias: string; id: string }[] = [];
  for (const [alias, target] of Object.entries(models))
    for (const id of modelChain(target)) if (!serves(id)) out.push({ alias, id });
  return out;
}
