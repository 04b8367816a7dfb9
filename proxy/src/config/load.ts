/**
 * Reads the YAML config file: parses it, interpolates ${ENV} references, validates it, and
 * watches it so that a valid edit applies without a restart while an invalid one keeps the
 * old config. YAML syntax errors are reported with their line, like schema problems.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
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
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError([{ path: '(file)', message: `cannot read ${path}: ${(error as Error).message}` }]);
  }
  const raw = await parseYamlConfigInSlices(text, env, policy);
  return { raw, config: await parseConfigInSlices(raw, policy), text };
}

export interface ConfigWatcher {
  close(): void;
}

/**
 * Calls `onChange` with the newly parsed raw config after each edit of `path`, and `onError`
 * when the YAML is invalid or `onChange` throws (it validates). Reloads run one at a time, in
 * the order of the edits, so a slow one cannot land after a newer one. Watches the directory, not the file, because editors and
 * Kubernetes ConfigMaps replace files by rename, which a file watch would lose.
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
  env: NodeJS.ProcessEnv = process.env,
  loadedText?: string,
): ConfigWatcher {
  const full = resolve(path);
  const name = basename(full);
  let timer: NodeJS.Timeout | undefined;
  let lastText: string | undefined;
  let queue: Promise<void> = Promise.resolve();
  let closed = false;
  const reload = async () => {
    if (closed) return;
    try {
      const text = await readFile(full, 'utf8');
      if (text === lastText) return;
      lastText = text;
      await onChange(await parseYamlConfigInSlices(text, env));
    } catch (error) {
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
  const watcher: FSWatcher = watch(dirname(full), (_event, file) => {
    // Kubernetes swaps a "..data" symlink rather than the file itself, so reload on any
    // change in the directory and let the content comparison drop non-changes.
    if (file !== null && file !== name && !String(file).startsWith('..')) return;
    clearTimeout(timer);
    timer = setTimeout(() => (queue = queue.then(reload)), 50);
  });
  if (loadedText !== undefined) queue = queue.then(reload);
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      watcher.close();
    },
  };
}
