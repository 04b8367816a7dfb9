/**
 * Reads the Lanekeeper chart from disk for the static chart tests: values, schema, template
 * sources, and Helm's rule for layering a values file over the defaults (coalesce), so a
 * test can validate exactly what `helm install -f file` would hand to the schema.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';

/** The repository root (charts/test/ is two levels down). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The chart directory. */
export const CHART_DIR = join(REPO_ROOT, 'charts', 'lanekeeper');

/** A plain YAML/JSON value tree. */
export type Tree = Record<string, unknown>;

/** Reads a YAML file relative to the repository root; `<<` merge keys resolve as Compose resolves them. */
export function readYaml(relativePath: string): unknown {
  return parse(readFileSync(join(REPO_ROOT, relativePath), 'utf8'), { merge: true });
}

/** The chart's default values.yaml. */
export function defaultValues(): Tree {
  return readYaml('charts/lanekeeper/values.yaml') as Tree;
}

/** Template sources by file name (templates/*.yaml, *.tpl and NOTES.txt). */
export function templateSources(): Map<string, string> {
  const dir = join(CHART_DIR, 'templates');
  return new Map(
    readdirSync(dir)
      .filter((name) => /\.(ya?ml|tpl|txt)$/.test(name))
      .sort()
      .map((name) => [name, readFileSync(join(dir, name), 'utf8')]),
  );
}

/** ajv compiled from values.schema.json, configured like Helm's validator (draft-07, all errors). */
export function compileValuesSchema(): ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: true });
  addFormats.default(ajv);
  const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as object;
  return ajv.compile(schema);
}

function isMap(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Helm's coalesce of user values over chart defaults: maps merge key by key, lists and
 * scalars replace, and an explicit null removes a default key.
 */
export function coalesce(defaults: Tree, overrides: Tree): Tree {
  const result: Tree = { ...defaults };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === null) delete result[key];
    else if (isMap(value) && isMap(result[key])) result[key] = coalesce(result[key], value);
    else result[key] = value;
  }
  return result;
}

/** Value at a dotted path ("proxy.autoscaling.minReplicas"), or undefined when any step is missing. */
export function valueAt(tree: unknown, path: string): unknown {
  let node: unknown = tree;
  for (const key of path.split('.')) {
    if (!isMap(node) || !(key in node)) return undefined;
    node = node[key];
  }
  return node;
}
