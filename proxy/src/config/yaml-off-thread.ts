/**
 * Parses a large YAML config in a worker thread. Even js-yaml needs 0.1-0.15 s of
 * uninterrupted CPU for a 2 MB file (10,000 tenants), which on the main thread would stall
 * every request for that long; in a worker it stalls nothing. The worker returns JSON text,
 * which the main thread parses in ~10 ms (a structured clone of the object costs more).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { nodeBudget } from './yaml-text.js';

// Plain CommonJS evaluated by the worker: it runs the same under tsx, vitest and the built
// proxy, with no second entry file to compile. It reads as yaml-text.ts does (the same
// package, schema and error position), and its JSON.stringify is the walk that
// assertExpansionBounded would make: the replacer counts each value it meets.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { load, CORE_SCHEMA, YAMLException } = require(workerData.yamlPath);
let value;
try {
  value = load(workerData.text, { schema: CORE_SCHEMA });
} catch (error) {
  if (!(error instanceof YAMLException)) throw error;
  parentPort.postMessage({ errors: [{
    path: error.mark ? 'line ' + (error.mark.line + 1) + ', column ' + (error.mark.column + 1) : '(yaml)',
    message: error.reason || error.message,
  }] });
  return;
}
let seen = 0;
const budget = workerData.budget;
try {
  parentPort.postMessage({ json: JSON.stringify(value ?? {}, (_key, v) => {
    if (++seen > budget) throw new RangeError('budget');
    return v;
  }) });
} catch (error) {
  if (!(error instanceof RangeError)) throw error;
  parentPort.postMessage({ errors: [{
    path: '(yaml)',
    message: 'the document expands to more than ' + budget + ' values (aliases of aliases?): refused',
  }] });
}
`;

const yamlPath = createRequire(import.meta.url).resolve('js-yaml');

/** The YAML document as a plain value; throws ConfigError with each syntax error's line. */
export function parseYamlOffThread(text: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(`(() => {${WORKER_SOURCE}})()`, {
      eval: true,
      workerData: { text, yamlPath, budget: nodeBudget(text.length) },
    });
    let settled = false;
    worker.once('message', (reply: { errors?: ConfigProblem[]; json?: string }) => {
      settled = true;
      if (reply.errors) reject(new ConfigError(reply.errors));
      else resolve(JSON.parse(reply.json ?? '{}'));
    });
    worker.once('error', (error) => {
      settled = true;
      reject(new ConfigError([{ path: '(yaml)', message: `cannot parse: ${error.message}` }]));
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new ConfigError([{ path: '(yaml)', message: `parser exited with ${code}` }]));
    });
  });
}
