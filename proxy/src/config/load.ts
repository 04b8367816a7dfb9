/**
 * Reads the YAML config file: parses it, interpolates ${ENV} references, validates it, and
 * watches it so that a valid edit applies without a restart while an invalid one keeps the
 * old config. YAML syntax errors are reported with their line, like schema problems.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { parseConfig, type Config } from './schema.js';

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
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((error) => ({
        path: error.linePos ? `line ${error.linePos[0].line}, column ${error.linePos[0].col}` : '(yaml)',
        message: error.message.split('\n')[0] ?? error.message,
      })),
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([{ path: '(root)', message: 'the config file must be a YAML mapping' }]);
  }
  const problems: ConfigProblem[] = [];
  const interpolated = interpolateEnv(raw, env, problems) as Record<string, unknown>;
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

/** Reads and validates a config file. */
export async function loadConfigFile(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ raw: Record<string, unknown>; config: Config }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError([{ path: '(file)', message: `cannot read ${path}: ${(error as Error).message}` }]);
  }
  const raw = parseYamlConfig(text, env);
  return { raw, config: parseConfig(raw) };
}

export interface ConfigWatcher {
  close(): void;
}

/**
 * Calls `onChange` with the newly loaded raw config after each valid edit of `path`, and
 * `onError` after an invalid one. Watches the directory, not the file, because editors and
 * Kubernetes ConfigMaps replace files by rename, which a file watch would lose.
 */
export function watchConfigFile(
  path: string,
  onChange: (raw: Record<string, unknown>) => void,
  onError: (error: Error) => void,
  env: NodeJS.ProcessEnv = process.env,
): ConfigWatcher {
  const full = resolve(path);
  const name = basename(full);
  let timer: NodeJS.Timeout | undefined;
  let lastText: string | undefined;
  const reload = async () => {
    try {
      const text = await readFile(full, 'utf8');
      if (text === lastText) return;
      lastText = text;
      const raw = parseYamlConfig(text, env);
      parseConfig(raw);
      onChange(raw);
    } catch (error) {
      onError(error as Error);
    }
  };
  void readFile(full, 'utf8').then(
    (text) => (lastText = text),
    () => undefined,
  );
  const watcher: FSWatcher = watch(dirname(full), (_event, file) => {
    // Kubernetes swaps a "..data" symlink rather than the file itself, so reload on any
    // change in the directory and let the content comparison drop non-changes.
    if (file !== null && file !== name && !String(file).startsWith('..')) return;
    clearTimeout(timer);
    timer = setTimeout(() => void reload(), 50);
  });
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
