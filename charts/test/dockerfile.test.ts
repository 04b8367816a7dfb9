/**
 * The root Dockerfile, checked without a Docker engine: both targets exist on a Node 24
 * slim base, install production dependencies from the lockfile, run as a non-root user,
 * stop on SIGTERM under tini and declare a health check; every COPY source exists and
 * survives .dockerignore. The HEALTHCHECK commands themselves are run against a real
 * HTTP server, so what the image probes with is what was tested.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './chart.js';
import { dockerignoreFilter } from './dockerfile-runner.js';

const run = promisify(execFile);
const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
/** Instructions with line continuations joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'));

/** The instructions of one stage (FROM ... AS name up to the next FROM). */
function stage(name: string): string[] {
  const start = instructions.findIndex((line) => new RegExp(`^FROM \\S+ AS ${name}$`).test(line));
  if (start < 0) return [];
  const next = instructions.findIndex((line, i) => i > start && line.startsWith('FROM '));
  return instructions.slice(start, next < 0 ? undefined : next);
}

/** A stage plus the stages it is built FROM, innermost last (instructions are inherited). */
function withParents(name: string): string[] {
  const own = stage(name);
  const parent = /^FROM (\S+) AS/.exec(own[0] ?? '')?.[1];
  return parent && stage(parent).length > 0 ? [...withParents(parent), ...own] : own;
}

/** Whether the build context leaves `path` out (the same matcher the image smoke build uses). */
const ignored = dockerignoreFilter(REPO_ROOT);

describe('Dockerfile', () => {
  it('builds the two targets from a Node 24 slim base', () => {
    expect(instructions[0]).toBe('ARG NODE_IMAGE=node:24-slim');
    expect(stage('proxy')[0]).toBe('FROM runtime AS proxy');
    expect(stage('control-plane')[0]).toBe('FROM runtime AS control-plane');
    expect(stage('runtime')[0]).toBe('FROM ${NODE_IMAGE} AS runtime');
  });

  it.each(['proxy', 'control-plane'])(
    '%s installs production dependencies only, from the lockfile',
    (target) => {
      const npm = stage(target).filter((line) => /\bnpm\b/.test(line));
      expect(npm.some((line) => /npm ci --omit=dev/.test(line))).toBe(true);
      expect(npm.some((line) => /npm install/.test(line))).toBe(false);
    },
  );

  it.each(['proxy', 'control-plane'])(
    '%s runs as the non-root node user under tini, stopping on SIGTERM',
    (target) => {
      const lines = withParents(target);
      const users = lines.filter((line) => line.startsWith('USER '));
      expect(users.at(-1)).toBe('USER node');
      expect(lines).toContain('ENTRYPOINT ["/usr/bin/tini", "--"]');
      expect(lines).toContain('STOPSIGNAL SIGTERM');
    },
  );

  it.each([
    ['proxy', ['8080', '9464'], 'proxy'],
    ['control-plane', ['8081'], 'control-plane'],
  ])('%s exposes its ports and starts the %s command of the CLI', (target, ports, command) => {
    const lines = stage(target);
    expect(
      lines
        .find((line) => line.startsWith('EXPOSE '))
        ?.split(/\s+/)
        .slice(1),
    ).toEqual(ports);
    const cmd = JSON.parse(lines.find((line) => line.startsWith('CMD '))?.slice(4) ?? '[]') as string[];
    const script = cmd.indexOf('proxy/bin/lanekeeper.js');
    expect(cmd[0]).toBe('node');
    expect(cmd[script + 1]).toBe(command);
    // The proxy's young generation is pinned (docs/performance.md); node's own flags only.
    expect(cmd.slice(1, script)).toEqual(target === 'proxy' ? ['--min-semi-space-size=16'] : []);
  });

  it('the proxy flag is one node accepts, and it pins the young generation', () => {
    const cmd = JSON.parse(
      stage('proxy')
        .find((line) => line.startsWith('CMD '))
        ?.slice(4) ?? '[]',
    ) as string[];
    const flags = cmd.slice(1, cmd.indexOf('proxy/bin/lanekeeper.js'));
    const out = execFileSync(process.execPath, [
      ...flags,
      '-p',
      "require('v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size",
    ]);
    expect(Number(out.toString())).toBeGreaterThanOrEqual(16 * 1024 * 1024);
  });

  it('copies only sources that exist and that .dockerignore lets through', () => {
    const sources = instructions
      .filter((line) => line.startsWith('COPY ') && !line.includes('--from='))
      .flatMap((line) => line.split(/\s+/).slice(1, -1));
    expect(sources.length).toBeGreaterThan(5);
    for (const source of sources) {
      expect(existsSync(join(REPO_ROOT, source)), source).toBe(true);
      expect(ignored(source), source).toBe(false);
    }
    for (const needed of [
      'proxy/bin/lanekeeper.js',
      'proxy/src/config/schema.ts',
      'proxy/src/store/lua/admit.lua',
      'package-lock.json',
    ]) {
      expect(ignored(needed), needed).toBe(false);
    }
  });

  it('keeps tests, local installs and git history out of the build context', () => {
    for (const path of [
      'node_modules',
      'proxy/node_modules/x',
      '.git/HEAD',
      'proxy/test/helpers/a.ts',
      'proxy/src/usage/sse.test.ts',
      'dist/a.js',
      'charts/lanekeeper/values.yaml',
    ]) {
      expect(ignored(path), path).toBe(true);
    }
  });

  it('keeps local data and secrets out of the build context at any depth', () => {
    for (const path of [
      '.lanekeeper/data/PG_VERSION',
      'proxy/.lanekeeper/snapshot.json',
      'control-plane/.lanekeeper/data/PG_VERSION',
      '.env',
      'proxy/.env',
      'control-plane/.env.local',
    ]) {
      expect(ignored(path), path).toBe(true);
    }
  });
});

describe('HEALTHCHECK commands', () => {
  let server: Server;
  let port = 0;
  let status = 200;

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(req.url === '/healthz' ? status : 404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** The exec-form HEALTHCHECK CMD of a target, run with `env`; resolves to the exit code. */
  async function probe(target: string, env: Record<string, string>): Promise<number> {
    const line = stage(target).find((l) => l.startsWith('HEALTHCHECK ')) ?? '';
    const argv = JSON.parse(line.slice(line.indexOf('CMD ') + 4)) as string[];
    expect(argv[0]).toBe('node');
    try {
      await run(process.execPath, argv.slice(1), { env: { ...process.env, ...env }, timeout: 10_000 });
      return 0;
    } catch (error) {
      return (error as { code: number }).code;
    }
  }

  it('the proxy probe passes when /healthz answers 200 and fails on 503 or a closed port', async () => {
    status = 200;
    expect(await probe('proxy', { LANEKEEPER_HEALTH_URL: `http://127.0.0.1:${port}/healthz` })).toBe(0);
    status = 503;
    expect(await probe('proxy', { LANEKEEPER_HEALTH_URL: `http://127.0.0.1:${port}/healthz` })).toBe(1);
    expect(await probe('proxy', { LANEKEEPER_HEALTH_URL: 'http://127.0.0.1:1/healthz' })).toBe(1);
  });

  it('the control-plane probe follows PORT', async () => {
    status = 200;
    expect(await probe('control-plane', { PORT: String(port) })).toBe(0);
    status = 500;
    expect(await probe('control-plane', { PORT: String(port) })).toBe(1);
  });
});
