import { availableParallelism, cpus, loadavg } from 'node:os';
import { VERSION } from '../../version.js';
import { type Flags, parseFlags, UsageError } from '../flags.js';
import { type Command, EXIT } from '../registry.js';

const INFO_FLAGS: Flags = { json: { type: 'boolean' } };

/** The machine troupe runs on, as every benchmark result reports it. */
export function machineInfo(): Record<string, unknown> {
  const cpuList = cpus();
  return {
    troupe: VERSION,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cores: availableParallelism(),
    cpu: cpuList[0]?.model ?? 'unknown',
    loadAverage: loadavg().map((n) => Math.round(n * 100) / 100),
  };
}

const INFO_USAGE = `Usage: troupe info [--json]

Prints what troupe sees of this machine: the default thread count is the number of cores.

Options:
  --json      one JSON document on stdout
  -h, --help  show this help`;

export const infoCommand: Command = {
  name: 'info',
  summary: 'print the version, Node.js, cores, CPU model and load average',
  usage: INFO_USAGE,
  flags: INFO_FLAGS,
  async run(argv, io) {
    let json: boolean;
    try {
      const { values, positionals } = parseFlags(argv, INFO_FLAGS);
      if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
      json = values.json === true;
    } catch (error) {
      io.stderr(`troupe info: ${(error as Error).message}\n\n${INFO_USAGE}\n`);
      return EXIT.usage;
    }
    const info = machineInfo();
    if (json) io.stdout(`${JSON.stringify(info)}\n`);
    else
      for (const [key, value] of Object.entries(info))
        io.stdout(`${key.padEnd(12)} ${Array.isArray(value) ? value.join(' ') : String(value)}\n`);
    return EXIT.ok;
  },
};
