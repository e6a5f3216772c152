/**
 * `redisExecutor(options)`: the troupe option that sends its experts' work to `troupe worker`
 * processes through BullMQ on Redis. The options are read and checked here, once, when it is
 * called; the executor itself starts with its troupe (createTroupe), which hands it its experts
 * and the host of their `ctx` calls.
 */
import { invalidOption } from '../../errors.js';
import { readFields } from '../../fields.js';
import type { ContextHost } from '../../pool/options.js';
import { DEFAULT_PAYLOAD_BYTES } from '../../pool/payload.js';
import {
  isPositiveDuration,
  isPositiveInteger,
  MAX_THREADS,
  POSITIVE_DURATION,
} from '../../validate.js';
import type { Executor } from '../executor.js';
import { RedisExecutor, type RedisSettings } from './executor.js';
import { loadPeers, readConnection, readPrefix } from './wire.js';

/** Options of {@link redisExecutor}. */
export interface RedisExecutorOptions {
  /** `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS. The password is never logged. */
  connection: string;
  /** TLS options for ioredis (`ca`, `cert`, `key`, `servername`, ...); `rediss://` alone uses the system's CAs. */
  tls?: Record<string, unknown>;
  /**
   * The namespace of every key: two troupes on one Redis with different prefixes never see each
   * other's work. Workers must be started with the same one. @default 'troupe'
   */
  prefix?: string;
  /**
   * What a job's input or output may weigh, V8-serialized, in bytes: past it the task fails
   * `E_TOO_LARGE` (never truncated). @default 67108864 (64 MiB)
   */
  maxPayloadBytes?: number;
  /**
   * How long Redis may stay unreachable before every job under way fails `E_UNAVAILABLE` (and
   * new ones fail at once), ms. Runs retry such attempts like crashes. @default 5000
   */
  unavailableAfterMs?: number;
  /**
   * Threads counted on before any worker has registered (then the live workers' threads are
   * counted): what lookahead and the ask deadlock check use. @default 1
   */
  threads?: number;
  /**
   * Times a job whose worker process died (its lock lapsed) is run again on another worker
   * before its attempt fails `E_WORKER_CRASHED` (then the run's retries and supervision act as
   * for a crashed thread). @default 1
   */
  maxStalls?: number;
}

const KEYS = [
  'connection',
  'tls',
  'prefix',
  'maxPayloadBytes',
  'unavailableAfterMs',
  'threads',
  'maxStalls',
] as const;

/** What `createTroupe({ executor })` takes: made by {@link redisExecutor}. */
export interface ExecutorFactory {
  /** Which executor: `'redis'`. */
  readonly kind: 'redis';
  /** The URL with its password replaced by `***`. */
  readonly redis: string;
  readonly prefix: string;
}

/** What a troupe hands its executor when it starts. @internal */
export interface ExecutorStart {
  experts: readonly string[];
  host: ContextHost;
}

const factories = new WeakMap<ExecutorFactory, (start: ExecutorStart) => Executor>();

/**
 * A troupe's work on `troupe worker` processes through BullMQ on Redis, instead of on local
 * threads. Needs the optional peers `bullmq` and `ioredis` (checked now).
 * @example
 * const troupe = createTroupe({ experts, executor: redisExecutor({ connection: 'redis://127.0.0.1:6379' }) });
 */
export function redisExecutor(options: RedisExecutorOptions): ExecutorFactory {
  const field = 'redisExecutor(options)';
  const o = readFields(options, field, KEYS);
  const connection = readConnection(o.connection, `${field}.connection`, o.tls);
  const prefix = readPrefix(o.prefix, `${field}.prefix`);
  const maxPayloadBytes = o.maxPayloadBytes ?? DEFAULT_PAYLOAD_BYTES;
  if (!isPositiveInteger(maxPayloadBytes, 512 * 1024 * 1024))
    throw invalidOption(
      `${field}.maxPayloadBytes`,
      'an integer of bytes from 1 to 536870912 (Redis holds 512 MiB a value)',
      maxPayloadBytes,
    );
  const unavailableAfterMs = o.unavailableAfterMs ?? 5_000;
  if (!isPositiveDuration(unavailableAfterMs))
    throw invalidOption(`${field}.unavailableAfterMs`, POSITIVE_DURATION, unavailableAfterMs);
  const threads = o.threads ?? 1;
  if (!isPositiveInteger(threads, MAX_THREADS))
    throw invalidOption(`${field}.threads`, `an integer from 1 to ${MAX_THREADS}`, threads);
  const maxStalls = o.maxStalls ?? 1;
  if (
    typeof maxStalls !== 'number' ||
    !Number.isInteger(maxStalls) ||
    maxStalls < 0 ||
    maxStalls > 1_000
  )
    throw invalidOption(`${field}.maxStalls`, 'an integer from 0 to 1000', maxStalls);
  loadPeers(field);
  const settings: RedisSettings = {
    connection,
    prefix,
    maxPayloadBytes: maxPayloadBytes as number,
    unavailableAfterMs: unavailableAfterMs as number,
    threads: threads as number,
    maxStalls,
    releaseAfterMs: 30_000,
  };
  const factory: ExecutorFactory = Object.freeze({
    kind: 'redis' as const,
    redis: connection.safe,
    prefix,
  });
  factories.set(factory, (start) => new RedisExecutor(settings, start.experts, start.host));
  return factory;
}

/** The start function of an executor made by {@link redisExecutor}; E_INVALID_OPTION for anything else. */
export function executorStart(
  value: unknown,
  field: string,
): ((start: ExecutorStart) => Executor) | undefined {
  if (value === undefined) return undefined;
  const start =
    value !== null && typeof value === 'object'
      ? factories.get(value as ExecutorFactory)
      : undefined;
  if (start === undefined)
    throw invalidOption(
      field,
      'an executor made by redisExecutor() (or nothing: local threads)',
      value,
    );
  return start;
}
