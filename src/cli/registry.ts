/**
 * The troupe command's registry: each subcommand is one module that registers a name, a one-line
 * summary, its flags, a usage text and a run function.
 */
import type { Flags } from './flags.js';

/** Where a command writes; injectable so that tests capture output without a child process. */
export interface CommandIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export interface Command {
  /** What the user types after `troupe`. */
  name: string;
  /** One line for `troupe --help`. */
  summary: string;
  /** The full text of `troupe <name> --help`: it lists every flag of {@link flags}. */
  usage: string;
  /** The flags it takes (besides `--help`); any other is refused with the closest of these. */
  flags: Flags;
  /** Runs the command with the arguments after its name; resolves to the exit code. */
  run: (argv: string[], io: CommandIO) => Promise<number>;
}

/** Exit codes shared by every command. */
export const EXIT = { ok: 0, failed: 1, usage: 2, cancelled: 130 } as const;

export class CommandRegistry {
  readonly #commands = new Map<string, Command>();

  register(command: Command): this {
    if (this.#commands.has(command.name))
      throw new Error(`command "${command.name}" is registered twice`);
    this.#commands.set(command.name, command);
    return this;
  }

  get(name: string): Command | undefined {
    return this.#commands.get(name);
  }

  list(): Command[] {
    return [...this.#commands.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
}
