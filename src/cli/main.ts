import { didYouMean } from '../suggest.js';
import { VERSION } from '../version.js';
import { benchCommand } from './commands/bench.js';
import { infoCommand } from './commands/info.js';
import { expertsCommand, runCommand, schemaCommand, validateCommand } from './commands/plans.js';
import { replayCommand } from './commands/replay.js';
import { vizCommand } from './commands/viz.js';
import { workerCommand } from './commands/worker.js';
import { type Flags, type ParsedFlags, parseFlags } from './flags.js';
import { type CommandIO, CommandRegistry, EXIT } from './registry.js';

/** The registry of subcommands: each later command adds one line here. */
export function defaultRegistry(): CommandRegistry {
  return new CommandRegistry()
    .register(infoCommand)
    .register(benchCommand)
    .register(runCommand)
    .register(validateCommand)
    .register(expertsCommand)
    .register(schemaCommand)
    .register(vizCommand)
    .register(replayCommand)
    .register(workerCommand);
}

function help(registry: CommandRegistry): string {
  const commands = registry.list();
  const width = Math.max(8, ...commands.map((c) => c.name.length));
  const lines = [
    'troupe: an actor-model runtime for Node.js, a team of experts on worker threads.',
    '',
    'Usage: troupe <command> [options]',
    '       troupe --help | --version',
    '',
  ];
  if (commands.length === 0) {
    lines.push('Commands: none yet in this version.');
  } else {
    lines.push('Commands:');
    for (const c of commands) lines.push(`  ${c.name.padEnd(width)}  ${c.summary}`);
    lines.push('', 'Run `troupe <command> --help` for the options of a command.');
  }
  lines.push(
    '',
    'Options:',
    '  -h, --help     show this help',
    '  -v, --version  print the version',
  );
  return `${lines.join('\n')}\n`;
}

const TOP_FLAGS: Flags = { version: { type: 'boolean', short: 'v' } };

/** Runs the troupe command line; resolves to the process exit code. */
export async function main(
  argv: string[],
  io: CommandIO = {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
  },
  registry: CommandRegistry = defaultRegistry(),
): Promise<number> {
  const [first, ...rest] = argv;
  // Nothing asked: the usage, as for any other incomplete command line (exit 2, not 0).
  if (first === undefined) {
    io.stderr(help(registry));
    return EXIT.usage;
  }
  if (!first.startsWith('-')) {
    const command = registry.get(first);
    if (command === undefined) {
      const names = registry.list().map((c) => c.name);
      io.stderr(
        `troupe: unknown command "${first}"${didYouMean(first, names)}\n\n${help(registry)}`,
      );
      return EXIT.usage;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout(`${command.usage.trimEnd()}\n`);
      return EXIT.ok;
    }
    return command.run(rest, io);
  }
  let values: ParsedFlags['values'];
  try {
    ({ values } = parseFlags(argv, TOP_FLAGS));
  } catch (error) {
    io.stderr(`troupe: ${(error as Error).message}\n\n${help(registry)}`);
    return EXIT.usage;
  }
  if (values.version === true) {
    io.stdout(`${VERSION}\n`);
    return EXIT.ok;
  }
  io.stdout(help(registry));
  return EXIT.ok;
}
