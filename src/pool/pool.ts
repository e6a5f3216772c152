/**
 * The pool: worker threads that run registered modules by name, over Piscina, fed by hand-off.
 * Work waits in troupe's own queue; Piscina gets at most two messages per thread. A thread
 * reports through its lane what it runs, so tasks are timed from their start and a thread's
 * death is charged to the task it was running. This is the public front: the API, its options
 * read once, and stats; the work is the engine's (engine/, see engine/engine.ts; the words in
 * README.md).
 */
import { invalidOption } from '../errors.js';
import { readArray, readFields } from '../fields.js';
import { DURATION, isDuration } from '../validate.js';
import { aheadBatch } from './batching.js';
import type { Admission } from './engine/admission.js';
import { Engine } from './engine/engine.js';
import type { JobKind, ModuleState, Settled } from './jobs.js';
import {
  type PoolCloseOptions,
  type PoolOptions,
  type PoolRunOptions,
  resolvePoolOptions,
} from './options.js';
import type { MessageInput } from './protocol.js';
import type { PoolStats } from './stats.js';

/** The file each thread starts with: CommonJS, which import()s the worker (see its comment). */
const WORKER_URL = new URL('./worker-entry.cjs', import.meta.url).href;

/** A pool of worker threads that runs registered modules by name. See {@link createPool}. */
export class Pool {
  readonly #engine: Engine;
  /** The engine's admission and modules, held here: every task comes in through them. */
  readonly #admission: Admission;
  readonly #modules: ReadonlyMap<string, ModuleState>;

  constructor(options: PoolOptions) {
    this.#engine = new Engine(resolvePoolOptions(options), WORKER_URL);
    this.#admission = this.#engine.admission;
    this.#modules = this.#engine.modules;
  }

  /** Threads configured. */
  get threads(): number {
    return this.#engine.options.threads;
  }

  /** Names of the registered modules. */
  get modules(): string[] {
    return [...this.#modules.keys()];
  }

  /**
   * Runs the module registered as `name` on `input`. Resolves to the handler's output; rejects
   * with a {@link TroupeError} whose code says why (`E_TASK_FAILED`, `E_TIMEOUT`, ...).
   * @example
   * const pool = createPool({ modules: { hash: new URL('./hash.js', import.meta.url) } });
   * const digest = await pool.run('hash', 'some text', { timeoutMs: 1000 });
   */
  run<T = unknown>(name: string, input?: unknown, options: PoolRunOptions = {}): Promise<T> {
    return this.#submit('run', name, input, options, 'run(options)') as Promise<T>;
  }

  /**
   * {@link run} with a callback instead of a promise — troupe's own experts use it: a subtask
   * then costs no promise and no turn of the microtask queue on the way back, and one callback
   * serves every task (it is handed the task's run time and `origin`). `settled` is called once:
   * with the error, or with `undefined` and the output (a refusal: in a microtask).
   * @internal Not part of the package's documented API.
   */
  runThen(name: string, input: unknown, options: PoolRunOptions, settled: Settled): void {
    this.#admission.admit('run', name, input, options, settled);
  }

  /**
   * Tasks of the module to hold ahead per thread: its batch, bounded by ~24 ms of expected work,
   * 1 until measured (see aheadBatch). The runtime sizes an expert's deep lookahead by it.
   * @internal Not part of the package's documented API.
   */
  aheadOf(name: string): number {
    const module = this.#modules.get(name);
    return module === undefined ? 1 : aheadBatch(module);
  }

  /**
   * Delivers a message to the `onMessage(msg, from, ctx)` export of the module registered as
   * `name`, on a thread. Resolves to what it returned. Such tasks never share a message or wait
   * behind another task on a busy thread.
   */
  message<T = unknown>(
    name: string,
    msg: unknown,
    from: string,
    options: PoolRunOptions = {},
  ): Promise<T> {
    const input: MessageInput = { msg, from };
    return this.#submit('message', name, input, options, 'message(options)') as Promise<T>;
  }

  /**
   * Loads the module on a thread and calls its optional `probe` export. Resolves to what the
   * probe returned (true without one); rejects `E_MODULE_LOAD` or `E_PROBE_FAILED`.
   */
  probe(
    name: string,
    options: Pick<PoolRunOptions, 'signal' | 'timeoutMs'> & {
      /** Exports the module must have besides its default one (e.g. `['onMessage']`). */
      requires?: string[];
    } = {},
  ): Promise<unknown> {
    let fields: { requires?: unknown; signal?: unknown; timeoutMs?: unknown };
    let requires: string[] | undefined;
    const expected = 'an array of export names';
    try {
      fields = readFields(options, 'probe(options)', ['signal', 'timeoutMs', 'requires']);
      if (fields.requires !== undefined) {
        const { items, holes } = readArray(fields.requires, 'probe(options).requires', expected);
        if (holes.length > 0 || !items.every((each) => typeof each === 'string'))
          throw invalidOption('probe(options).requires', expected, fields.requires);
        requires = items as string[];
      }
    } catch (error) {
      return Promise.reject(error);
    }
    const { signal, timeoutMs } = fields;
    return this.#submit('probe', name, requires === undefined ? undefined : { requires }, {
      signal,
      timeoutMs,
    } as PoolRunOptions);
  }

  /** Resolves when no task is queued or running (at once if none is). */
  idle(): Promise<void> {
    return this.#engine.idle();
  }

  /**
   * Stops taking tasks, lets queued and running ones finish for up to `timeoutMs`, then cancels
   * the rest (`E_CLOSED`) and stops every thread. Every task has settled when it resolves.
   */
  close(options: PoolCloseOptions = {}): Promise<void> {
    let fields: { force?: unknown; timeoutMs?: unknown };
    try {
      fields = readFields(options, 'close(options)', ['force', 'timeoutMs']);
    } catch (error) {
      return Promise.reject(error);
    }
    const force = fields.force ?? false;
    const timeoutMs = fields.timeoutMs ?? this.#engine.options.closeTimeoutMs;
    if (typeof force !== 'boolean')
      return Promise.reject(invalidOption('close(options).force', 'a boolean', force));
    if (!isDuration(timeoutMs))
      return Promise.reject(invalidOption('close(options).timeoutMs', DURATION, timeoutMs));
    return this.#engine.close(force, timeoutMs);
  }

  /** Cancels every queued and running task (`E_CLOSED`) and stops every thread. */
  destroy(): Promise<void> {
    return this.close({ force: true });
  }

  /** A snapshot of queues, threads and timings. */
  stats(): PoolStats {
    return this.#engine.stats();
  }

  #submit(
    kind: JobKind,
    name: string,
    input: unknown,
    options: PoolRunOptions,
    field?: string,
  ): Promise<unknown> {
    let checked: PoolRunOptions;
    try {
      checked = field === undefined ? options : readRunOptions(options, field);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<unknown>((resolve, reject) => {
      this.#admission.admit(kind, name, input, checked, (error, value) => {
        if (error === undefined) resolve(value);
        else reject(error);
      });
    });
  }
}

/** Every key of {@link PoolRunOptions}. */
const RUN_KEYS = [
  'signal',
  'timeoutMs',
  'transfer',
  'context',
  'onRunTime',
  'origin',
  'onFreed',
] as const;

/**
 * A user's task options, each field read once, unknown keys refused; `transfer` and `context`
 * copied so that the pool never reads the user's objects again. (troupe's own experts call
 * {@link Pool.runThen} with options of their own making, which skip this.)
 */
function readRunOptions(options: unknown, field: string): PoolRunOptions {
  const fields = readFields(options, field, RUN_KEYS) as PoolRunOptions;
  if (fields.transfer !== undefined)
    fields.transfer = readArray(fields.transfer, `${field}.transfer`, 'an array of ArrayBuffers')
      .items as ArrayBuffer[];
  if (fields.context !== undefined) {
    const context = readFields(
      fields.context,
      `${field}.context`,
      ['task', 'deps'],
      'an object { task?, deps? }',
    );
    fields.context = { ...context } as PoolRunOptions['context'];
  }
  return fields;
}

/**
 * Creates a pool of worker threads that runs the registered modules. Each module's default
 * export `(input, ctx) => output` runs on a thread; failures come back as {@link TroupeError}s.
 */
export function createPool(options: PoolOptions): Pool {
  return new Pool(options);
}
