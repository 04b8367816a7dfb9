/**
 * Starts a proxy: loads and validates its config, builds the store, pipeline and upstream
 * pool, opens the traffic and admin listeners, applies config edits live, and drains
 * in-flight requests (streams included) on close.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { Pool, type Dispatcher } from 'undici';
import { UpstreamHealth } from './upstream/health.js';
import { createAdminHandler } from './admin.js';
import { loadConfigFile, watchConfigFile, type ConfigWatcher } from './config/load.js';
import {
  createControlPlaneSource,
  type ControlPlaneSnapshot,
  type ControlPlaneSource,
} from './config/control-plane-source.js';
import { parseConfigInSlices } from './config/parse-in-slices.js';
import { configWarnings, metricsTokenProblem, type Config } from './config/schema.js';
import { ConfigError } from './errors.js';
import { ADMIN_MAX_CONNECTIONS, listenerOptions, maxConnectionsFor } from './listener-limits.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { createPipeline } from './pipeline.js';
import { buildRuntimeInSlices, type Runtime, type Upstream } from './runtime.js';
import { answerClientError, createProxyHandler } from './server.js';
import { createStore } from './store/index.js';
import { startRequestTracer, type RequestTracerOptions } from './tracing/start.js';
import { createHttpUsageSink } from './usage/http-usage-sink.js';
import { UpstreamQuirks } from './upstream-quirks.js';
import { createVectorRoute } from './vector/vector-route.js';

export interface StartOptions {
  /** A YAML config file; watched for edits. */
  configPath?: string;
  /** A raw config object (tests, embedding); validated like a file. */
  config?: unknown;
  logger?: Logger;
  /** The environment OTEL_* variables are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** How long spans wait to be batched before export (default 2 s); tests shorten it. */
  traceExportDelayMs?: number;
  /** The trace export outage log's clock and summary interval; tests compress minutes. */
  traceExportOutage?: RequestTracerOptions['exportOutage'];
}

export interface RunningProxy {
  /** Base URL of the traffic listener, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /** Base URL of the admin listener. */
  readonly adminUrl: string;
  readonly metrics: Metrics;
  config(): Config;
  /**
   * Validates and applies a new raw config, as a file edit would; rejects with ConfigError
   * when invalid, keeping the old config. Requests keep being served while it validates.
   */
  reload(raw: unknown): Promise<void>;
  /** Stops accepting, lets in-flight requests finish within the grace period, then closes everything. */
  close(graceMs?: number): Promise<void>;
}

/** Splits "host:port" (or "[v6]:port") for net.listen. */
export function parseListen(address: string): { host: string; port: number } {
  const index = address.lastIndexOf(':');
  return { host: address.slice(0, index).replace(/^\[|\]$/g, ''), port: Number(address.slice(index + 1)) };
}

function urlOf(server: Server): string {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${address.port}`;
}

function listen(server: Server, address: string): Promise<void> {
  const { host, port } = parseListen(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** The settings a keep-alive pool is built from; an upstream whose settings stay keeps its pool. */
function poolKey(upstream: Upstream): string {
  const c = upstream.config;
  return `${upstream.origin} ${c.connections} ${c.connect_timeout_ms}`;
}

/**
 * One keep-alive pool per upstream origin and settings. A reload keeps the pools whose
 * settings did not change; the others are replaced, and requests in flight finish on the
 * old pool before it closes.
 */
class UpstreamPools {
  private pools = new Map<string, Pool>();

  constructor(upstreams: readonly Upstream[]) {
    this.update(upstreams);
  }

  get(upstream: Upstream): Dispatcher {
    const key = poolKey(upstream);
    let pool = this.pools.get(key);
    if (!pool) {
      pool = createPool(upstream);
      this.pools.set(key, pool);
    }
    return pool;
  }

  update(upstreams: readonly Upstream[]): void {
    const wanted = new Set(upstreams.map(poolKey));
    for (const [key, pool] of this.pools) {
      if (wanted.has(key)) continue;
      this.pools.delete(key);
      void pool.close().catch(() => undefined);
    }
    for (const upstream of upstreams) this.get(upstream);
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.close().catch(() => undefined)));
  }
}

function createPool(upstream: Upstream): Pool {
  return new Pool(upstream.origin, {
    connections: upstream.config.connections,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    connect: { timeout: upstream.config.connect_timeout_ms },
  });
}

/** The vector fields the control plane owns; the rest of `vector` is the file's. */
const SNAPSHOT_VECTOR_FIELDS = new Set(['mode', 'templates']);

/**
 * In control-plane mode, plans, tenants and pricing (and the vector mode and templates, when
 * the control plane manages collections) come from the control plane's snapshot and
 * everything else from the file; the two are merged, then validated as one config.
 */
function compose(fileRaw: unknown, snapshot: ControlPlaneSnapshot | undefined): unknown {
  if (!snapshot) return fileRaw;
  const file = fileRaw as Record<string, unknown>;
  // The collections a tenant has are the ones the control plane created from its templates:
  // the vector route must offer exactly those, in the same mode, whatever the file says.
  // Only those fields: url, api_key and path_prefix stay the file's, so a snapshot (from
  // whoever answered as the control plane) cannot send tenants' vectors, or the operator's
  // Qdrant key, to an address of its choosing.
  const vector =
    snapshot.vector && file.vector && typeof file.vector === 'object'
      ? {
          ...(file.vector as Record<string, unknown>),
          ...Object.fromEntries(
            Object.entries(snapshot.vector).filter(([key]) => SNAPSHOT_VECTOR_FIELDS.has(key)),
          ),
        }
      : file.vector;
  return {
    ...file,
    plans: snapshot.plans,
    tenants: snapshot.tenants,
    pricing: snapshot.pricing,
    ...(vector === undefined ? {} : { vector }),
  };
}

/**
 * A relative `snapshot_path` is read against the config file's folder, not the working
 * directory: a proxy started from elsewhere while the control plane is down must still find
 * the snapshot it saved. A config given as an object (tests, embedding) has no file, so its
 * relative path stays relative to the working directory.
 */
export function snapshotPathOf(path: string, configPath: string | undefined): string {
  return configPath === undefined ? resolve(path) : resolve(dirname(resolve(configPath)), path);
}

/**
 * What the proxy reads only as it starts, by name: a reload that changes one says so, rather
 * than "config reloaded" alone. The store's failure policy and slot TTL are the store's,
 * made at start: a reload to fail_closed, or to a shorter slot TTL, said nothing and left
 * requests unlimited or concurrency unenforced until a restart (found by review). The control
 * plane source (URL, token, polling) too: a new token or URL took no effect.
 */
const AT_START: readonly (readonly [string, (config: Config) => unknown])[] = [
  ['store settings', (c) => c.store],
  ['on_store_error and slot_ttl_ms', (c) => [c.on_store_error, c.slot_ttl_ms]],
  ['listen addresses', (c) => [c.listen, c.admin_listen]],
  ['server timeouts and connection limits', (c) => c.server],
  ['control_plane settings', (c) => c.control_plane],
  ['metrics.max_tenants', (c) => c.metrics.max_tenants],
  ['telemetry settings', (c) => c.telemetry],
];

export async function startProxy(options: StartOptions): Promise<RunningProxy> {
  const loaded = options.configPath
    ? await loadConfigFile(options.configPath)
    : { raw: options.config, config: await parseConfigInSlices(options.config), text: undefined };
  let fileRaw: unknown = loaded.raw;
  const fromFile = loaded.config;
  // Its own logger's level follows reloads; a logger given by the caller keeps its own.
  const ownLogger = options.logger ? undefined : createLogger(fromFile.log.level);
  const logger: Logger = options.logger ?? ownLogger!;
  // Reloads (file edits, snapshots, reload()) run one at a time, in order: each validates and
  // builds in slices that yield to requests, so without this a slower, older one could
  // finish after a newer one and win.
  let reloads: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(job: () => Promise<T>): Promise<T> => {
    const run = reloads.then(job, job);
    reloads = run.catch(() => undefined);
    return run;
  };

  let snapshot: ControlPlaneSnapshot | undefined;
  // Set once the proxy is running; until then a snapshot only replaces the initial config.
  const live: { apply?: (config: Config, version: number) => Promise<void>; rejected?: () => void } = {};
  let source: ControlPlaneSource | undefined;
  let initial = fromFile;
  if (fromFile.control_plane) {
    const plane = fromFile.control_plane;
    source = createControlPlaneSource(
      {
        url: plane.url,
        token: plane.token,
        pollIntervalMs: plane.poll_interval_ms,
        snapshotPath: snapshotPathOf(plane.snapshot_path, options.configPath),
        redisUrl: typeof fromFile.store === 'object' ? fromFile.store.redis : undefined,
        keyPrefix: typeof fromFile.store === 'object' ? fromFile.store.key_prefix : 'lk:',
        logger,
      },
      (next) =>
        oneAtATime(async () => {
          // Rejects on an invalid snapshot, which the source then refuses to keep.
          let config: Config;
          try {
            config = await parseConfigInSlices(compose(fileRaw, next));
          } catch (error) {
            live.rejected?.();
            throw error;
          }
          if (live.apply) await live.apply(config, next.version);
          else initial = config;
          snapshot = next;
        }),
    );
    await source.start();
  }
  for (const warning of configWarnings(initial)) logger.warn(warning, 'config warning');

  const metrics = new Metrics(initial.metrics.max_tenants);
  const store = createStore(initial, { metrics, logger });
  // A control-plane proxy without Redis has no usage stream for the ledger: post usage instead.
  const usageSink =
    fromFile.control_plane && initial.store === 'memory'
      ? createHttpUsageSink(
          { url: fromFile.control_plane.url, token: fromFile.control_plane.token },
          {
            metrics,
            logger,
            // A post that fails while the config poll fails too is the outage that poll reports.
            reportedElsewhere: async () => {
              await source?.refresh();
              return source?.down ?? false;
            },
          },
        )
      : undefined;
  const meteredStore: typeof store = usageSink
    ? {
        ...store,
        async record(event) {
          await store.record(event);
          usageSink.push(event);
        },
      }
    : store;
  let runtime: Runtime = await buildRuntimeInSlices(initial, undefined, { logger });
  const pools = new UpstreamPools(runtime.upstreams);
  const health = new UpstreamHealth(metrics, { logger });
  const makeVectorRoute = (config: Config) =>
    config.vector ? createVectorRoute({ config: config.vector, metrics, logger }) : undefined;
  let vector = makeVectorRoute(initial);
  let draining = false;
  const pendingWork = new Set<Promise<void>>();

  /** Builds the new runtime in slices, then swaps everything in one synchronous step. */
  const apply = async (next: Config) => {
    // admin_listen applies at start: the rule for /metrics holds for the listener that runs.
    // Checked against the new address only, a reload to 127.0.0.1 without a token opened
    // /metrics on the address still listened on (found by review).
    const metricsProblem = metricsTokenProblem(next, initial.admin_listen);
    if (metricsProblem) throw new ConfigError([metricsProblem]);
    const built = await buildRuntimeInSlices(next, runtime, { logger });
    const previous = runtime.config;
    // Against what the proxy started with, which is what runs: against the previous reload,
    // a second reload said nothing of a change the first had already not applied.
    for (const [what, read] of AT_START) {
      if (JSON.stringify(read(next)) !== JSON.stringify(read(initial)))
        logger.warn({}, `${what} changed: they apply after a restart`);
    }
    if (ownLogger && next.log.level !== previous.log.level) ownLogger.level = next.log.level;
    if (JSON.stringify(next.vector) !== JSON.stringify(previous.vector)) {
      const old = vector;
      vector = makeVectorRoute(next);
      void old?.close().catch(() => undefined);
    }
    runtime = built;
    pools.update(runtime.upstreams);
    health.keepOnly(runtime.upstreams.map((u) => u.name));
    await metrics.forgetTenantsNotIn(runtime.tenants);
    metrics.refreshBudgets((id) => {
      const limits = runtime.tenants.get(id)?.plan.rate_limits;
      return [limits?.budget_usd_per_day, limits?.budget_usd_per_month];
    });
    for (const warning of configWarnings(next)) logger.warn(warning, 'config warning');
  };

  const quirks = new UpstreamQuirks();
  live.apply = async (config, version) => {
    await apply(config);
    metrics.configReloads.inc({ result: 'applied' });
    logger.info({ version }, 'control-plane snapshot applied');
  };
  live.rejected = () => metrics.configReloads.inc({ result: 'rejected' });

  const tracer = await startRequestTracer(initial.telemetry, options.env ?? process.env, logger, {
    exportDelayMs: options.traceExportDelayMs,
    exportOutage: options.traceExportOutage,
  });
  const pipeline = createPipeline({
    store: meteredStore,
    metrics,
    logger,
    quirks,
    health,
    vector: () => vector,
  });
  const handler = createProxyHandler({
    getRuntime: () => runtime,
    pipeline,
    dispatcher: (upstream) => pools.get(upstream),
    health,
    metrics,
    logger,
    tracer,
    isDraining: () => draining,
    quirks,
    track(work) {
      pendingWork.add(work);
      void work.finally(() => pendingWork.delete(work));
    },
  });
  let inflight = 0;
  let onIdle: (() => void) | undefined;
  const traffic = createServer(listenerOptions(initial), (req, res) => {
    inflight++;
    res.once('close', () => {
      inflight--;
      if (inflight === 0) onIdle?.();
    });
    if (draining) res.shouldKeepAlive = false;
    handler(req, res);
  });
  traffic.on('clientError', answerClientError);
  // Past the cap node closes a new connection as soon as it is accepted: refused cleanly,
  // where accepting it would starve it and every other client of descriptors.
  traffic.maxConnections = maxConnectionsFor(initial);
  traffic.on('drop', () => metrics.connectionsDropped.inc());
  const admin = createServer(
    listenerOptions(initial),
    createAdminHandler({ metrics, store, getRuntime: () => runtime, accepting: () => !draining }),
  );
  // Probes, scrapes and usage reads need few sockets; capped, a flood of them (no token is
  // needed for /healthz) cannot take the descriptors tenant traffic and upstreams use.
  admin.maxConnections = ADMIN_MAX_CONNECTIONS;
  await listen(traffic, initial.listen);
  await listen(admin, initial.admin_listen);

  let watcher: ConfigWatcher | undefined;
  if (options.configPath) {
    watcher = watchConfigFile(
      options.configPath,
      // Throws on an invalid edit; the watcher then calls the error handler below.
      (next) =>
        oneAtATime(async () => {
          await apply(await parseConfigInSlices(compose(next, snapshot)));
          fileRaw = next;
          metrics.configReloads.inc({ result: 'applied' });
          logger.info({ path: options.configPath }, 'config reloaded');
        }),
      (error) => {
        metrics.configReloads.inc({ result: 'rejected' });
        logger.error({ err: error.message }, 'config edit rejected; keeping the previous config');
      },
      { env: process.env, loadedText: loaded.text, warn: (fields, msg) => logger.warn(fields, msg) },
    );
  }
  logger.info({ listen: urlOf(traffic), admin: urlOf(admin), store: store.kind }, 'lanekeeper proxy started');

  return {
    url: urlOf(traffic),
    adminUrl: urlOf(admin),
    metrics,
    config: () => runtime.config,
    reload(next) {
      return oneAtATime(async () => {
        await apply(await parseConfigInSlices(compose(next, snapshot)));
        fileRaw = next;
        metrics.configReloads.inc({ result: 'applied' });
      });
    },
    async close(graceMs = runtime.config.shutdown_grace_ms) {
      if (draining) return;
      draining = true;
      const drainStarted = Date.now();
      const inflightAtStart = inflight;
      logger.info(
        { in_flight: inflightAtStart, grace_ms: graceMs },
        'shutting down: draining in-flight requests',
      );
      watcher?.close();
      await source?.close();
      const closed = new Promise<void>((resolve) => traffic.close(() => resolve()));
      traffic.closeIdleConnections();
      if (inflight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          timer.unref();
          onIdle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      // Whatever is still running after the grace period is cut here.
      const cut = inflight;
      traffic.closeAllConnections();
      await closed;
      // Metering and settling run after each response; let them land before the store closes.
      await Promise.allSettled([...pendingWork]);
      await tracer?.shutdown();
      await new Promise<void>((resolve) => admin.close(() => resolve()));
      admin.closeAllConnections();
      await pools.close();
      await vector?.close().catch(() => undefined);
      const waiting = store.pending() + (usageSink?.pending() ?? 0);
      await store.close();
      const sinkUnsent = (await usageSink?.close()) ?? 0;
      logger.info(
        {
          drained: inflightAtStart - cut,
          cut,
          // Buffered while the store (or the control plane) was away: sent on close, or dropped.
          meter_events_waiting: waiting,
          meter_events_unsent: store.pending() + sinkUnsent,
          drain_ms: Date.now() - drainStarted,
        },
        'lanekeeper proxy stopped',
      );
    },
  };
}
