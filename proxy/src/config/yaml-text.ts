/**
 * The one YAML reader of config files, on the main thread and in the worker alike.
 *
 * js-yaml with its core schema (YAML 1.2 core: no timestamps, no merge keys, no custom
 * tags), which reads a 10,000-tenant file (2.2 MB) in 0.1-0.15 s where the `yaml` package
 * took 1.3-1.6 s; see docs/performance.md. Duplicate keys are refused, as before.
 *
 * js-yaml resolves an alias to the very object its anchor names, so nothing is copied while
 * parsing, but anything that walks the result afterwards (interpolation, validation, the
 * worker's JSON) walks every alias out in full: nine aliases of nine aliases are 387 million
 * nodes from a few hundred bytes. `assertExpansionBounded` counts the nodes as a walk would
 * see them and refuses a document past a budget proportional to its size.
 */
import { CORE_SCHEMA, load, YAMLException } from 'js-yaml';
import { ConfigError } from '../errors.js';

/**
 * Nodes a walk may meet per byte of YAML, beyond a floor. Plain YAML has under one node per
 * byte; a few aliases for shared limits or prompts multiply that by little.
 */
const NODES_PER_BYTE = 4;
const MIN_NODE_BUDGET = 100_000;

/** The budget of nodes for a document of `textLength` characters. */
export function nodeBudget(textLength: number): number {
  return Math.max(MIN_NODE_BUDGET, textLength * NODES_PER_BYTE);
}

/** Throws ConfigError when walking `value` (aliases expanded) would meet more than `budget` nodes. */
export function assertExpansionBounded(value: unknown, budget: number): void {
  let seen = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    if (++seen > budget) {
      throw new ConfigError([
        {
          path: '(yaml)',
          message: `the document expands to more than ${budget} values (aliases of aliases?): refused`,
        },
      ]);
    }
    if (Array.isArray(node)) {
      for (const item of node) stack.push(item);
    } else if (node !== null && typeof node === 'object') {
      for (const key in node) stack.push((node as Record<string, unknown>)[key]);
    }
  }
}

/** The YAML document as a plain value; throws ConfigError with the line of a syntax error. */
export function parseYamlText(text: string): unknown {
  let value: unknown;
  try {
    value = load(text, { schema: CORE_SCHEMA });
  } catch (error) {
    if (!(error instanceof YAMLException)) throw error;
    throw new ConfigError([
      {
        path: error.mark ? `line ${error.mark.line + 1}, column ${error.mark.column + 1}` : '(yaml)',
        message: error.reason || error.message,
      },
    ]);
  }
  assertExpansionBounded(value, nodeBudget(text.length));
  return value ?? {};
}
