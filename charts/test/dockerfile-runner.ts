/**
 * Builds the filesystem of a Dockerfile target without a Docker engine, by running the
 * Dockerfile's own instructions on this machine: COPY from the build context (filtered by
 * .dockerignore), COPY --from another stage, WORKDIR, ENV and RUN (with the image's /app
 * mapped to a temporary directory). Base images and OS packages are the host's: RUN lines
 * that call apt-get are skipped, and so is `npm cache clean` (it would empty the host's
 * cache). What this proves is the part that is ours: the dependency install, the build, the
 * file layout and the commands the image runs, on the same Node the host has.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';

/** One Dockerfile instruction, continuation lines joined. */
export interface Instruction {
  keyword: string;
  args: string;
}

/** A stage: `FROM base AS name` and its instructions. */
export interface Stage {
  name: string;
  base: string;
  instructions: Instruction[];
}

/** A built target: its root directory and the runtime settings the image would carry. */
export interface BuiltImage {
  root: string;
  env: Record<string, string>;
  user?: string;
  cmd?: string[];
  entrypoint?: string[];
  healthcheck?: string[];
  exposed: string[];
  /** Instructions that ran only partly or not at all here, for the test to report. */
  skipped: string[];
}

/** Parses a Dockerfile into stages. */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const line of lines) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (keyword === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ name: match?.[2] ?? String(stages.length), base: match?.[1] ?? '', instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

function globToRegExp(pattern: string): RegExp {
  const source = pattern
    .split(/(\*\*\/|\*)/)
    .map((part) =>
      part === '**/' ? '(?:.*/)?' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('');
  return new RegExp(`^${source}$`);
}

/** A predicate telling whether .dockerignore leaves a context-relative path out. */
export function dockerignoreFilter(contextDir: string): (path: string) => boolean {
  const file = join(contextDir, '.dockerignore');
  const patterns = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'))
        .map(globToRegExp)
    : [];
  return (path) => {
    const parts = path.split('/');
    return parts.some((_, i) => patterns.some((p) => p.test(parts.slice(0, i + 1).join('/'))));
  };
}

function copyFiltered(
  contextDir: string,
  source: string,
  target: string,
  ignored: (p: string) => boolean,
): void {
  const from = join(contextDir, source);
  if (statSync(from).isDirectory()) {
    mkdirSync(target, { recursive: true });
    for (const entry of readdirSync(from)) {
      const rel = relative(contextDir, join(from, entry));
      if (!ignored(rel)) copyFiltered(contextDir, rel, join(target, entry), ignored);
    }
  } else {
    mkdirSync(dirname(target), { recursive: true });
    cpSync(from, target);
  }
}

/**
 * Builds the `targets` of the Dockerfile in `contextDir` under `workDir` (one sub-directory
 * per stage; stages shared by several targets are built once).
 */
export function buildTargets(
  contextDir: string,
  targets: string[],
  workDir: string,
): Map<string, BuiltImage> {
  const stages = parseDockerfile(readFileSync(join(contextDir, 'Dockerfile'), 'utf8'));
  const ignored = dockerignoreFilter(contextDir);
  const built = new Map<string, BuiltImage>();

  const build = (name: string): BuiltImage => {
    const cached = built.get(name);
    if (cached) return cached;
    const stage = stages.find((s) => s.name === name);
    if (!stage) throw new Error(`no stage ${name}`);
    const parent = stages.some((s) => s.name === stage.base) ? build(stage.base) : undefined;
    const root = join(workDir, name);
    if (parent) cpSync(parent.root, root, { recursive: true, verbatimSymlinks: true });
    else mkdirSync(root, { recursive: true });
    const image: BuiltImage = parent
      ? { ...structuredClone(parent), root, skipped: [...parent.skipped] }
      : { root, env: {}, exposed: [], skipped: [] };
    const toHost = (path: string) => path.replaceAll('/app', root);
    for (const { keyword, args } of stage.instructions) {
      if (keyword === 'WORKDIR' && args !== '/app') throw new Error(`unsupported WORKDIR ${args}`);
      if (keyword === 'ENV') {
        const [key, ...value] = args.split('=');
        image.env[key ?? ''] = value.join('=');
      } else if (keyword === 'COPY') {
        const from = /^--from=(\S+)\s+/.exec(args);
        const paths = args.replace(/^--from=\S+\s+/, '').split(/\s+/);
        const destArg = paths.pop() ?? '.';
        const dest = join(root, destArg);
        // Docker: several sources, or a destination ending in "/", copy into a directory.
        const intoDir = destArg.endsWith('/') || destArg === '.' || paths.length > 1;
        for (const source of paths) {
          const sourceRoot = from ? build(from[1] ?? '').root : contextDir;
          const rel = from ? source.replace(/^\/app\/?/, '') : source;
          const isDir = statSync(join(sourceRoot, rel)).isDirectory();
          const target = isDir || !intoDir ? dest : join(dest, basename(rel));
          if (from) cpSync(join(sourceRoot, rel), target, { recursive: true, verbatimSymlinks: true });
          else copyFiltered(contextDir, rel, target, ignored);
        }
      } else if (keyword === 'RUN') {
        if (/apt-get/.test(args)) {
          image.skipped.push(`RUN ${args.slice(0, 60)}...`);
          continue;
        }
        const command = toHost(args.replace(/\s*&&\s*npm cache clean --force/, ''));
        execFileSync('sh', ['-ec', command], {
          cwd: root,
          stdio: 'pipe',
          env: { ...process.env, ...image.env },
        });
      } else if (keyword === 'USER') image.user = args;
      else if (keyword === 'CMD') image.cmd = JSON.parse(args) as string[];
      else if (keyword === 'ENTRYPOINT') image.entrypoint = JSON.parse(args) as string[];
      else if (keyword === 'EXPOSE') image.exposed = args.split(/\s+/);
      else if (keyword === 'HEALTHCHECK')
        image.healthcheck = JSON.parse(args.slice(args.indexOf('CMD ') + 4)) as string[];
    }
    built.set(name, image);
    return image;
  };
  return new Map(targets.map((target) => [target, build(target)]));
}
