/**
 * Reads the YAML config file: parses it, interpolates ${ENV} references, validates it, and
 * watches it so that a valid edit applies without a restart while an invalid one keeps the
 * old config. YAML syntax errors are reported with their line, like schema problems.
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, dirname, resolve } from 'node:path';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { parseConfigInSlices } from './parse-in-slices.js';
import type { Config } from './schema.js';
import { createSlicer, forEachInSlices, type SlicePolicy } from './slices.js';
import { parseYamlOffThread } from './yaml-off-thread.js';
import { parseYamlText } from './yaml-text.js';

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces ${NAME} and ${NAME:-default} in every string of `value`; unset names become problems. */
export function interpolateEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
  path: string[] = [],
): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_match, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined) return found;
      if (fallback !== undefined) return fallback;
      problems.push({ path: path.join('.') || '(root)', message: `environment variable ${name} is not set` });
      return '';
    });
  }
  if (Array.isArray(value))
    return value.map((item, i) => interpolateEnv(item, env, problems, [...path, String(i)]));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [
        key,
        interpolateEnv(inner, env, problems, [...path, key]),
      ]),
    );
  }
  return value;
}

/** Parses YAML text into a raw (unvalidated, interpolated) object; throws ConfigError. */
export function parseYamlConfig(text: string, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const raw = mappingOf(parseYamlText(text));
  const problems: ConfigProblem[] = [];
  return checked(interpolateEnv(raw, env, problems) as Record<string, unknown>, problems);
}

/**
 * Above this size the YAML is parsed in a worker thread, where it cannot hold the event loop
 * however large it is (the parser takes roughly 1 ms per 15 KB); a smaller one parses faster
 * than a worker starts.
 */
export const OFF_THREAD_BYTES = 64 * 1024;

/**
 * parseYamlConfig for a load or reload that must not stall requests: a large file is parsed
 * in a worker and its tenants are interpolated one slice at a time.
 */
export async function parseYamlConfigInSlices(
  text: string,
  env: NodeJS.ProcessEnv = process.env,
  policy?: SlicePolicy,
): Promise<Record<string, unknown>> {
  const raw = mappingOf(
    text.length > OFF_THREAD_BYTES ? await parseYamlOffThread(text) : parseYamlText(text),
  );
  const problems: ConfigProblem[] = [];
  const slicer = createSlicer(policy);
  const entries: [string, unknown][] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (key !== 'tenants' || !Array.isArray(value)) {
      entries.push([key, interpolateEnv(value, env, problems, [key])]);
      continue;
    }
    const tenants: unknown[] = [];
    await forEachInSlices(
      value,
      (tenant, i) => tenants.push(interpolateEnv(tenant, env, problems, [key, String(i)])),
      slicer,
    );
    entries.push([key, tenants]);
  }
  // fromEntries, not assignment: a "__proto__" key stays a plain key, as in interpolateEnv.
  return checked(Object.fromEntries(entries), problems);
}

function mappingOf(raw: unknown): Record<string, unknown> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([{ path: '(root)', message: 'the config file must be a YAML mapping' }]);
  }
  return raw as Record<string, unknown>;
}

/** Throws the interpolation problems, and any section the control plane owns. */
function checked(interpolated: Record<string, unknown>, problems: ConfigProblem[]): Record<string, unknown> {
  if (interpolated.control_plane !== undefined) {
    for (const key of ['plans', 'tenants', 'pricing']) {
      if (interpolated[key] !== undefined) {
        problems.push({
          path: key,
          message: 'with control_plane set, this comes from the control plane: remove it from the file',
        });
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return interpolated;
}

/** Reads and validates a config file, yielding to the event loop as parseConfigInSlices does. */
export async function loadConfigFile(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
  policy?: SlicePolicy,
): Promise<{ raw: Record<string, unknown>; config: Config; text: string }> {
  let text: string;
  try {
    const { size } = await stat(path);
    if (size > MAX_CONFIG_BYTES) throw tooLarge(path, size);
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError([{ path: '(file)', message: `cannot read ${path}: ${(error as Error).message}` }]);
  }
  const raw = await parseYamlConfigInSlices(text, env, policy);
  return { raw, config: await parseConfigInSlices(raw, policy), text };
}

export interface ConfigWatcher {
  close(): void;
}

/** Past this, the file is no config: V8 cannot hold a string much larger anyway. */
export const MAX_CONFIG_BYTES = 256 * 1024 * 1024;
/** How often the file is looked at besides the directory watch (see watchConfigFile). */
const POLL_MS = 2_000;
/** A file whose size or time changed within this after it was read is still being written. */
const SETTLE_MS = 150;

export interface WatchOptions {
  env?: NodeJS.ProcessEnv;
  /** The text the running config was loaded from (see below). */
  loadedText?: string;
  /** Told when the directory cannot be watched, and the file is only polled. */
  warn?: (fields: Record<string, unknown>, msg: string) => void;
  pollMs?: number;
  /** Tests give a watch that fails. */
  watch?: typeof watch;
}

function tooLarge(path: string, size: number): ConfigError {
  const mib = (n: number) => `${Math.round(n / 1024 / 1024)} MiB`;
  return new ConfigError([
    {
      path: '(file)',
      message: `${path} is ${mib(size)}: the proxy reads a config of at most ${mib(MAX_CONFIG_BYTES)}`,
    },
  ]);
}

/**
 * Calls `onChange` with the newly parsed raw config after each edit of `path`, and `onError`
 * when the YAML is invalid or `onChange` throws (it validates). Reloads run one at a time, in
 * the order of the edits, so a slow one cannot land after a newer one.
 *
 * Two ways to see an edit, since neither sees them all:
 * - a watch of the directory, not the file: editors and Kubernetes ConfigMaps replace files by
 *   rename, which a file watch would lose. It is fast;
 * - a look at the file every 2 s (its inode, size and time, through symlinks). A directory that
 *   is itself a symlink swapped for another (a ConfigMap's subPath, a release's `current`), or a
 *   single file bind-mounted into a container (docker-compose), changes nothing the directory
 *   watch sees, and reloads stopped without a word; a directory that cannot be watched (no
 *   inotify instance left) failed the start.
 *
 * A file still being written is not applied: an empty one is skipped, and one whose size or
 * time changes within 150 ms of being read is read again later. A config valid so far, cut
 * after half its tenants, was applied, and the other half got 401 until the write ended.
 *
 * `loadedText` is the text the running config was loaded from. Given it, the watcher compares
 * edits with it and looks at the file once as it starts, so an edit made between the load and
 * the watch (the proxy starts listening in between, which takes a while with many tenants)
 * is applied rather than taken for the loaded text or missed.
 */
export function watchConfigFile(
  path: string,
  onChange: (raw: Record<string, unknown>) => void | Promise<void>,
  onError: (error: Error) => void,
  options: WatchOptions = {},
): ConfigWatcher {
  const { env = process.env, loadedText } = options;
  const full = resolve(path);
  const name = basename(full);
  let timer: NodeJS.Timeout | undefined;
  let lastText: string | undefined;
  let lastSeen = '';
  let queue: Promise<void> = Promise.resolve();
  let closed = false;
  // At most one reload waits behind the one running: looks made while a slow read ran each
  // queued one more, and a file too large was then reported once per look.
  let waiting = false;
  let reportedFor = '';
  const schedule = (delayMs = 50) => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (waiting) return;
      waiting = true;
      queue = queue.then(() => {
        waiting = false;
        return reload();
      });
    }, delayMs);
  };
  const seen = (st: { ino: number; size: number; mtimeMs: number }) => `${st.ino}:${st.size}:${st.mtimeMs}`;
  const reload = async () => {
    if (closed) return;
    try {
      // Read through one descriptor, at most the size it had when opened: a file that grew
      // past the bound between a stat and a read was read whole.
      const file = await open(full, 'r');
      let before: Awaited<ReturnType<typeof file.stat>>;
      let bytes: Buffer;
      try {
        before = await file.stat();
        // Seen now, before anything can throw: a file too large or unreadable is reported
        // once, not at every look.
        lastSeen = seen(before);
        if (before.size > MAX_CONFIG_BYTES) throw tooLarge(full, before.size);
        // Bytes, compared with the size in bytes: as text, one byte that is no UTF-8 (a
        // Latin-1 letter in a comment) never matched, and no edit was applied again.
        const buffer = Buffer.alloc(before.size);
        const { bytesRead } = await file.read(buffer, 0, before.size, 0);
        bytes = buffer.subarray(0, bytesRead);
      } finally {
        await file.close();
      }
      await sleep(SETTLE_MS);
      if (closed) return;
      const after = await stat(full);
      lastSeen = seen(after);
      // Still being written (or emptied on the way to being rewritten): the writes to come
      // bring another look.
      if (seen(before) !== lastSeen || bytes.length !== after.size) return schedule(SETTLE_MS);
      const text = bytes.toString('utf8');
      if (text.trim() === '') return;
      if (text === lastText) return;
      lastText = text;
      const raw = await parseYamlConfigInSlices(text, env);
      // Closed meanwhile (the proxy stopping): a reload must not run during its shutdown.
      if (!closed) await onChange(raw);
    } catch (error) {
      // One report per state of the file: a file too large or unreadable stays so until edited.
      if (closed || lastSeen === reportedFor) return;
      reportedFor = lastSeen;
      onError(error as Error);
    }
  };
  if (loadedText === undefined) {
    void readFile(full, 'utf8').then(
      (text) => (lastText = text),
      () => undefined,
    );
  } else {
    lastText = loadedText;
  }
  void stat(full).then(
    (st) => (lastSeen ||= seen(st)),
    () => undefined,
  );
  const polling = setInterval(() => {
    stat(full).then(
      (st) => {
        if (seen(st) !== lastSeen) schedule();
      },
      () => undefined,
    );
  }, options.pollMs ?? POLL_MS).unref();
  let watcher: FSWatcher | undefined;
  const watchFailed = (error: Error) => {
    watcher?.close();
    watcher = undefined;
    options.warn?.(
      { path: full, err: error.message },
      `cannot watch the config's directory: edits are seen by looking at the file every ${Math.round((options.pollMs ?? POLL_MS) / 1000)} s`,
    );
  };
  try {
    watcher = (options.watch ?? watch)(dirname(full), (_event, file) => {
      // Kubernetes swaps a "..data" symlink rather than the file itself, so reload on any
      // change in the directory and let the content comparison drop non-changes.
      if (file !== null && file !== name && !String(file).startsWith('..')) return;
      schedule();
    });
    watcher.on('error', watchFailed);
  } catch (error) {
    watchFailed(error as Error);
  }
  if (loadedText !== undefined) queue = queue.then(reload);
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      clearInterval(polling);
      watcher?.close();
    },
  };
}
