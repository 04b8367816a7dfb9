/**
 * Plans, tenants and pricing from the control plane instead of the YAML file. The source
 * loads GET /v1/config (proxy token, ETag), refetches at once when the control plane
 * announces a new version on Redis pub/sub (`${keyPrefix}config`), and polls as a fallback
 * for lost announcements. Every snapshot the proxy accepted is written to disk atomically
 * (temp file, fsync, rename), and a proxy that starts while the control plane is down
 * starts from that file, so the control plane is never on the request path.
 *
 * `onSnapshot` decides whether a snapshot is good (the proxy merges it into the file config
 * and validates it, in slices that let requests run between them): when it throws or
 * rejects, the proxy keeps its previous config, the bad snapshot is not persisted, and it is
 * fetched and offered again at each poll (logged once per version) until one is accepted.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { configChannel, createOutageLog } from '@lanekeeper/contract';
import { Redis } from 'ioredis';
import { textUpTo } from '../response-text.js';

/** What GET /v1/config returns: plans, tenants and pricing in the YAML config's shapes. */
export interface ControlPlaneSnapshot {
  version: number;
  plans: Record<string, unknown>;
  tenants: unknown[];
  pricing: Record<string, unknown>;
  /**
   * The control plane's vector mode and collection templates, present when it manages
   * Qdrant collections: a proxy with `vector` configured takes them instead of its own.
   */
  vector?: { mode: string; templates: unknown[] };
}

/** The logging a source needs (pino fits). */
export interface SourceLogger {
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ControlPlaneSourceOptions {
  /** Base URL of the control plane, e.g. http://control-plane:8081. */
  url: string;
  /** LANEKEEPER_PROXY_TOKEN of the control plane. */
  token: string;
  pollIntervalMs: number;
  /** Where the last good snapshot is kept, e.g. .lanekeeper/snapshot.json. */
  snapshotPath: string;
  /** Redis to hear change announcements on; without it the source only polls. */
  redisUrl?: string;
  /** The store.key_prefix shared with the control plane (the channel is `${keyPrefix}config`). */
  keyPrefix: string;
  logger: SourceLogger;
  /** Per-fetch timeout; 5 s by default. */
  fetchTimeoutMs?: number;
  /** How often an outage of the control plane or of Redis is summarised in the log (default a minute). */
  outageSummaryMs?: number;
  /** The largest snapshot taken; 64 MiB by default. */
  maxSnapshotBytes?: number;
}

/**
 * 10,000 tenants make a snapshot of ~2 MB. Read whole with no bound, a 300 MB answer (from
 * whatever holds the control plane's URL, or a hostile one) ran the proxy out of heap, and
 * again at every restart (found by review).
 */
const MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024;

/** An error's message with its cause (fetch's "fetch failed" says nothing alone). */
function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

/** A running source. */
export interface ControlPlaneSource {
  /** Loads the first snapshot (control plane, else disk) and starts listening and polling. */
  start(): Promise<void>;
  /** Fetches now; resolves true when a new snapshot was applied. Never throws. */
  refresh(): Promise<boolean>;
  close(): Promise<void>;
  /** The control plane cannot be reached or refuses this proxy's token: that outage is being logged. */
  readonly down: boolean;
  /** Version of the snapshot in use, and where it came from. */
  readonly current: { version: number; origin: 'control-plane' | 'disk' } | undefined;
}

/** The control plane is unreachable and there is no snapshot on disk to start from. */
export class ControlPlaneUnavailableError extends Error {
  readonly code = 'PROXY_ERR_CONTROL_PLANE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ControlPlaneUnavailableError';
  }
}

interface DiskSnapshot {
  etag: string | null;
  saved_at: string;
  snapshot: ControlPlaneSnapshot;
}

function isSnapshot(value: unknown): value is ControlPlaneSnapshot {
  const v = value as ControlPlaneSnapshot | null;
  return (
    !!v &&
    typeof v === 'object' &&
    typeof v.version === 'number' &&
    !!v.plans &&
    typeof v.plans === 'object' &&
    Array.isArray(v.tenants) &&
    !!v.pricing &&
    typeof v.pricing === 'object'
  );
}

/** Writes `data` so a reader sees the old file or the new one, never a torn one. */
async function writeAtomically(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const file = await open(temp, 'w', 0o600);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
}

export function createControlPlaneSource(
  options: ControlPlaneSourceOptions,
  // May return a promise (the proxy validates in slices); it is awaited.
  onSnapshot: (raw: ControlPlaneSnapshot) => unknown,
): ControlPlaneSource {
  const { logger, snapshotPath } = options;
  const configUrl = new URL('/v1/config', options.url).toString();
  const maxSnapshotBytes = options.maxSnapshotBytes ?? MAX_SNAPSHOT_BYTES;
  const channel = configChannel(options.keyPrefix);
  let etag: string | null = null;
  let current: ControlPlaneSource['current'];
  let refusedVersion: number | undefined;
  let subscriber: Redis | undefined;
  let poller: NodeJS.Timeout | undefined;
  // Polled every few seconds: an outage is one warning, a summary a minute, one recovery line.
  const controlPlaneOutage = createOutageLog(logger, 'control plane', { summaryMs: options.outageSummaryMs });
  // Its own story: a control plane that answers but refuses this proxy's token (rotated on one
  // side only) looks like any outage in the one above, where it hid behind the first warning,
  // while tenants' revoked keys kept working here.
  const tokenRefused = createOutageLog(logger, 'control plane (this proxy token refused)', {
    summaryMs: options.outageSummaryMs,
  });
  // The subscription's Redis is the store's (store.redis): its outage is the store's, which
  // the store logs. Told at warn too, one Redis outage read as two, with two summaries a minute.
  const quiet = (fields: object, msg: string) => logger.debug?.(fields, msg);
  const redisOutage = createOutageLog({ warn: quiet, info: quiet }, 'config subscription (redis)', {
    summaryMs: options.outageSummaryMs,
  });
  let inFlight: Promise<boolean> | undefined;
  let again = false;
  let closed = false;

  /** One GET; undefined on 304. Throws when the control plane cannot answer. */
  const fetchSnapshot = async (): Promise<
    { snapshot: ControlPlaneSnapshot; etag: string | null } | undefined
  > => {
    const response = await fetch(configUrl, {
      headers: { authorization: `Bearer ${options.token}`, ...(etag ? { 'if-none-match': etag } : {}) },
      signal: AbortSignal.timeout(options.fetchTimeoutMs ?? 5000),
      // A control plane never redirects: one that does is not the control plane.
      redirect: 'error',
    });
    // A 304 took the token too: the first good answer after a refusal is almost always one,
    // since the config did not change meanwhile, and a refusal never ended before.
    if (response.status === 304) {
      tokenRefused.succeeded();
      return undefined;
    }
    if (response.status !== 200) {
      const error = new Error(
        `GET ${configUrl} answered ${response.status}: ${(await response.text()).slice(0, 200)}`,
      );
      if (response.status === 401 || response.status === 403) tokenRefused.failed(error);
      throw error;
    }
    tokenRefused.succeeded();
    const body: unknown = JSON.parse(
      await textUpTo(
        response,
        maxSnapshotBytes,
        () =>
          new Error(`GET ${configUrl} answered more than ${maxSnapshotBytes} bytes: not a config snapshot`),
      ),
    );
    if (!isSnapshot(body))
      throw new Error(`GET ${configUrl} returned something that is not a config snapshot`);
    return { snapshot: body, etag: response.headers.get('etag') };
  };

  /** Offers a snapshot to the proxy; persists it only when the proxy accepted it. */
  const apply = async (
    snapshot: ControlPlaneSnapshot,
    tag: string | null,
    origin: 'control-plane' | 'disk',
  ) => {
    await onSnapshot(snapshot);
    // Only once accepted: a snapshot refused is fetched again at the next poll (its 304
    // kept it refused, whatever the proxy's own file changed meanwhile).
    etag = tag;
    // Followed: the control plane's database is the truth, restored or not. Said, since a
    // control plane on a new, empty database takes every tenant away this way.
    if (current && origin === 'control-plane' && snapshot.version < current.version) {
      logger.warn(
        { from: current.version, to: snapshot.version, tenants: snapshot.tenants.length },
        "the control plane's config version went back: its database was restored or replaced",
      );
    }
    current = { version: snapshot.version, origin };
    if (origin === 'control-plane') {
      const disk: DiskSnapshot = { etag: tag, saved_at: new Date().toISOString(), snapshot };
      await writeAtomically(snapshotPath, JSON.stringify(disk)).catch((error) =>
        logger.warn({ err: error, path: snapshotPath }, 'could not save the config snapshot to disk'),
      );
    }
  };

  const fetchAndApply = async (): Promise<boolean> => {
    const fetched = await fetchSnapshot();
    if (!fetched) return false;
    try {
      await apply(fetched.snapshot, fetched.etag, 'control-plane');
    } catch (error) {
      // Once per version: it is fetched again at every poll.
      if (refusedVersion !== fetched.snapshot.version) {
        logger.error(
          { err: error, version: fetched.snapshot.version },
          'the control plane sent a config this proxy rejects; keeping the previous one',
        );
      }
      refusedVersion = fetched.snapshot.version;
      return false;
    }
    refusedVersion = undefined;
    logger.info({ version: fetched.snapshot.version }, 'config snapshot applied');
    return true;
  };

  const refresh = (): Promise<boolean> => {
    if (closed) return Promise.resolve(false);
    if (inFlight) {
      // A change announced during a fetch may postdate what that fetch read: fetch once more after it.
      again = true;
      return inFlight;
    }
    inFlight = (async () => {
      let changed = false;
      do {
        again = false;
        try {
          changed = (await fetchAndApply()) || changed;
          controlPlaneOutage.succeeded();
        } catch (error) {
          // The proxy keeps serving the last good config meanwhile (said in the first line).
          controlPlaneOutage.failed(`${messageOf(error)}; serving the last good config`);
        }
      } while (again && !closed);
      inFlight = undefined;
      return changed;
    })();
    return inFlight;
  };

  const loadFromDisk = async (): Promise<DiskSnapshot | undefined> => {
    try {
      const disk = JSON.parse(await readFile(snapshotPath, 'utf8')) as DiskSnapshot;
      return isSnapshot(disk?.snapshot) ? disk : undefined;
    } catch {
      return undefined;
    }
  };

  return {
    get current() {
      return current;
    },
    get down() {
      return controlPlaneOutage.down || tokenRefused.down;
    },
    refresh,
    async start() {
      let cause: unknown;
      try {
        const fetched = await fetchSnapshot();
        if (fetched) await apply(fetched.snapshot, fetched.etag, 'control-plane');
      } catch (error) {
        cause = error;
      }
      if (!current) {
        const disk = await loadFromDisk();
        if (!disk) {
          throw new ControlPlaneUnavailableError(
            `cannot load the config: ${configUrl} failed (${(cause as Error | undefined)?.message ?? 'no snapshot'}) and there is no snapshot at ${snapshotPath}`,
            { cause },
          );
        }
        logger.warn(
          { err: cause, path: snapshotPath, version: disk.snapshot.version, saved_at: disk.saved_at },
          'control plane unavailable at start: serving the snapshot saved on disk',
        );
        await apply(disk.snapshot, disk.etag, 'disk');
      }
      if (options.redisUrl) {
        // Not awaited: Redis being down must not hold up start; ioredis connects and resubscribes on its own.
        subscriber = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
        subscriber.on('error', (error) => redisOutage.failed(error));
        subscriber.on('message', (ch: string) => {
          if (ch === channel) void refresh();
        });
        // After any (re)connection, refetch: announcements sent while disconnected are lost.
        subscriber.on('ready', () => {
          redisOutage.succeeded();
          void refresh();
        });
        subscriber.subscribe(channel).catch((error: unknown) => redisOutage.failed(error));
      }
      poller = setInterval(() => void refresh(), options.pollIntervalMs);
      poller.unref();
    },
    async close() {
      closed = true;
      clearInterval(poller);
      await inFlight;
      // QUIT waits in the offline queue of a Redis that is down, for ever (with
      // maxRetriesPerRequest null): the proxy's SIGTERM never got past here.
      if (subscriber?.status === 'ready') await subscriber.quit().catch(() => subscriber?.disconnect());
      else subscriber?.disconnect();
    },
  };
}
