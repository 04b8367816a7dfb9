/**
 * The shape of an admin command: a resource (`tenants`) holds subcommands (`list`), each
 * declaring its flags and help and running against a context that gives it the client and
 * the output streams, so commands can be run in-process by tests exactly as the CLI runs them.
 */
import { readFile } from 'node:fs/promises';
import type { FlagSpec, ParsedArgs } from './args.js';
import type { AdminClient } from './client.js';
import { CliUsageError } from './errors.js';

/** What a running command may use. */
export interface CommandContext {
  /** The control plane client; built on first use, so a bad flag is reported before a missing env var. */
  client(): AdminClient;
  stdout(text: string): void;
  stderr(text: string): void;
  /** Standard input, read whole (for `-f -`). */
  readStdin(): Promise<string>;
  /** Asks a person a question; undefined when no one is at a terminal. */
  ask?(question: string): Promise<string>;
}

/** One subcommand, such as `tenants list`. */
export interface Subcommand {
  /** The usage line's arguments, after `lanekeeper <resource> <name>`. */
  synopsis: string;
  /** One line for the resource's help. */
  summary: string;
  /** The rest of the help: arguments, flags, what is printed. */
  details: string;
  flags: FlagSpec;
  run(args: ParsedArgs, ctx: CommandContext): Promise<void>;
}

/** A resource and its subcommands. */
export interface Resource {
  name: string;
  summary: string;
  subcommands: Readonly<Record<string, Subcommand>>;
}

/** The --format flag and its help line, shared by every command that prints data. */
export const FORMAT_FLAG = { format: 'value' } as const;
export const FORMAT_HELP = '  --format table|csv|json   output format (default table)\n';

/** A file's text, or stdin's for "-"; a missing or unreadable file is a usage error. */
export async function readInput(path: string, ctx: CommandContext): Promise<string> {
  if (path === '-') return ctx.readStdin();
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    throw new CliUsageError(`cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : message}`);
  }
}
