/**
 * The `lanekeeper` command line: `proxy --config FILE`, `hash-key KEY`,
 * `check-config FILE`, the control plane's `control-plane` and `migrate`, and the admin
 * commands (`tenants`, `keys`, `plans`, `usage`), which call a control plane over HTTP
 * (admin-cli/).
 */
import { adminCommandsHelp, processContext, runAdminCommand } from './admin-cli/index.js';
import { ConfigError } from './errors.js';

// The proxy's own modules are imported by the commands that use them: loading the proxy
// took about a second under tsx, which every admin command and --help paid before its
// first byte of output.

// Imported at run time only, so the proxy image does not need the control plane's code. A
// relative URL resolves to the sources under tsx and to dist/ in a built image alike.
const CONTROL_PLANE_MODULE = new URL('../../control-plane/src/main.js', import.meta.url).href;

const USAGE = `usage: lanekeeper <command> [options]

commands:
  proxy --config FILE     start the proxy with a YAML config (edits apply live)
  check-config FILE       validate a config and print every problem with its path
  hash-key KEY            print the sha256 hex of an API key, for api_key_sha256
  control-plane           start the control plane (configured from the environment)
  migrate                 apply the control plane's database migrations

admin commands (a running control plane: LANEKEEPER_CONTROL_PLANE_URL, LANEKEEPER_ADMIN_TOKEN):
${adminCommandsHelp()}
options:
  -h, --help              show this help, or a command's own (lanekeeper <command> --help)
  -V, --version           print the version

`;

/**
 * Each command's own help. `--help` is answered before a command reads its arguments or its
 * environment, so it works on a machine with nothing configured.
 */
const COMMAND_HELP: Readonly<Record<string, string>> = {
  proxy: `usage: lanekeeper proxy --config FILE

Starts the proxy with the YAML config FILE (or $LANEKEEPER_CONFIG). Edits to the file apply
live; an invalid edit is refused and logged while the old config stays in force. SIGTERM or
SIGINT drains in-flight requests (streams included) before exit.
`,
  'check-config': `usage: lanekeeper check-config FILE

Validates the config FILE. Prints "FILE: OK" and any warnings, exit 0; or every problem with
its YAML path, exit 1.
`,
  'hash-key': `usage: lanekeeper hash-key KEY
       lanekeeper hash-key -        (reads the key from stdin)

Prints the sha256 hex of the API key KEY, for a tenant's api_key_sha256 list. With "-" the
key is read from the first line of stdin, so it stays out of the shell history and of ps:
  printf %s "$KEY" | lanekeeper hash-key -
A KEY that starts with "-" goes after "--": lanekeeper hash-key -- -my-key
`,
  'control-plane': `usage: lanekeeper control-plane

Starts the control plane, configured from the environment: LANEKEEPER_ADMIN_TOKEN and
LANEKEEPER_PROXY_TOKEN (required), DATABASE_URL (without it, an embedded database in
LANEKEEPER_DATA_DIR, default .lanekeeper/data, migrated at start; for one machine),
REDIS_URL (without it, proxies poll for config and post usage over HTTP), QDRANT_URL and the
rest listed in docs/control-plane.md. On PostgreSQL it refuses to start on a database whose
migrations are not current: run lanekeeper migrate first.
`,
  migrate: `usage: lanekeeper migrate

Applies the control plane's pending database migrations to DATABASE_URL and exits.
`,
};

const HELP_FLAGS = new Set(['--help', '-h']);

/** The package version, read at run time so the sources and a build print the same. */
async function version(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  for (const up of ['../package.json', '../../package.json', '../../../proxy/package.json']) {
    try {
      const pkg = JSON.parse(await readFile(new URL(up, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === '@lanekeeper/proxy' && pkg.version) return pkg.version;
    } catch {
      // not this layout (sources vs dist/): try the next
    }
  }
  return 'unknown';
}

/** Arguments up to `--`, where options end and a value may start with "-". */
function optionsOf(args: string[]): string[] {
  const end = args.indexOf('--');
  return end === -1 ? args : args.slice(0, end);
}

/** Positional arguments: what is not an option, plus everything after `--`. */
function positionals(args: string[]): string[] {
  const end = args.indexOf('--');
  const before = (end === -1 ? args : args.slice(0, end)).filter((a) => !a.startsWith('-'));
  return end === -1 ? before : [...before, ...args.slice(end + 1)];
}

/** The first line of stdin, without its line ending (a key piped in: `printf %s "$KEY" | …`). */
async function firstLineOfStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n') || text.length > 64 * 1024) break;
  }
  return text.split(/\r?\n/)[0] ?? '';
}

/** The services' names in their log lines (contract logShape), by the command that runs them. */
const SERVICES: Record<string, string> = {
  proxy: 'lanekeeper-proxy',
  'control-plane': 'lanekeeper-control-plane',
};

function fail(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

/**
 * A service that cannot start says why in its log's own shape too (stdout), besides the text
 * on stderr: the one line a JSON log pipeline most needs was the one plain-text line.
 */
function startFailed(message: string): never {
  const service = SERVICES[process.argv[2] ?? ''];
  if (service !== undefined)
    process.stdout.write(
      `${JSON.stringify({ level: 'fatal', time: new Date().toISOString(), service, msg: 'could not start', err: message.replace(/^lanekeeper: /, '') })}\n`,
    );
  fail(message, 1);
}

function optionValue(args: string[], name: string): string | undefined {
  const index = args.indexOf(name);
  if (index >= 0) return args[index + 1];
  const inline = args.find((arg) => arg.startsWith(`${name}=`));
  return inline?.slice(name.length + 1);
}

function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) {
        // A second signal is the operator insisting: leave now, and say so in the log's shape.
        process.stdout.write(
          `${JSON.stringify({ level: 'warn', time: new Date().toISOString(), signal, msg: 'second signal: exiting without waiting for the shutdown' })}\n`,
        );
        process.exit(1);
      }
      stopping = true;
      stop().then(
        () => process.exit(0),
        (error: unknown) => fail(`shutdown failed: ${(error as Error).message}`, 1),
      );
    });
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (
    command !== undefined &&
    Object.hasOwn(COMMAND_HELP, command) &&
    optionsOf(args).some((a) => HELP_FLAGS.has(a))
  ) {
    process.stdout.write(COMMAND_HELP[command] ?? USAGE);
    return;
  }
  switch (command) {
    case 'proxy': {
      const configPath = optionValue(args, '--config') ?? process.env.LANEKEEPER_CONFIG;
      if (!configPath) fail(`lanekeeper proxy needs --config FILE\n\n${COMMAND_HELP.proxy}`);
      const { startProxy } = await import('./main.js');
      const proxy = await startProxy({ configPath });
      onSignals(() => proxy.close());
      return;
    }
    case 'check-config': {
      const file = positionals(args)[0];
      if (!file) fail(`lanekeeper check-config needs a FILE\n\n${COMMAND_HELP['check-config']}`);
      const [{ loadConfigFile }, { configWarnings }] = await Promise.all([
        import('./config/load.js'),
        import('./config/schema.js'),
      ]);
      const { config } = await loadConfigFile(file);
      for (const warning of configWarnings(config))
        process.stdout.write(`warning: ${warning.path}: ${warning.message}\n`);
      process.stdout.write(
        `${file}: OK (${config.tenants.length} tenants, ${Object.keys(config.plans).length} plans)\n`,
      );
      return;
    }
    case 'hash-key': {
      const key = args.length === 1 && args[0] === '-' ? await firstLineOfStdin() : positionals(args)[0];
      if (!key) fail(`lanekeeper hash-key needs a KEY\n\n${COMMAND_HELP['hash-key']}`);
      const { sha256Hex } = await import('./identity/credentials.js');
      process.stdout.write(`${sha256Hex(key)}\n`);
      return;
    }
    case 'control-plane': {
      const { startControlPlane } = (await import(CONTROL_PLANE_MODULE)) as {
        startControlPlane(): Promise<{ close(): Promise<void> }>;
      };
      const plane = await startControlPlane();
      onSignals(() => plane.close());
      return;
    }
    case 'migrate': {
      const { migrate } = (await import(CONTROL_PLANE_MODULE)) as { migrate(): Promise<void> };
      await migrate();
      return;
    }
    case 'tenants':
    case 'keys':
    case 'plans':
    case 'usage':
      // An exit code, not process.exit(): output still in a pipe's buffer must reach the reader.
      process.exitCode = await runAdminCommand(command, args, processContext());
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    case 'version':
    case '--version':
    case '-V':
      process.stdout.write(`lanekeeper ${await version()}\n`);
      return;
    default:
      fail(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    startFailed(
      `${error.problems.length} problem(s) in the configuration:\n${error.problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`,
    );
  }
  // A port already taken is the commonest start-up failure: say which and what to do.
  const system = error as NodeJS.ErrnoException & { address?: string; port?: number };
  if (system.code === 'EADDRINUSE' || system.code === 'EACCES') {
    const where = system.port === undefined ? 'the address' : `${system.address ?? ''}:${system.port}`;
    startFailed(
      `lanekeeper: cannot listen on ${where}: ${system.code === 'EADDRINUSE' ? 'another process is using it' : 'permission denied'}. ` +
        'Stop that process, or choose another port (the proxy: listen / admin_listen in the config; the control plane: PORT).',
    );
  }
  // A database or network refusal (a SQLSTATE such as 3D000, an errno such as ECONNREFUSED)
  // is about the environment, not a bug: its message, and what to check, without a stack.
  if (typeof system.code === 'string' && /^([0-9A-Z]{5}|E[A-Z]+)$/.test(system.code)) {
    const hint =
      system.code === '3D000'
        ? ' Create the database first (createdb NAME), or point DATABASE_URL at one that exists.'
        : system.code === 'ECONNREFUSED'
          ? ' Is the server running at that address (DATABASE_URL, REDIS_URL)?'
          : '';
    startFailed(`lanekeeper: ${system.message} (${system.code}).${hint}`);
  }
  // Our own errors (PROXY_ERR_*, CP_ERR_*) say what to fix; a stack would bury it.
  const ours =
    typeof (error as { code?: unknown }).code === 'string' &&
    /^(PROXY|CP)_ERR_/.test((error as { code: string }).code);
  startFailed(`lanekeeper: ${ours ? (error as Error).message : ((error as Error).stack ?? String(error))}`);
});
