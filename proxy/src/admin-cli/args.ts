/**
 * A strict parser for one admin command's arguments: only the flags the command declares,
 * each at most once, as `--name value` or `--name=value`; `--` ends the flags, so a
 * positional may start with "-". Anything else is a CliUsageError naming the argument.
 */
import { CliUsageError } from './errors.js';

/** A command's flags: name (without dashes) to whether it takes a value. */
export type FlagSpec = Readonly<Record<string, 'value' | 'switch'>>;

/** What a command was given. */
export interface ParsedArgs {
  /** Value flags map to their value, switches to "true". */
  flags: Record<string, string>;
  positionals: string[];
}

/** One-letter aliases shared by every command. */
const SHORT: Readonly<Record<string, string>> = { '-f': 'file' };

const HELP = new Set(['--help', '-h']);

/**
 * Whether `--help` or `-h` appears before `--` as a flag of its own. Where a value flag's
 * value belongs it is no request for help: `keys create --tenant "$T"` with T=-h printed help
 * and exited 0, issuing nothing, to a script that then read help as its JSON (parseArgs
 * refuses it there instead).
 */
export function wantsHelp(args: readonly string[], spec: FlagSpec = {}): boolean {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return false;
    if (HELP.has(arg)) return true;
    const name = Object.hasOwn(SHORT, arg) ? SHORT[arg] : arg.startsWith('--') ? arg.slice(2) : undefined;
    if (name !== undefined && !arg.includes('=') && Object.hasOwn(spec, name) && spec[name] === 'value') i++;
  }
  return false;
}

export function parseArgs(args: readonly string[], spec: FlagSpec): ParsedArgs {
  const flags: Record<string, string> = {};
  const positionals: string[] = [];
  const known = Object.keys(spec)
    .map((n) => `--${n}`)
    .join(', ');
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const written = eq === -1 ? arg : arg.slice(0, eq);
    const name =
      (Object.hasOwn(SHORT, written) ? SHORT[written] : undefined) ??
      (written.startsWith('--') ? written.slice(2) : undefined);
    const kind = name !== undefined && Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (name === undefined || kind === undefined)
      throw new CliUsageError(
        `unknown option ${JSON.stringify(written)}${known ? ` (this command takes ${known})` : ''}`,
      );
    if (Object.hasOwn(flags, name)) throw new CliUsageError(`--${name} is given twice`);
    if (kind === 'switch') {
      if (eq !== -1) throw new CliUsageError(`--${name} takes no value`);
      flags[name] = 'true';
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      const next = args[i + 1];
      // `--from --to X`: the value is missing, not "--to".
      if (next !== undefined && !(next.startsWith('--') && next.length > 2)) {
        value = next;
        i++;
      }
      if (value !== undefined && HELP.has(value))
        throw new CliUsageError(
          `--${name} needs a value, not ${value} (write --${name}=${value} if that is the value)`,
        );
    }
    if (value === undefined || value === '') throw new CliUsageError(`--${name} needs a value`);
    flags[name] = value;
  }
  return { flags, positionals };
}

/** Exactly `names.length` positionals, or a CliUsageError naming what is missing or extra. */
export function expectPositionals<const N extends readonly string[]>(
  parsed: ParsedArgs,
  names: N,
): { [K in keyof N]: string } {
  const { positionals } = parsed;
  if (positionals.length < names.length)
    throw new CliUsageError(`missing ${names.slice(positionals.length).join(' and ')}`);
  if (positionals.length > names.length)
    throw new CliUsageError(`unexpected argument ${JSON.stringify(positionals[names.length])}`);
  return positionals as { [K in keyof N]: string };
}

/** A value flag the command cannot run without. */
export function requireFlag(parsed: ParsedArgs, name: string): string {
  const value = parsed.flags[name];
  if (value === undefined) throw new CliUsageError(`--${name} is required`);
  return value;
}
