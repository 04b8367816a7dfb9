/**
 * The `lanekeeper` command line: `proxy --config FILE`, `hash-key KEY`,
 * `check-config FILE`, and the control plane's `control-plane` and `migrate`.
 */
import { ConfigError } from './errors.js';
import { loadConfigFile } from './config/load.js';
import { configWarnings } from './config/schema.js';
import { sha256Hex } from './identity/credentials.js';
import { startProxy } from './main.js';

// Imported at run time only, so the proxy image does not need the control plane's code. A
// relative URL resolves to the sources under tsx and to dist/ in a built image alike.
const CONTROL_PLANE_MODULE = new URL('../../control-plane/src/main.js', import.meta.url).href;

const USAGE = `usage: lanekeeper <command>

commands:
  proxy --config FILE     start the proxy with a YAML config (edits apply live)
  check-config FILE       validate a config and print every problem with its path
  hash-key KEY            print the sha256 hex of an API key, for api_key_sha256
  control-plane           start the control plane (configured from the environment)
  migrate                 apply the control plane's database migrations
`;

function fail(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
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
      if (stopping) return;
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
  switch (command) {
    case 'proxy': {
      const configPath = optionValue(args, '--config') ?? process.env.LANEKEEPER_CONFIG;
      if (!configPath) fail('lanekeeper proxy needs --config FILE');
      const proxy = await startProxy({ configPath });
      onSignals(() => proxy.close());
      return;
    }
    case 'check-config': {
      const file = args[0];
      if (!file) fail('lanekeeper check-config needs a FILE');
      const { config } = await loadConfigFile(file);
      for (const warning of configWarnings(config))
        process.stdout.write(`warning: ${warning.path}: ${warning.message}\n`);
      process.stdout.write(
        `${file}: OK (${config.tenants.length} tenants, ${Object.keys(config.plans).length} plans)\n`,
      );
      return;
    }
    case 'hash-key': {
      const key = args[0];
      if (!key) fail('lanekeeper hash-key needs a KEY');
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
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      fail(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    fail(
      `${error.problems.length} problem(s) in the configuration:\n${error.problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`,
      1,
    );
  }
  fail(`lanekeeper: ${(error as Error).stack ?? String(error)}`, 1);
});
