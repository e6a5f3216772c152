import { parseArgs } from 'node:util';
import { VERSION } from '../version.js';
import { benchCommand } from './commands/bench.js';
import { infoCommand } from './commands/info.js';
import { expertsCommand, runCommand, schemaCommand, validateCommand } from './commands/plans.js';
import { type CommandIO, CommandRegistry, EXIT } from './registry.js';

/** The registry of subcommands: each later command adds one line here. */
export function defaultRegistry(): CommandRegistry {
  return new CommandRegistry()
    .register(infoCommand)
    .register(benchCommand)
    .register(runCommand)
    .register(validateCommand)
    .register(expertsCommand)
    .register(schemaCommand);
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
  if (first !== undefined && !first.startsWith('-')) {
    const command = registry.get(first);
    if (command === undefined) {
      io.stderr(`troupe: unknown command "${first}"\n\n${help(registry)}`);
      return EXIT.usage;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout(`${command.usage.trimEnd()}\n`);
      return EXIT.ok;
    }
    return command.run(rest, io);
  }
  let values: { help?: boolean | undefined; version?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    io.stderr(
      `troupe: ${error instanceof Error ? error.message : String(error)}\n\n${help(registry)}`,
    );
    return EXIT.usage;
  }
  if (values.version === true) {
    io.stdout(`${VERSION}\n`);
    return EXIT.ok;
  }
  io.stdout(help(registry));
  return EXIT.ok;
}
