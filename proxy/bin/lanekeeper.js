#!/usr/bin/env -S node --min-semi-space-size=16
// (The flag keeps V8's young generation at 16 MiB: see the proxy's CMD in the Dockerfile.)
// The `lanekeeper` command. Runs the compiled CLI when a build exists (container images),
// otherwise the TypeScript sources through tsx, so `npx lanekeeper` works right after install.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const built = join(here, '..', '..', 'dist', 'proxy', 'src', 'cli.js');
if (existsSync(built)) {
  await import(pathToFileURL(built).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(here, '..', 'src', 'cli.ts')).href);
}
