/**
 * LANEKEEPER_UPSTREAM_MODELS: the model ids the proxies' upstreams serve. A plan (or a
 * tenant's override) naming a model none of them serves would be refused by every proxy
 * when it loads the snapshot, so the control plane refuses it first, naming the field,
 * the plan or tenant, the alias and the id, with the proxies' own glob matching.
 */
import { globMatches, unservedModels, type ModelTarget } from '@lanekeeper/contract';
import { BadRequestError } from './errors.js';

export function requireServedModels(
  globs: readonly string[] | undefined,
  models: Readonly<Record<string, ModelTarget>> | undefined,
  where: string,
  owner: string,
): void {
  if (!globs || !models) return;
  const missing = unservedModels(models, (id) => globs.some((glob) => globMatches(glob, id)));
  if (missing.length === 0) return;
  const details = missing.map(({ alias, id }) => ({
    field: `${where}.${alias}`,
    message: `${owner}, alias "${alias}": no upstream serves model "${id}" (it matches none of LANEKEEPER_UPSTREAM_MODELS)`,
  }));
  throw new BadRequestError(details.map((d) => `${d.field}: ${d.message}`).join('; '), details);
}
