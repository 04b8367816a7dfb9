// DEMO ONLY: starts the demo upstream and the proxy with examples/lanekeeper.yaml, in
// embedded mode (in-memory limits and meters: no PostgreSQL or Redis needed). Ctrl-C stops both.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const children = [
  spawn(process.execPath, [join(root, 'examples', 'demo', 'upstream.mjs')], { stdio: 'inherit' }),
  spawn(
    process.execPath,
    [
      join(root, 'proxy', 'bin', 'lanekeeper.js'),
      'proxy',
      '--config',
      join(root, 'examples', 'lanekeeper.yaml'),
    ],
    {
      stdio: 'inherit',
    },
  ),
];
const stop = () => children.forEach((child) => child.kill('SIGTERM'));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, stop);
for (const child of children)
  child.on('exit', (code) => {
    if (code) {
      stop();
      process.exitCode = code;
    }
  });
