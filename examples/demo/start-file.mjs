// DEMO ONLY (`npm run demo:file`): starts the demo upstream and the proxy alone with
// examples/lanekeeper.yaml, in
// embedded mode (in-memory limits and meters: no PostgreSQL or Redis needed). Ctrl-C stops both.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { supervise } from './supervise.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { done } = supervise([
  { name: 'demo upstream', args: [join(root, 'examples', 'demo', 'upstream.mjs')] },
  {
    name: 'proxy',
    args: [
      join(root, 'proxy', 'bin', 'lanekeeper.js'),
      'proxy',
      '--config',
      join(root, 'examples', 'lanekeeper.yaml'),
    ],
  },
]);
process.exitCode = await done;
