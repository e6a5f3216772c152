import { availableParallelism, cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { VERSION } from '../../version.js';
import { type Command, EXIT } from '../registry.js';

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

export const infoCommand: Command = {
  name: 'info',
  summary: 'print the version, Node.js, cores, CPU model and load average',
  usage: `Usage: troupe info [--json]

Prints what troupe sees of this machine: the default thread count is the number of cores.

Options:
  --json      one JSON document on stdout
  -h, --help  show this help`,
  async run(argv, io) {
    let json: boolean;
    try {
      json =
        parseArgs({ args: argv, options: { json: { type: 'boolean' } }, strict: true }).values
          .json === true;
    } catch (error) {
      io.stderr(`troupe info: ${error instanceof Error ? error.message : String(error)}\n`);
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
