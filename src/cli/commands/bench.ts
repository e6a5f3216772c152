import { BENCH_USAGE as USAGE } from '../../../bench/usage.js';
import { type Flags, parseFlags, UsageError } from '../flags.js';
import { type Command, EXIT } from '../registry.js';

/**
 * The flags of `troupe bench`, as bench/main.ts parses them: checked here first, so that an
 * unknown one is refused with the closest known one before the suites load.
 */
const BENCH_FLAGS: Flags = {
  scope: { type: 'string' },
  quick: { type: 'boolean' },
  rounds: { type: 'string' },
  threads: { type: 'string' },
  suite: { type: 'string' },
  json: { type: 'boolean' },
  out: { type: 'string' },
  chart: { type: 'string' },
  compare: { type: 'boolean' },
};

/** `troupe bench`: the benchmark suites, loaded only when asked for (they pull in tinybench). */
export const benchCommand: Command = {
  name: 'bench',
  summary: 'measure the parallel-over-sequential factor and troupe’s overheads (tinybench)',
  get usage(): string {
    return USAGE;
  },
  flags: BENCH_FLAGS,
  run: async (argv, io) => {
    try {
      parseFlags(argv, BENCH_FLAGS);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      io.stderr(`troupe bench: ${error.message}\n\n${USAGE}\n`);
      return EXIT.usage;
    }
    const { runBench } = await import('../../../bench/main.js');
    try {
      return await runBench(argv, io);
    } catch (error) {
      io.stderr(`troupe bench: ${error instanceof Error ? error.message : String(error)}\n`);
      return EXIT.failed;
    }
  },
};
