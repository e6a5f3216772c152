/**
 * `troupe worker <plan|experts-module> --redis URL`: serves the experts' work of coordinators
 * that run with `--redis` (or `redisExecutor`), on this machine's threads. It runs only the
 * experts its plan or module names. SIGTERM or SIGINT: it stops taking jobs, waits for those
 * under way (up to --drain-timeout), then exits; a second signal exits at once.
 */

import { availableParallelism } from 'node:os';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ResolvedExpert } from '../../actors/experts.js';
import { isTroupeError, messageOf } from '../../errors.js';
import { MAX_THREADS } from '../../validate.js';
import { type Flags, parseFlags, UsageError } from '../flags.js';
import { type Command, EXIT } from '../registry.js';
import { guarded, load } from './plans.js';

const USAGE = `Usage: troupe worker <plan.json|plan.yaml|experts.js> --redis <url> [--prefix name] [--threads N] [--concurrency N] [--lock-duration ms] [--stalled-interval ms] [--drain-timeout ms] [--allow-outside]

Serves the work of the experts a plan (or a module exporting expert definitions) names, for
coordinators started with \`troupe run <plan> --redis <url>\` or \`redisExecutor()\`, on this
machine's threads. Start as many as you like, on as many machines. It runs only the experts it
names here, never a module a job names.

Options:
  --redis <url>          redis://[user:password@]host[:port][/db], or rediss:// for TLS
                         (the password is never printed)
  --prefix <name>        the coordinators' prefix [default: troupe]
  --threads <n>          worker threads [default: the cores]
  --concurrency <n>      jobs held at once, across the experts served [default: 2 × --threads]:
                         past --threads, the next jobs' trips overlap the runs under way; a job
                         held ahead goes back to its queue when another worker has a thread
                         free, or while a thread here waits on an ask (docs/distributed.md)
  --lock-duration <ms>   BullMQ's lock on a job under way: a job whose worker died is run by
                         another once it lapses [default: 30000]
  --stalled-interval <ms> how often to look for such jobs [default: 30000]
  --drain-timeout <ms>   on SIGTERM/SIGINT, how long jobs under way may finish [default: 30000];
                         those left are run by another worker after the lock lapses
  --allow-outside        let the plan load modules outside its folder
  -h, --help             show this help

An experts module exports its definitions as \`experts\` (or as its default export): an array of
defineExpert() objects. Exit codes: 0 stopped by a signal, 1 Redis unreachable or a failure,
2 bad usage.`;

const FLAGS: Flags = {
  redis: { type: 'string' },
  prefix: { type: 'string' },
  threads: { type: 'string' },
  concurrency: { type: 'string' },
  'lock-duration': { type: 'string' },
  'stalled-interval': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'allow-outside': { type: 'boolean' },
};

function integer(
  flag: string,
  raw: string | boolean | undefined,
  min: number,
  max: number,
): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || n < min || n > max)
    throw new UsageError(
      `--${flag}: expected an integer from ${min} to ${max}, got "${String(raw)}"`,
    );
  return n;
}

/** The experts of a plan file, or of a module that exports definitions. */
async function expertsOf(source: string, allowOutside: boolean): Promise<ResolvedExpert[]> {
  const { resolveExpert } = await import('../../actors/experts.js');
  const ext = extname(source).toLowerCase();
  let definitions: unknown;
  if (ext === '.json' || ext === '.yaml' || ext === '.yml') {
    definitions = (await load(source, allowOutside)).troupeOptions.experts;
  } else {
    let module: Record<string, unknown>;
    try {
      module = (await import(pathToFileURL(resolve(source)).href)) as Record<string, unknown>;
    } catch (error) {
      throw new UsageError(`${source}: cannot be loaded: ${messageOf(error)}`);
    }
    definitions = module.experts ?? module.default;
    if (!Array.isArray(definitions))
      throw new UsageError(
        `${source}: expected an export "experts" (or a default export) with an array of expert definitions`,
      );
  }
  const list = definitions as unknown[];
  if (list.length === 0) throw new UsageError(`${source}: names no expert`);
  return list.map((d, i) => resolveExpert(d as never, `${source}: experts[${i}]`));
}

export const workerCommand: Command = {
  name: 'worker',
  summary: "serve a plan's experts for coordinators on Redis (BullMQ), on this machine's threads",
  usage: USAGE,
  flags: FLAGS,
  run: (argv, io) =>
    guarded('worker', USAGE, io, async () => {
      const { values, positionals } = parseFlags(argv, FLAGS);
      if (positionals.length !== 1)
        throw new UsageError(
          `expected one plan file or experts module, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`,
        );
      if (typeof values.redis !== 'string') throw new UsageError('--redis <url> is required');
      const { readConnection, readPrefix } = await import('../../executors/redis/wire.js');
      const connection = readConnection(values.redis, '--redis');
      const prefix = readPrefix(values.prefix, '--prefix');
      const threads = integer('threads', values.threads, 1, MAX_THREADS) ?? availableParallelism();
      // Twice the threads: each job's trip through Redis overlaps the run before it
      // (docs/distributed.md, "What it costs").
      const concurrency = integer('concurrency', values.concurrency, 1, 10_000) ?? 2 * threads;
      const lockDurationMs =
        integer('lock-duration', values['lock-duration'], 100, 3_600_000) ?? 30_000;
      const stalledIntervalMs =
        integer('stalled-interval', values['stalled-interval'], 100, 3_600_000) ?? 30_000;
      const drainMs = integer('drain-timeout', values['drain-timeout'], 0, 3_600_000) ?? 30_000;
      const experts = await expertsOf(positionals[0] as string, values['allow-outside'] === true);
      const { startRedisWorker, summary } = await import('../../executors/redis/worker.js');
      const log = (line: string): void => io.stderr(`${line}\n`);
      let worker: Awaited<ReturnType<typeof startRedisWorker>>;
      try {
        worker = await startRedisWorker({
          connection,
          prefix,
          experts,
          threads,
          concurrency,
          lockDurationMs,
          stalledIntervalMs,
          claimTimeoutMs: 10_000,
          connectTimeoutMs: 5_000,
          log,
        });
      } catch (error) {
        if (isTroupeError(error, 'E_UNAVAILABLE') || isTroupeError(error, 'E_INVALID_OPTION')) {
          io.stderr(`troupe worker: ${error.code}: ${error.message}\n`);
          return EXIT.failed;
        }
        throw error;
      }
      // Until SIGTERM or SIGINT; a second one exits at once.
      const signal = await new Promise<NodeJS.Signals>((resolveSignal) => {
        const stop = (name: NodeJS.Signals) => resolveSignal(name);
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      const again = () => process.exit(EXIT.failed);
      process.once('SIGTERM', again);
      process.once('SIGINT', again);
      log(
        `troupe worker ${worker.id}: ${signal}: no new jobs; waiting up to ${drainMs} ms for those under way`,
      );
      const { drained } = await worker.close(drainMs);
      log(
        `troupe worker ${worker.id}: stopped${drained ? '' : ' (jobs left under way go to another worker once their lock lapses)'}; ${summary(worker.served)}`,
      );
      return EXIT.ok;
    }),
};
