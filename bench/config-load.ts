/**
 * Issue 16's config figures: how long loading and live-reloading a 10,000-tenant config
 * takes, and the longest the event loop is blocked meanwhile (the issue allows 50 ms at a
 * time and 1 s in all), for the YAML file and for a control-plane snapshot. Also prints
 * the one-step (synchronous) parseConfig + buildRuntime the slices replaced, for comparison.
 *
 *   npx tsx bench/config-load.ts [tenants]
 *
 * The event loop's longest block is read from perf_hooks.monitorEventLoopDelay (1 ms
 * resolution) and from a 1 ms interval whose largest gap is the same thing measured plainly.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseYamlConfig } from '../proxy/src/config/load.js';
import { parseConfig } from '../proxy/src/config/schema.js';
import { createLogger } from '../proxy/src/log.js';
import { startProxy, type RunningProxy } from '../proxy/src/main.js';
import { buildRuntime } from '../proxy/src/runtime.js';
import {
  manyTenantsConfig,
  manyTenantsSnapshot,
  manyTenantsYaml,
} from '../proxy/test/helpers/many-tenants.js';

const TENANTS = Number(process.argv[2] ?? 10_000);

interface Figure {
  totalMs: number;
  maxBlockMs: number;
  maxGapMs: number;
}

/** Runs `work` while watching the event loop. */
async function measured(work: () => Promise<unknown>): Promise<Figure> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  let last = performance.now();
  let maxGap = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 1);
  histogram.enable();
  const started = performance.now();
  await work();
  const totalMs = performance.now() - started;
  histogram.disable();
  clearInterval(probe);
  return { totalMs, maxBlockMs: histogram.max / 1e6, maxGapMs: maxGap };
}

/** Synchronous work is one macrotask: its whole time is the block. */
async function oneStep(work: () => unknown): Promise<Figure> {
  const started = performance.now();
  work();
  const totalMs = performance.now() - started;
  return { totalMs, maxBlockMs: totalMs, maxGapMs: totalMs };
}

async function waitFor(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 1));
}

/** A stand-in control plane serving one pre-serialised snapshot at GET /v1/config. */
async function snapshotServer(): Promise<{ server: Server; url: string; serve(body: string): void }> {
  let body = '';
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', etag: `"${body.length}"` });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, serve: (next) => (body = next) };
}

function row(name: string, figure: Figure): string {
  const f = (n: number) => n.toFixed(1).padStart(8);
  return `${name.padEnd(38)}${f(figure.totalMs)} ms total${f(figure.maxBlockMs)} ms max block${f(figure.maxGapMs)} ms max gap`;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'lk-config-bench-'));
  const rows: string[] = [];
  try {
    const yaml = manyTenantsYaml(TENANTS);
    const file = join(dir, 'lanekeeper.yaml');
    console.log(`${TENANTS} tenants: YAML ${(yaml.length / 1e6).toFixed(2)} MB`);

    rows.push(
      row('one step: parse YAML', await oneStep(() => parseYamlConfig(yaml))),
      row(
        'one step: parseConfig + buildRuntime',
        await oneStep(() => buildRuntime(parseConfig(manyTenantsConfig(TENANTS)))),
      ),
    );

    // File: start (load), then an edit picked up by the watcher (reload).
    await writeFile(file, yaml);
    let proxy: RunningProxy | undefined;
    rows.push(
      row(
        'file: start (load)',
        await measured(async () => (proxy = await startProxy({ configPath: file, logger: quietLogger() }))),
      ),
    );
    const edited = manyTenantsYaml(TENANTS, undefined, 'v2');
    rows.push(
      row(
        'file: edit (reload)',
        await measured(async () => {
          await writeFile(file, edited);
          await waitFor(() => proxy?.config().tenants[1]?.overrides.features?.[1] === 'v2');
        }),
      ),
    );
    rows.push(
      row(
        'reload(): object, no YAML',
        await measured(() => proxy!.reload(manyTenantsConfig(TENANTS, undefined, 'v3'))),
      ),
    );
    await proxy?.close(0);

    // Control plane: start from a snapshot, then a new version picked up by polling.
    const plane = await snapshotServer();
    plane.serve(JSON.stringify(manyTenantsSnapshot(TENANTS, 1)));
    const cpFile = join(dir, 'cp.yaml');
    await writeFile(
      cpFile,
      JSON.stringify({
        listen: '127.0.0.1:0',
        admin_listen: '127.0.0.1:0',
        upstream: { url: 'http://127.0.0.1:1' },
        control_plane: {
          url: plane.url,
          token: 't',
          poll_interval_ms: 100,
          snapshot_path: join(dir, 'snap.json'),
        },
      }),
    );
    rows.push(
      row(
        'control plane: start (load)',
        await measured(async () => (proxy = await startProxy({ configPath: cpFile, logger: quietLogger() }))),
      ),
    );
    const next = JSON.stringify(manyTenantsSnapshot(TENANTS, 2, 'v2'));
    rows.push(
      row(
        'control plane: new version (reload)',
        await measured(async () => {
          plane.serve(next);
          await waitFor(() => proxy?.config().tenants[1]?.overrides.features?.[1] === 'v2');
        }),
      ),
    );
    await proxy?.close(0);
    plane.server.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  for (const line of rows) console.log(line);
  console.log('(reload totals include up to 50 ms of file-watch debounce or 100 ms of polling)');
}

function quietLogger() {
  // The proxy's own logger at "silent": the bench measures config work, not log output.
  return createLogger('silent');
}

await main();
