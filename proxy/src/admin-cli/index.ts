/**
 * The admin commands of `lanekeeper` (tenants, keys, plans, usage): a client of the control
 * plane's admin API over HTTP, configured by LANEKEEPER_CONTROL_PLANE_URL and
 * LANEKEEPER_ADMIN_TOKEN. `runAdminCommand` parses, runs and reports; it returns the exit
 * status instead of exiting, so tests run it in-process just as the CLI does.
 * Exit status: 0 done; 1 the API refused (its error body printed as sent) or could not be
 * reached; 2 the command was used wrongly (help says how), nothing was sent.
 */
import { createInterface } from 'node:readline/promises';
import { parseArgs, wantsHelp } from './args.js';
import { adminClientFromEnv, TOKEN_VARIABLE, URL_VARIABLE, type AdminClient } from './client.js';
import type { CommandContext, Resource, Subcommand } from './command.js';
import { AdminApiError, CliUsageError, ControlPlaneUnreachableError } from './errors.js';
import { keys } from './keys.js';
import { plans } from './plans.js';
import { tenants } from './tenants.js';
import { usage, usageCommand } from './usage.js';

const RESOURCES: Readonly<Record<string, Resource>> = { tenants, keys, plans, usage };

/** The admin commands' names, for the top-level dispatch and help. */
export const ADMIN_COMMANDS = Object.keys(RESOURCES);

const FOOTER = `
The control plane is $${URL_VARIABLE} (e.g. http://127.0.0.1:8081),
called with the admin token $${TOKEN_VARIABLE}. Exit status: 0 done; 1 the API
refused (its error is printed as it was sent) or could not be reached; 2 wrong usage or
environment (nothing was sent).
`;

/** The admin commands' lines for `lanekeeper --help`. */
export function adminCommandsHelp(): string {
  const lines = ADMIN_COMMANDS.map((name) => {
    const subs = Object.keys(RESOURCES[name]!.subcommands);
    return `  lanekeeper ${name} ${subs.length ? subs.join('|') : usageCommand.synopsis}\n`;
  });
  return `${lines.join('')}  (each takes --help; output as --format table|csv|json)\n`;
}

function subcommandHelp(resource: string, name: string | undefined, sub: Subcommand): string {
  return `usage: lanekeeper ${resource}${name ? ` ${name}` : ''} ${sub.synopsis}\n\n${sub.summary}.\n\n${sub.details}${FOOTER}`;
}

/** `lanekeeper <resource> --help`: its subcommands, or the command's own help for usage. */
export function resourceHelp(name: string): string {
  if (name === 'usage') return subcommandHelp('usage', undefined, usageCommand);
  const r = RESOURCES[name]!;
  const width = Math.max(...Object.keys(r.subcommands).map((s) => s.length)) + 2;
  const lines = Object.entries(r.subcommands).map(([s, sub]) => `  ${s.padEnd(width)}${sub.summary}\n`);
  return `usage: lanekeeper ${name} <command> [options]\n\n${r.summary}.\n\ncommands:\n${lines.join('')}\nEach command takes --help for its arguments.\n${FOOTER}`;
}

let outClosed = false;
/**
 * Writes to stdout; a reader that went away (`| head`) ends the command quietly. The EPIPE
 * was an unhandled 'error' event: a stack trace and exit status 1 under `set -o pipefail`.
 */
function writeOut(text: string): void {
  if (!outClosed) {
    outClosed = true;
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      process.exit(0);
    });
  }
  process.stdout.write(text);
}

/** The context the real CLI runs in: process streams and environment, a prompt at a terminal. */
export function processContext(env: NodeJS.ProcessEnv = process.env): CommandContext {
  let client: AdminClient | undefined;
  return {
    client: () => (client ??= adminClientFromEnv(env)),
    stdout: (text) => void writeOut(text),
    stderr: (text) => void process.stderr.write(text),
    async readStdin() {
      let text = '';
      process.stdin.setEncoding('utf8');
      for await (const chunk of process.stdin) text += chunk as string;
      return text;
    },
    ask: process.stdin.isTTY
      ? async (question) => {
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          try {
            return await rl.question(question);
          } catch (error) {
            // Ctrl+C or Ctrl+D at the prompt: no answer, which the command takes as "no"
            // (it printed a stack trace and exited 1 before).
            if ((error as Error).name === 'AbortError') {
              process.stderr.write('\n');
              return '';
            }
            throw error;
          } finally {
            rl.close();
          }
        }
      : undefined,
  };
}

/** Runs `lanekeeper <resource> ...args`; resolves with the exit status. */
export async function runAdminCommand(
  resource: string,
  args: string[],
  ctx: CommandContext,
): Promise<number> {
  const r = RESOURCES[resource];
  if (!r) throw new Error(`not an admin command: ${resource}`);
  let sub: Subcommand;
  let name: string | undefined;
  let rest: string[];
  if (resource === 'usage') {
    [sub, name, rest] = [usageCommand, undefined, args];
  } else {
    const [first, ...others] = args;
    if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
      if (first === undefined) {
        ctx.stderr(`lanekeeper ${resource} needs a command\n\n${resourceHelp(resource)}`);
        return 2;
      }
      ctx.stdout(resourceHelp(resource));
      return 0;
    }
    if (!Object.hasOwn(r.subcommands, first)) {
      ctx.stderr(
        `lanekeeper ${resource}: unknown command ${JSON.stringify(first)}\n\n${resourceHelp(resource)}`,
      );
      return 2;
    }
    [sub, name, rest] = [r.subcommands[first]!, first, others];
  }
  const label = `lanekeeper ${resource}${name ? ` ${name}` : ''}`;
  if (wantsHelp(rest, sub.flags)) {
    ctx.stdout(subcommandHelp(resource, name, sub));
    return 0;
  }
  try {
    await sub.run(parseArgs(rest, sub.flags), ctx);
    return 0;
  } catch (error) {
    if (error instanceof CliUsageError) {
      ctx.stderr(`${label}: ${error.message}\n(see: ${label} --help)\n`);
      return error.exitCode;
    }
    if (error instanceof AdminApiError) {
      // As sent: scripts parse it, and people see the API's own code and field names.
      ctx.stderr(error.body.endsWith('\n') || error.body === '' ? error.body : `${error.body}\n`);
      if (error.body.trim() === '') ctx.stderr(`${label}: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof ControlPlaneUnreachableError) {
      ctx.stderr(`${label}: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
}
