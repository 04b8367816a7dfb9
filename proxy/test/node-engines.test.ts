/**
 * The Node.js version the README states is one every locked dependency accepts, so `npm ci`
 * on the stated minimum installs without an EBADENGINE warning. (cookie@2, pulled in by
 * fastify's light-my-request, wants Node 22: the root package.json overrides it.) CI runs
 * the suite on this machine's Node 20 and on Node 24 (.ci/node24).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
const rootEngines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
const minimum = semver.minVersion(rootEngines)?.version ?? 'none';

describe('the stated Node.js minimum', () => {
  it('is the one the README states and every workspace declares', () => {
    const stated = /with Node\.js (\d+\.\d+) or newer/.exec(read('README.md'))?.[1];
    expect(`${stated}.0`).toBe(minimum);
    for (const pkg of ['proxy/package.json', 'control-plane/package.json'])
      expect((JSON.parse(read(pkg)) as { engines: { node: string } }).engines.node).toBe(rootEngines);
  });

  it('is accepted by every package in the lockfile', () => {
    const lock = JSON.parse(read('package-lock.json')) as {
      packages: Record<string, { engines?: { node?: string } | string[] }>;
    };
    const refusing = Object.entries(lock.packages)
      .filter(([, p]) => p.engines && !Array.isArray(p.engines) && p.engines.node)
      .filter(([, p]) => !semver.satisfies(minimum, (p.engines as { node: string }).node))
      .map(([name, p]) => `${name} wants node ${(p.engines as { node: string }).node}`);
    expect(refusing).toEqual([]);
  });

  it('is within what the running Node satisfies, so CI tests the claim', () => {
    expect(semver.satisfies(process.versions.node, rootEngines)).toBe(true);
  });
});
