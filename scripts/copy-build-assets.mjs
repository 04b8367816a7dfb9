#!/usr/bin/env node
/**
 * The second half of `npm run build`: tsc emits only JavaScript, but the code loads some
 * files relative to itself (the Redis store's Lua scripts, the control plane's SQL
 * migrations). They must sit at the same relative place under dist/ as under the sources,
 * or the built CLI fails with ENOENT. The Dockerfile's build stage runs `npm run build`,
 * so the image and a local build are laid out the same way.
 *
 * It also makes @lanekeeper/contract resolve to its compiled code: the workspace link in
 * node_modules points at the TypeScript sources (for tsx and vitest), which plain node
 * cannot load. Node looks for a package in the nearest node_modules first, so a two-file
 * package at dist/node_modules/@lanekeeper/contract, re-exporting dist/contract/, wins for
 * every module under dist/.
 *
 * usage: node scripts/copy-build-assets.mjs [OUT_DIR]   (default: dist)
 */
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const isSource = (path) => /\.tsx?$/.test(path);

/**
 * Puts beside the compiled code in `out` what it loads from beside itself, taken from the
 * checkout at `root`, and the contract shim. Also used by the benchmark's own builds.
 */
export function copyBuildAssets(root, out) {
  for (const pkg of ['contract', 'proxy', 'control-plane']) {
    if (!existsSync(join(root, pkg, 'src'))) continue;
    cpSync(join(root, pkg, 'src'), join(out, pkg, 'src'), {
      recursive: true,
      filter: (from) => !isSource(from),
    });
  }
  const migrations = join(root, 'control-plane', 'migrations');
  if (existsSync(migrations))
    cpSync(migrations, join(out, 'control-plane', 'migrations'), { recursive: true });
  if (!existsSync(join(root, 'contract', 'src'))) return;
  // One shim file per entry of the contract's own `exports` (".", "./telemetry-provider", …),
  // so a subpath added there resolves in a build without anyone remembering this script.
  const { exports: entries } = JSON.parse(readFileSync(join(root, 'contract', 'package.json'), 'utf8'));
  const contract = join(out, 'node_modules', '@lanekeeper', 'contract');
  mkdirSync(contract, { recursive: true });
  const shimExports = {};
  for (const [subpath, source] of Object.entries(entries)) {
    const compiled = source.replace(/^\.\/src\//, '').replace(/\.ts$/, '.js');
    const shim = subpath === '.' ? 'index.js' : `${subpath.slice(2)}.js`;
    shimExports[subpath] = `./${shim}`;
    mkdirSync(dirname(join(contract, shim)), { recursive: true });
    writeFileSync(join(contract, shim), `export * from '../../../contract/src/${compiled}';\n`);
  }
  writeFileSync(
    join(contract, 'package.json'),
    `${JSON.stringify({ name: '@lanekeeper/contract', private: true, type: 'module', exports: shimExports }, null, 2)}\n`,
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  copyBuildAssets(root, resolve(root, process.argv[2] ?? 'dist'));
}
