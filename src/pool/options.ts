import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import type { ResourceLimits } from 'node:worker_threads';
import { invalidOption, type TroupeError } from '../errors.js';
import { defined, isInstance, path, readEntries, readFields } from '../fields.js';
import { DURATION, isDuration, isPositiveInteger, MAX_THREADS } from '../validate.js';
import { type ContextOp, MAX_BATCH } from './protocol.js';

/** A module the pool may run, by name. */
export interface ModuleRegistration {
  /** The module's file: a `file:` URL or an absolute path. Its default export is the handler. */
  url: string | URL;
  /**
   * Tasks handed to a thread in one message: `1` (no batching), a fixed number, or `'auto'`,
   * which picks a batch from the module's measured run time (~24 ms of work a message, at most
   * 128 tasks) and only batches tasks that run under ~12 ms.
   * @default 'auto'
   */
  batch?: number | 'auto';
  /** Default run-time limit of this module's tasks, in ms; 0 = none. @default the pool's `timeoutMs` */
  timeoutMs?: number;
}

/** Options of {@link createPool}. */
export interface PoolOptions {
  /** The modules threads may run, by name: a URL or path, or a full registration. */
  modules: Record<string, string | URL | ModuleRegistration>;
  /** Worker threads, started at once and kept (min = max). @default os.availableParallelism() */
  threads?: number;
  /** Default run-time limit of a task, in ms, counted from its start on a thread; 0 = none. @default 0 */
  timeoutMs?: number;
  /** Time limit for loading one module on one thread, in ms. @default 10000 */
  moduleLoadTimeoutMs?: number;
  /**
   * Extra time, in ms, that a task with a timeout may wait on a thread that has not started it
   * (booting, for instance) before it fails `E_TIMEOUT`. @default 5000
   */
  startGraceMs?: number;
  /** How long `close()` waits for queued and running tasks before cancelling them, in ms. @default 30000 */
  closeTimeoutMs?: number;
  /** Tasks that may wait in the pool's queue; past it `run()` rejects `E_QUEUE_FULL`. @default Infinity */
  maxQueue?: number;
  /** Limits of each thread; a thread past its heap limit fails its task `E_WORKER_OOM`. */
  resourceLimits?: ResourceLimits;
  /**
   * What a task's input may weigh, in bytes, estimated before it is queued (see `payloadBytes`
   * in pool/payload.ts): past it `run()` rejects `E_TOO_LARGE`. @default Infinity
   */
  maxInputBytes?: number;
  /**
   * What a task's output (or a message's answer) may weigh, in bytes, estimated on its thread
   * before it is sent back: past it the task fails `E_TOO_LARGE` and nothing is sent. @default Infinity
   */
  maxOutputBytes?: number;
  /** Period of the sweep that times tasks out, in ms. @default 10 */
  sweepIntervalMs?: number;
  /** Period of the watchdog that restarts threads when work waits and threads are missing, in ms. @default 100 */
  watchdogIntervalMs?: number;
  /** Called with each error thrown on a thread outside the task that caused it (never charged to a task). */
  onStrayError?: (error: TroupeError) => void;
  /**
   * How long a cancelled or timed-out task may go on running before its thread is terminated, in
   * ms. The task settles at once; a handler that polls `ctx.signal` or `ctx.throwIfAborted()`
   * stops within it and keeps its thread. @default 100
   */
  cancelGraceMs?: number;
  /**
   * How long an idle thread spins, watching for its next task, before it sleeps, in ms (at most
   * 10). A sleeping thread costs a wake-up when work comes — on a virtual machine whose idle
   * cores halt, one of the largest costs of a short task, paid by every step of a dependent
   * chain. `0` sleeps at once. @default 0.3
   */
  idleSpinMs?: number;
  /**
   * Open the context channel on each thread (`ctx.send`, `ask`, `progress`, `share`, `lookup`).
   * `false` saves a MessagePort per thread for pools whose tasks never message: their `ctx` then
   * holds only `task`, `deps`, `signal` and `throwIfAborted`. @default true
   */
  context?: boolean;
  /** Serves what handlers ask through `ctx` (`send`, `ask`, `progress`, `share`, `lookup`); a troupe provides it. */
  host?: ContextHost;
}

/** The main thread's answer to a handler's `ctx` calls. */
export interface ContextHost {
  /**
   * One call of a task's `ctx`: `origin` is what the task was submitted with
   * ({@link PoolRunOptions.origin}). Returns the value, or throws a `TroupeError`.
   */
  call(origin: unknown, module: string, op: ContextOp, args: unknown[], threadId: number): unknown;
}

/** Options of one task. */
export interface PoolRunOptions {
  /** Cancels the task: queued, it never runs; running, its thread is terminated. */
  signal?: AbortSignal | undefined;
  /** Run-time limit of this task, in ms; 0 = none. @default the module's, else the pool's `timeoutMs` */
  timeoutMs?: number | undefined;
  /**
   * ArrayBuffers to move to the thread instead of copying. The caller's copies are detached, so
   * a task that must be handed to another thread after a crash fails instead.
   */
  transfer?: ArrayBuffer[] | undefined;
  /** Data the handler receives as `ctx.task` and `ctx.deps`. */
  context?: { task?: Record<string, unknown>; deps?: Record<string, unknown> } | undefined;
  /** Called once, just before the task settles, with its run time on its thread in ms (0 if it never started). */
  onRunTime?: ((ms: number) => void) | undefined;
  /** Who the task is: handed back to the pool's `host` with each `ctx` call the task makes. */
  origin?: unknown;
  /**
   * Called once when no thread runs the task any more: when it settles if it never started, else
   * when its thread is done with it — which, for a task cancelled or timed out, may be up to
   * `cancelGraceMs` after it settled (the handler may still be running until then).
   */
  onFreed?: (() => void) | undefined;
}

/** Options of {@link Pool.close}. */
export interface PoolCloseOptions {
  /** Cancel queued tasks and terminate running ones at once (`E_CLOSED`). @default false */
  force?: boolean;
  /** How long to let queued and running tasks finish before cancelling them, in ms. @default the pool's `closeTimeoutMs` */
  timeoutMs?: number;
}

export const POOL_DEFAULTS = {
  timeoutMs: 0,
  moduleLoadTimeoutMs: 10_000,
  startGraceMs: 5_000,
  closeTimeoutMs: 30_000,
  cancelGraceMs: 100,
  idleSpinMs: 0.3,
  maxQueue: Number.POSITIVE_INFINITY,
  maxInputBytes: Number.POSITIVE_INFINITY,
  maxOutputBytes: Number.POSITIVE_INFINITY,
  sweepIntervalMs: 10,
  watchdogIntervalMs: 100,
} as const;

export interface ResolvedModule {
  name: string;
  href: string;
  batch: number | 'auto';
  timeoutMs: number;
}

export interface ResolvedPoolOptions {
  threads: number;
  timeoutMs: number;
  moduleLoadTimeoutMs: number;
  startGraceMs: number;
  closeTimeoutMs: number;
  cancelGraceMs: number;
  idleSpinMs: number;
  maxQueue: number;
  maxInputBytes: number;
  maxOutputBytes: number;
  resourceLimits: ResourceLimits | undefined;
  sweepIntervalMs: number;
  watchdogIntervalMs: number;
  onStrayError: ((error: TroupeError) => void) | undefined;
  host: ContextHost | undefined;
  context: boolean;
  modules: Map<string, ResolvedModule>;
}

function toHref(field: string, value: unknown): string {
  if (isInstance(value, URL)) {
    if (value.protocol !== 'file:') throw invalidOption(field, 'a file: URL', value.href);
    return value.href;
  }
  if (typeof value === 'string') {
    if (value.startsWith('file:')) {
      try {
        return new URL(value).href;
      } catch {
        throw invalidOption(field, 'a file: URL or an absolute path', value);
      }
    }
    if (value.startsWith('/')) return pathToFileURL(value).href;
  }
  throw invalidOption(field, 'a file: URL or an absolute path', value);
}

const MODULE_KEYS = ['url', 'batch', 'timeoutMs'] as const;

function resolveModule(name: string, value: unknown, poolTimeout: number): ResolvedModule {
  const field = path('options.modules', name);
  if (name.length === 0) throw invalidOption('options.modules', 'non-empty module names', name);
  if (typeof value === 'string' || isInstance(value, URL)) {
    return { name, href: toHref(field, value), batch: 'auto', timeoutMs: poolTimeout };
  }
  const registration = readFields(
    value,
    field,
    MODULE_KEYS,
    'a URL, a path or { url, batch?, timeoutMs? }',
  );
  const batch = registration.batch ?? 'auto';
  if (batch !== 'auto' && !isPositiveInteger(batch, MAX_BATCH)) {
    throw invalidOption(`${field}.batch`, `'auto' or an integer from 1 to ${MAX_BATCH}`, batch);
  }
  const timeoutMs = registration.timeoutMs ?? poolTimeout;
  if (!isDuration(timeoutMs)) throw invalidOption(`${field}.timeoutMs`, DURATION, timeoutMs);
  return { name, href: toHref(`${field}.url`, registration.url), batch, timeoutMs };
}

/** Every key of {@link PoolOptions}. */
const POOL_KEYS = [
  'modules',
  'threads',
  'timeoutMs',
  'moduleLoadTimeoutMs',
  'startGraceMs',
  'closeTimeoutMs',
  'maxQueue',
  'maxInputBytes',
  'maxOutputBytes',
  'resourceLimits',
  'sweepIntervalMs',
  'watchdogIntervalMs',
  'onStrayError',
  'cancelGraceMs',
  'idleSpinMs',
  'context',
  'host',
] as const;

/** Every key of worker_threads' `ResourceLimits`. */
export const RESOURCE_LIMIT_KEYS = [
  'maxOldGenerationSizeMb',
  'maxYoungGenerationSizeMb',
  'codeRangeSizeMb',
  'stackSizeMb',
] as const;

/**
 * The sizes a thread starts with, MB: past them Node 20 does not refuse the option, it fails the
 * host. A heap of 4 MB or less cannot boot a thread (the pool replaces it for ever, and its tasks
 * wait), a stack under 0.5 MB throws in the main thread, a code range of 2²⁸ MB aborts the
 * process reserving it, and a stack of 256 GB cannot be allocated.
 */
export const RESOURCE_LIMIT_BOUNDS: Record<
  (typeof RESOURCE_LIMIT_KEYS)[number],
  { min: number; max: number; expected: string }
> = {
  maxOldGenerationSizeMb: {
    min: 16,
    max: Number.MAX_VALUE,
    expected: 'a size in MB of 16 or more',
  },
  maxYoungGenerationSizeMb: { min: 0, max: Number.MAX_VALUE, expected: 'a size in MB above 0' },
  codeRangeSizeMb: { min: 0, max: 1024, expected: 'a size in MB above 0, at most 1024' },
  stackSizeMb: { min: 1, max: 1024, expected: 'a size in MB from 1 to 1024' },
};

/** Whether `size` is a size in MB a thread can start with as its `key` (the plan schema's rule too). */
export function isResourceLimit(key: (typeof RESOURCE_LIMIT_KEYS)[number], size: unknown): boolean {
  const { min, max } = RESOURCE_LIMIT_BOUNDS[key];
  // Above 0 always; `min` 0 means nothing more.
  return (
    typeof size === 'number' && Number.isFinite(size) && size > 0 && size >= min && size <= max
  );
}

/** Checks `resourceLimits` (shared with the troupe's options): each a size in MB within its bounds. */
export function resolveResourceLimits(value: unknown, field: string): ResourceLimits | undefined {
  if (value === undefined) return undefined;
  const limits = readFields(
    value,
    field,
    RESOURCE_LIMIT_KEYS,
    'an object (worker_threads ResourceLimits)',
  );
  const out: ResourceLimits = {};
  for (const key of RESOURCE_LIMIT_KEYS) {
    const size = limits[key];
    if (size === undefined) continue;
    if (!isResourceLimit(key, size))
      throw invalidOption(`${field}.${key}`, RESOURCE_LIMIT_BOUNDS[key].expected, size);
    out[key] = size as number;
  }
  return out;
}

/** Merges defaults and validates; every message names the option, the expectation and the value. */
export function resolvePoolOptions(options: PoolOptions): ResolvedPoolOptions {
  const given = readFields(options, 'options', POOL_KEYS);
  const merged = { ...POOL_DEFAULTS, threads: availableParallelism(), ...defined(given) };
  if (!isPositiveInteger(merged.threads, MAX_THREADS)) {
    throw invalidOption('options.threads', `an integer from 1 to ${MAX_THREADS}`, merged.threads);
  }
  for (const key of [
    'timeoutMs',
    'moduleLoadTimeoutMs',
    'startGraceMs',
    'closeTimeoutMs',
    'cancelGraceMs',
    'sweepIntervalMs',
    'watchdogIntervalMs',
  ] as const) {
    if (!isDuration(merged[key])) throw invalidOption(`options.${key}`, DURATION, merged[key]);
  }
  if (!isDuration(merged.idleSpinMs) || merged.idleSpinMs > 10) {
    throw invalidOption('options.idleSpinMs', 'a duration in ms from 0 to 10', merged.idleSpinMs);
  }
  for (const key of ['moduleLoadTimeoutMs', 'sweepIntervalMs', 'watchdogIntervalMs'] as const) {
    if (merged[key] === 0) throw invalidOption(`options.${key}`, 'a duration above 0 ms', 0);
  }
  for (const key of ['maxQueue', 'maxInputBytes', 'maxOutputBytes'] as const) {
    if (!(merged[key] === Number.POSITIVE_INFINITY || isPositiveInteger(merged[key])))
      throw invalidOption(`options.${key}`, 'a positive integer or Infinity', merged[key]);
  }
  const resourceLimits = resolveResourceLimits(merged.resourceLimits, 'options.resourceLimits');
  if (merged.onStrayError !== undefined && typeof merged.onStrayError !== 'function') {
    throw invalidOption('options.onStrayError', 'a function', merged.onStrayError);
  }
  let host: ContextHost | undefined;
  if (merged.host !== undefined) {
    const call = readFields(
      merged.host,
      'options.host',
      ['call'],
      'an object with a call(origin, module, op, args) method',
      'E_INVALID_OPTION',
      'near-miss',
    ).call;
    if (typeof call !== 'function')
      throw invalidOption(
        'options.host.call',
        'a function (origin, module, op, args, threadId) => value',
        call,
      );
    host = merged.host as ContextHost;
  }
  const context = merged.context ?? true;
  if (typeof context !== 'boolean') throw invalidOption('options.context', 'a boolean', context);
  const rawModules = merged.modules;
  const modules = new Map<string, ResolvedModule>();
  const entries = readEntries(
    rawModules,
    'options.modules',
    'an object mapping names to module URLs',
  );
  for (const [name, value] of entries)
    modules.set(name, resolveModule(name, value, merged.timeoutMs as number));
  return {
    threads: merged.threads as number,
    timeoutMs: merged.timeoutMs as number,
    moduleLoadTimeoutMs: merged.moduleLoadTimeoutMs as number,
    startGraceMs: merged.startGraceMs as number,
    closeTimeoutMs: merged.closeTimeoutMs as number,
    cancelGraceMs: merged.cancelGraceMs as number,
    idleSpinMs: merged.idleSpinMs as number,
    maxQueue: merged.maxQueue as number,
    maxInputBytes: merged.maxInputBytes as number,
    maxOutputBytes: merged.maxOutputBytes as number,
    resourceLimits,
    sweepIntervalMs: merged.sweepIntervalMs as number,
    watchdogIntervalMs: merged.watchdogIntervalMs as number,
    onStrayError: merged.onStrayError as ((error: TroupeError) => void) | undefined,
    host,
    context,
    modules,
  };
}
