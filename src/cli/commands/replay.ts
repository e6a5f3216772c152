import { readFile } from 'node:fs/promises';
import { type Flags, parseFlags, UsageError } from '../flags.js';
import { type Command, EXIT } from '../registry.js';
import {
  DEFAULT_INSPECT_PORT,
  guarded,
  INSPECT_WAIT_S,
  inspectPort,
  openRelay,
  splitInspect,
} from './plans.js';

const REPLAY_USAGE = `Usage: troupe replay <file.jsonl> --inspect[=port]

Sends a run's inspection log (troupe run --inspect-log) to the Stately inspector again: serves
its page on 127.0.0.1 as troupe run --inspect does, prints the URL, waits up to ${INSPECT_WAIT_S} s for it to
be opened, sends every record in order, and closes.

Options:
  --inspect[=port]   where to serve the inspector's page (${DEFAULT_INSPECT_PORT} by default, 0 for any free one);
                     needs the optional @statelyai/inspect
  --inspect-port <n> the same as --inspect=<n>
  -h, --help         show this help

Exit codes: 0 replayed, 2 bad usage or a file that is not an inspection log.`;

const REPLAY_FLAGS: Flags = {
  inspect: { type: 'boolean' },
  'inspect-port': { type: 'string' },
};

export const replayCommand: Command = {
  name: 'replay',
  summary: 'send a run’s inspection log (--inspect-log) to the Stately inspector again',
  usage: REPLAY_USAGE,
  flags: REPLAY_FLAGS,
  run: (argv, io) =>
    guarded('replay', REPLAY_USAGE, io, async () => {
      const { values, positionals } = parseFlags(splitInspect(argv), REPLAY_FLAGS);
      if (positionals.length !== 1)
        throw new UsageError(
          `expected one inspection log, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`,
        );
      if (values.inspect !== true)
        throw new UsageError('replay needs --inspect (the Stately inspector is where it replays)');
      const file = positionals[0] as string;
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
      }
      const { parseLog, toStately } = await import('../../inspect/log.js');
      let records: ReturnType<typeof parseLog>;
      try {
        records = parseLog(text, file);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const relay = await openRelay(inspectPort(values['inspect-port']));
      try {
        io.stderr(
          `troupe replay: open ${relay.url} (the Stately inspector loads from stately.ai); waiting up to ${INSPECT_WAIT_S} s for it to connect\n`,
        );
        if (!(await relay.connected(INSPECT_WAIT_S * 1000)))
          io.stderr('troupe replay: no inspector connected; replaying anyway\n');
        for (const record of records) relay.send(toStately(record, 'troupe-replay'));
        io.stderr(`troupe replay: ${records.length} records sent\n`);
      } finally {
        await relay.close();
      }
      return EXIT.ok;
    }),
};
