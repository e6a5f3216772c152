/**
 * Command-line flags: Node's `parseArgs`, with messages a user can act on. An unknown flag is
 * refused with the closest known one (`unknown option --inptu; did you mean --input?`), and a
 * flag's value problems name the flag, what was expected and what was given.
 */
import { parseArgs } from 'node:util';
import { closest } from '../suggest.js';

/** A bad command line: the command prints the message and its usage, and exits 2. */
export class UsageError extends Error {}

export interface Flag {
  type: 'string' | 'boolean';
  short?: string;
}

/** A command's flags by long name (without the leading `--`). */
export type Flags = Record<string, Flag>;

/** Every command takes these (the top level answers them before a command runs). */
export const HELP_FLAG: Flags = { help: { type: 'boolean', short: 'h' } };

export interface ParsedFlags {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/**
 * The unknown flag as typed, and the known one it most likely meant: `--inptu` → `--input`;
 * `-input` (one dash, which parseArgs reads as -i -n -p -u -t) → `--input`. A one-letter flag
 * gets no suggestion: any other letter is as close.
 */
function unknownFlag(raw: string, arg: string | undefined, flags: Flags): string {
  const typed =
    !raw.startsWith('--') && arg !== undefined && /^-[^-]{2,}/.test(arg) ? arg.split('=')[0] : raw;
  const name = (typed as string).replace(/^--?/, '');
  if (name.length < 2) return `unknown option ${typed}`;
  const match = closest(name, Object.keys(flags));
  return `unknown option ${typed}${match === undefined ? '' : `; did you mean --${match}?`}`;
}

/**
 * Parses `argv` against `flags`; throws {@link UsageError} for an unknown flag (with a
 * suggestion), a string flag without a value, or a boolean flag given one.
 */
export function parseFlags(argv: string[], flags: Flags): ParsedFlags {
  const options = { ...HELP_FLAG, ...flags };
  // A first, lenient pass sees every token, so that the message can name the flag as typed.
  const { tokens } = parseArgs({
    args: argv,
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    // Own keys only: `--constructor` is no flag, whatever Object.prototype holds.
    const flag = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    if (flag === undefined)
      throw new UsageError(unknownFlag(token.rawName, argv[token.index], options));
    if (flag.type === 'string') {
      if (token.value === undefined)
        throw new UsageError(`${token.rawName}: expected a value, got nothing`);
      if (!token.inlineValue && token.value.length > 1 && token.value.startsWith('-'))
        throw new UsageError(
          `${token.rawName}: expected a value, got the option ${token.value} (write ${token.rawName}=${token.value} if that is the value)`,
        );
    } else if (token.value !== undefined) {
      throw new UsageError(`${token.rawName}: takes no value, got "${token.value}"`);
    }
  }
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options,
      strict: true,
      allowPositionals: true,
    });
    return { values: values as ParsedFlags['values'], positionals };
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}
