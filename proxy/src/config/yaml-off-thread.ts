/**
 * Parses a large YAML config in a worker thread. The yaml library needs about a second of
 * uninterrupted CPU for a 2 MB file (10,000 tenants), which on the main thread would stall
 * every request for that long; in a worker it stalls nothing. The worker returns JSON text,
 * which the main thread parses in ~10 ms (a structured clone of the object costs more).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { ConfigError, type ConfigProblem } from '../errors.js';

// Plain CommonJS evaluated by the worker: it runs the same under tsx, vitest and the built
// proxy, with no second entry file to compile. It loads the very yaml package this module would.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { parseDocument } = require(workerData.yamlPath);
const doc = parseDocument(workerData.text, { prettyErrors: true, uniqueKeys: true });
if (doc.errors.length > 0) {
  parentPort.postMessage({ errors: doc.errors.map((error) => ({
    path: error.linePos ? 'line ' + error.linePos[0].line + ', column ' + error.linePos[0].col : '(yaml)',
    message: error.message.split('\\n')[0] || error.message,
  })) });
} else {
  parentPort.postMessage({ json: JSON.stringify(doc.toJS() ?? {}) });
}
`;

const yamlPath = createRequire(import.meta.url).resolve('yaml');

/** The YAML document as a plain value; throws ConfigError with each syntax error's line. */
export function parseYamlOffThread(text: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { text, yamlPath } });
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
