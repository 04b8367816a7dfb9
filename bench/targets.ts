/**
 * The things the benchmark puts load on, each started as its own process: the mock
 * upstream (also measured directly), the Node floor proxy, a bare undici pass-through
 * (reference), and Lanekeeper through its real
 * CLI in memory mode and in Redis mode. A Lanekeeper target can be started under
 * `--cpu-prof`, and Redis mode uses a key prefix of its own that is deleted afterwards.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { globLiteral } from '@lanekeeper/contract';
import { Redis } from 'ioredis';
import { benchConfig } from './lanekeeper-config.js';
import { freePort, start, waitForHttp, type Running } from './processes.js';
import { copyBuildAssets } from '../scripts/copy-build-assets.mjs';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const REPO = join(BENCH_DIR, '..');
/** Where results, generated configs and profiles go (gitignored). */
export const RESULTS_DIR = join(BENCH_DIR, 'results');

export type TargetName =
  | 'direct'
  | 'floor'
  | 'undici-passthrough'
  | 'lanekeeper-memory'
  | 'lanekeeper-redis'
  | 'lanekeeper-translated'
  | 'lanekeeper-traced'
  | 'lanekeeper-memory-10k'
  | 'lanekeeper-redis-10k'
  | 'lanekeeper-baseline';

/** Tenants in the many-tenant targets' config, and how many of them the load spreads over. */
export const MANY_TENANTS = 10_000;
export const ACTIVE_TENANTS = 1_000;

/** A running target: where to send requests, and the process whose CPU counts (none for direct). */
export interface Target {
  readonly name: TargetName;
  readonly url: string;
  readonly adminUrl?: string;
  readonly process?: Running;
  /** Redis mode: the server and the key prefix the target writes under. */
  readonly redis?: { readonly url: string; readonly keyPrefix: string };
  /** Keys the load spreads over (the many-tenant targets); one key when absent. */
  readonly keys?: number;
  stop(): Promise<void>;
}

function tsxArgs(script: string, args: string[]): string[] {
  return ['--import', 'tsx', join(BENCH_DIR, script), ...args];
}

/** Starts the mock upstream; its `url` is its base URL. */
export async function startUpstream(core: string | undefined): Promise<Target & { process: Running }> {
  const port = await freePort();
  const child = start(
    'mock-upstream',
    process.execPath,
    tsxArgs('mock-upstream.ts', ['--port', String(port)]),
    core,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(url);
  return { name: 'direct', url, process: child, stop: () => child.stop() };
}

/** Starts the floor proxy in front of `upstreamUrl`. */
export async function startFloor(upstreamUrl: string, core: string | undefined): Promise<Target> {
  const port = await freePort();
  const child = start(
    'floor-proxy',
    process.execPath,
    tsxArgs('floor-proxy.ts', ['--port', String(port), '--upstream', upstreamUrl]),
    core,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(url);
  return { name: 'floor', url, process: child, stop: () => child.stop() };
}

/** Starts the bare undici pass-through (a reference, not a target of the issue). */
export async function startUndiciPassthrough(upstreamUrl: string, core: string | undefined): Promise<Target> {
  const port = await freePort();
  const child = start(
    'undici-passthrough',
    process.execPath,
    tsxArgs('undici-passthrough.ts', ['--port', String(port), '--upstream', upstreamUrl]),
    core,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(url);
  return { name: 'undici-passthrough', url, process: child, stop: () => child.stop() };
}

export interface LanekeeperOptions {
  upstreamUrl: string;
  core: string | undefined;
  /** Redis URL for Redis mode; memory mode when undefined. */
  redisUrl?: string;
  /** Directory for a V8 CPU profile of the proxy process (written when it exits). */
  profileDir?: string;
  /** More node flags for the proxy process (trace-perf.ts: `--perf-basic-prof`). */
  nodeFlags?: string[];
  /** Serve the model from an Anthropic-dialect upstream: every request is translated. */
  translated?: boolean;
  /** Trace every request (sample_ratio 1) to this OTLP/HTTP endpoint (bench/otlp-sink.ts). */
  otlpEndpoint?: string;
  /** The traced target's sample_ratio (default 1). */
  sampleRatio?: number;
  /** MANY_TENANTS tenants in the config, the load spread over ACTIVE_TENANTS of them. */
  manyTenants?: boolean;
  /** Run the CLI of another checkout (DIR/proxy/src/cli.ts) as `lanekeeper-baseline`. */
  sourceDir?: string;
  /**
   * The compiled CLI to run (from `buildLanekeeper`), as the container image runs it;
   * undefined runs the TypeScript sources through tsx, as a fresh clone's bin does.
   */
  builtCli?: string;
}

/**
 * Compiles the proxy and control plane of `sourceDir` (this checkout by default) with the
 * project's compiler settings into bench/results/build-<label>, adds what `npm run build`
 * adds (scripts/copy-build-assets.mjs: the Lua scripts, the contract shim), and returns the
 * CLI's path.
 * What runs is then what the Dockerfile's `npm run build` produces.
 */
export function buildLanekeeper(label: string, sourceDir = REPO): string {
  const outDir = join(RESULTS_DIR, `build-${label}`);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const tsconfig = join(outDir, 'tsconfig.json');
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: join(REPO, 'tsconfig.base.json'),
      compilerOptions: { outDir, rootDir: sourceDir, noEmit: false, sourceMap: false },
      include: [
        join(sourceDir, 'contract', 'src'),
        join(sourceDir, 'proxy', 'src'),
        join(sourceDir, 'control-plane', 'src'),
      ],
      exclude: ['**/*.test.ts'],
    }),
  );
  try {
    execFileSync(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig], {
      stdio: sourceDir === REPO ? 'inherit' : 'pipe',
    });
  } catch (error) {
    // Another checkout is type-checked against this checkout's dependencies (the contract
    // package included), so types may have drifted between them; tsc still emits, and the
    // baseline runs its own compiled code. This checkout must type-check.
    if (sourceDir === REPO || !existsSync(join(outDir, 'proxy', 'src', 'cli.js'))) throw error;
  }
  copyBuildAssets(sourceDir, outDir);
  return join(outDir, 'proxy', 'src', 'cli.js');
}

/**
 * A redis-server of the bench's own, on a free loopback port, pinned to `core`, keeping
 * nothing on disk. The machine's shared Redis floats over every core, so on two cores it
 * often runs beside the proxy on the proxy's core, and a round where it does shows tens of
 * milliseconds of p99 that are scheduling, not Lanekeeper (docs/performance.md).
 */
export async function startPrivateRedis(
  core: string | undefined,
): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const server = start(
    'redis-server',
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    core,
  );
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    // Refused until the server listens: that is what the loop waits out, not an error to log.
    client.on('error', () => undefined);
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') break;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`private redis-server did not answer: ${String(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      client.disconnect();
    }
  }
  return { url, stop: () => server.stop() };
}

/** True when `redis-server` can be started from PATH. */
export function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Deletes every key under `prefix` (SCAN + UNLINK; never FLUSHDB on the shared server). */
export async function deleteRedisPrefix(redisUrl: string, prefix: string): Promise<number> {
  const client = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  let removed = 0;
  let cursor = '0';
  const pattern = `${globLiteral(prefix)}*`;
  try {
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) removed += await client.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
  return removed;
}

/**
 * The node flags the proxy's image starts it with (Dockerfile, the proxy stage's CMD), so the
 * bench measures what ships: a young generation that does not shrink at moderate rates.
 */
export const PROXY_NODE_FLAGS = ['--min-semi-space-size=16'];

/** Starts Lanekeeper with the benchmark config through `node proxy/bin/lanekeeper.js proxy --config`. */
export async function startLanekeeper(options: LanekeeperOptions): Promise<Target> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const keyPrefix = `lk-bench-${randomBytes(4).toString('hex')}:`;
  const redis = options.redisUrl ? { url: options.redisUrl, keyPrefix } : undefined;
  const config = benchConfig({
    listenPort: port,
    adminPort,
    upstreamUrl: options.upstreamUrl,
    redis,
    translated: options.translated,
    tenants: options.manyTenants ? MANY_TENANTS : 0,
  });
  if (options.otlpEndpoint)
    config.telemetry = { otlp_endpoint: options.otlpEndpoint, sample_ratio: options.sampleRatio ?? 1 };
  const name: TargetName = options.sourceDir
    ? 'lanekeeper-baseline'
    : options.otlpEndpoint
      ? 'lanekeeper-traced'
      : options.translated
        ? 'lanekeeper-translated'
        : options.manyTenants
          ? redis
            ? 'lanekeeper-redis-10k'
            : 'lanekeeper-memory-10k'
          : redis
            ? 'lanekeeper-redis'
            : 'lanekeeper-memory';
  mkdirSync(RESULTS_DIR, { recursive: true });
  const configPath = join(RESULTS_DIR, `${name}.config.yaml`);
  // JSON is YAML; the CLI reads it like any config file.
  writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
  // Every thread writes its own profile (tsx's loader runs in one): one directory per target.
  const nodeFlags = [
    ...PROXY_NODE_FLAGS,
    ...(options.profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(options.profileDir, name)] : []),
    ...(options.nodeFlags ?? []),
  ];
  const entry = options.builtCli
    ? [options.builtCli]
    : ['--import', 'tsx', join(options.sourceDir ?? REPO, 'proxy', 'src', 'cli.ts')];
  const child = start(
    name,
    process.execPath,
    [...nodeFlags, ...entry, 'proxy', '--config', configPath],
    options.core,
  );
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitForHttp(`${adminUrl}/healthz`);
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    adminUrl,
    process: child,
    redis,
    keys: options.manyTenants ? ACTIVE_TENANTS : undefined,
    async stop() {
      await child.stop();
      if (redis) await deleteRedisPrefix(redis.url, redis.keyPrefix);
    },
  };
}
