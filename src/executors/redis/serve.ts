/**
 * `redisWorker(options)`: a worker embedded in a service, from the library: what `troupe worker`
 * does, with its flags as options, checked here by name before it connects.
 */
import { availableParallelism } from 'node:os';
import { resolveExpert } from '../../actors/experts.js';
import { invalidOption } from '../../errors.js';
import { readArray, readFields } from '../../fields.js';
import type { TroupeOptions } from '../../types.js';
import { isPositiveInteger, MAX_THREADS } from '../../validate.js';
import { loadPeers, readConnection, readPrefix } from './wire.js';
import type { RedisWorker } from './worker.js';

/** Options of {@link redisWorker}. */
export interface RedisWorkerOptions {
  /** The coordinators' Redis: `redis://…` or `rediss://…`. The password is never logged. */
  connection: string;
  /** TLS options for ioredis (`ca`, `cert`, `key`, `servername`, ...). */
  tls?: Record<string, unknown>;
  /** The coordinators' prefix. @default 'troupe' */
  prefix?: string;
  /** The experts this worker serves: the same definitions as the coordinators' (by name). */
  experts: TroupeOptions['experts'];
  /** Threads of its local pool. @default os.availableParallelism() */
  threads?: number;
  /**
   * Jobs held at once across the experts: past `threads`, taken ahead, so that their trips
   * overlap the runs under way (docs/distributed.md, "How a worker takes jobs"). @default 2 × threads
   */
  concurrency?: number;
  /** BullMQ's lock on a job under way, ms: a dead worker's job runs elsewhere once it lapses. @default 30000 */
  lockDurationMs?: number;
  /** How often this worker looks for jobs whose lock lapsed, ms. @default 30000 */
  stalledIntervalMs?: number;
  /** Where its lines go (what it serves, a summary every 10 s, outages). @default none */
  log?: (line: string) => void;
}

const WORKER_KEYS = [
  'connection',
  'tls',
  'prefix',
  'experts',
  'threads',
  'concurrency',
  'lockDurationMs',
  'stalledIntervalMs',
  'log',
] as const;

/** A duration from 100 ms to an hour, or E_INVALID_OPTION naming `field`. */
function lockMs(value: unknown, field: string): number {
  if (value === undefined) return 30_000;
  if (!isPositiveInteger(value, 3_600_000) || (value as number) < 100)
    throw invalidOption(field, 'an integer of ms from 100 to 3600000', value);
  return value as number;
}

/**
 * Serves the experts' work of coordinators on Redis (`redisExecutor`) from this process, as
 * `troupe worker` does: for a service that embeds a worker. Resolves once it takes jobs; rejects
 * `E_UNAVAILABLE` when Redis cannot be reached within 5 s, `E_INVALID_OPTION` for bad options.
 * Stop it with `close(timeoutMs)`: it takes no new job and lets those under way finish.
 * @example
 * const worker = await redisWorker({ connection: process.env.REDIS_URL, experts });
 * process.once('SIGTERM', () => worker.close(30_000));
 */
export async function redisWorker(options: RedisWorkerOptions): Promise<RedisWorker> {
  const field = 'redisWorker(options)';
  const o = readFields(options, field, WORKER_KEYS);
  const connection = readConnection(o.connection, `${field}.connection`, o.tls);
  const prefix = readPrefix(o.prefix, `${field}.prefix`);
  // Read as createTroupe reads its experts: a proxy or a getter that throws is refused by name.
  const expected = 'a non-empty array of expert definitions';
  const list = readArray(o.experts, `${field}.experts`, expected);
  if (list.items.length === 0) throw invalidOption(`${field}.experts`, expected, o.experts);
  const experts = list.items.map((d, i) => resolveExpert(d, `${field}.experts[${i}]`));
  const seen = new Set<string>();
  for (const [i, e] of experts.entries()) {
    if (seen.has(e.name))
      throw invalidOption(`${field}.experts[${i}].name`, 'a name no other expert has', e.name);
    seen.add(e.name);
  }
  const threads = o.threads ?? availableParallelism();
  if (!isPositiveInteger(threads, MAX_THREADS))
    throw invalidOption(`${field}.threads`, `an integer from 1 to ${MAX_THREADS}`, threads);
  const concurrency = o.concurrency ?? 2 * (threads as number);
  if (!isPositiveInteger(concurrency, 10_000))
    throw invalidOption(`${field}.concurrency`, 'an integer from 1 to 10000', concurrency);
  const lockDurationMs = lockMs(o.lockDurationMs, `${field}.lockDurationMs`);
  const stalledIntervalMs = lockMs(o.stalledIntervalMs, `${field}.stalledIntervalMs`);
  const log = o.log ?? (() => {});
  if (typeof log !== 'function') throw invalidOption(`${field}.log`, 'a function', log);
  loadPeers(field);
  const { startRedisWorker } = await import('./worker.js');
  return startRedisWorker({
    connection,
    prefix,
    experts,
    threads: threads as number,
    concurrency: concurrency as number,
    lockDurationMs,
    stalledIntervalMs,
    claimTimeoutMs: 10_000,
    connectTimeoutMs: 5_000,
    log: (line) => {
      // A logger of the caller's that throws must not stop the worker.
      try {
        (log as (line: string) => void)(line);
      } catch {}
    },
  });
}
