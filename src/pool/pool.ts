/**
 * The pool: one Piscina pool per troupe, fed by hand-off. Work waits in troupe's own FIFO queues
 * (one per module, so that a batch of one module is found in O(1)); Piscina gets at most one
 * message per thread. A thread reports through its lane what it is running, so tasks are timed
 * from their start, and a thread's death is charged to the task it was running and no other.
 */
import { Piscina } from 'piscina';
import { deserializeError, invalidOption, TroupeError } from '../errors.js';
import { findUncloneable } from './clone.js';
import { KillHandle } from './kill-handle.js';
import {
  isDuration,
  type PoolCloseOptions,
  type PoolOptions,
  type PoolRunOptions,
  type ResolvedModule,
  type ResolvedPoolOptions,
  resolvePoolOptions,
} from './options.js';
import {
  EXIT_NOT_CLONEABLE,
  GEN_MASK,
  type ItemResult,
  LANE_HANDED,
  LANE_LOADING,
  laneWord,
  type SideMessage,
  type TaskContextData,
  type TaskMessage,
  type TaskResponse,
  type WorkerBoot,
} from './protocol.js';
import { Deque } from './queue.js';
import { DurationHistogram, type ModuleStats, type PoolStats } from './stats.js';

/** Times a thread may die under a task before the task ran, before the task fails. */
const MAX_REQUEUES = 3;
/** Slack on top of the module load limit before the main thread terminates a blocked load. */
const LOAD_SLACK_MS = 1_000;
/** `auto` batching: aim for this much work per message, only for tasks under AUTO_BATCH_BELOW_MS. */
const AUTO_BATCH_TARGET_MS = 4;
const AUTO_BATCH_BELOW_MS = 2;
const AUTO_BATCH_MAX = 32;

type Kind = 'run' | 'probe';

interface Job {
  seq: number;
  kind: Kind;
  module: ModuleState;
  input: unknown;
  context: TaskContextData | undefined;
  transfer: ArrayBuffer[] | undefined;
  timeoutMs: number;
  enqueuedAt: number;
  requeues: number;
  solo: boolean;
  settled: boolean;
  handoff: Handoff | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  resolve: (value: unknown) => void;
  reject: (error: TroupeError) => void;
}

interface Blame {
  /** The item charged with the failure, every item, or none (the thread died before any ran). */
  item: number | 'all' | 'none';
  error: TroupeError;
}

interface Handoff {
  lane: number;
  gen: number;
  jobs: Job[];
  handle: KillHandle;
  handedAt: number;
  kill: Blame | undefined;
  done: boolean;
}

interface ModuleState {
  reg: ResolvedModule;
  queue: Deque<Job>;
  queued: number;
  broken: TroupeError | undefined;
  avgRunMs: number;
  samples: number;
  completed: number;
  failed: number;
}

interface ThreadRecord {
  createdAt: number;
  busyMs: number;
  tasks: number;
}

const WORKER_URL = new URL('./worker.js', import.meta.url).href;

/** A pool of worker threads that runs registered modules by name. See {@link createPool}. */
export class Pool {
  readonly #options: ResolvedPoolOptions;
  readonly #piscina: Piscina;
  readonly #modules = new Map<string, ModuleState>();
  readonly #startedAt = performance.now();
  readonly #laneState: Int32Array;
  readonly #laneThread: Int32Array;
  readonly #laneTime: Float64Array;
  readonly #gens: Int32Array;
  readonly #freeLanes = new Deque<number>();
  readonly #inFlight = new Set<Handoff>();
  readonly #threads = new Map<number, ThreadRecord>();
  readonly #recycling = new Set<number>();
  readonly #sideMessages = new Map<string, SideMessage>();
  readonly #runHistogram = new DurationHistogram();
  readonly #waitHistogram = new DurationHistogram();
  #idleWaiters: (() => void)[] = [];
  #seq = 0;
  #queued = 0;
  #running = 0;
  #closed = false;
  #forced: TroupeError | undefined;
  #closing: Promise<void> | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout;
  #pinging = false;
  readonly #counts = {
    completed: 0,
    failed: 0,
    cancelled: 0,
    requeued: 0,
    threadsReplaced: 0,
    strayErrors: 0,
  };

  constructor(options: PoolOptions) {
    this.#options = resolvePoolOptions(options);
    const { threads } = this.#options;
    for (const reg of this.#options.modules.values()) {
      this.#modules.set(reg.name, {
        reg,
        queue: new Deque<Job>(),
        queued: 0,
        broken: undefined,
        avgRunMs: 0,
        samples: 0,
        completed: 0,
        failed: 0,
      });
    }
    // Twice as many lanes as threads, reused oldest-first, so that a lane is not handed out again
    // while a terminated thread might still be writing to it.
    const lanes = threads * 2 + 2;
    const laneState = new SharedArrayBuffer(lanes * 8);
    const laneTime = new SharedArrayBuffer(lanes * 8);
    this.#laneState = new Int32Array(laneState, 0, lanes);
    this.#laneThread = new Int32Array(laneState, lanes * 4, lanes);
    this.#laneTime = new Float64Array(laneTime);
    this.#gens = new Int32Array(lanes);
    for (let lane = 0; lane < lanes; lane++) this.#freeLanes.push(lane);
    const boot: WorkerBoot = {
      modules: Object.fromEntries([...this.#options.modules].map(([name, m]) => [name, m.href])),
      laneState,
      laneTime,
      epoch: performance.timeOrigin + this.#startedAt,
      moduleLoadTimeoutMs: this.#options.moduleLoadTimeoutMs,
    };
    this.#piscina = new Piscina({
      filename: WORKER_URL,
      // Never undefined: Piscina would then start no thread at all (DESIGN.md, "The pool").
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      recordTiming: false,
      workerData: boot,
      ...(this.#options.resourceLimits === undefined
        ? {}
        : { resourceLimits: this.#options.resourceLimits }),
    });
    // Unheard, a pool 'error' kills the process. These are thread errors with no task on them.
    this.#piscina.on('error', (error: unknown) =>
      this.#reportStray(error, 'a thread failed outside any task'),
    );
    this.#piscina.on('message', (message: unknown) => this.#onSideMessage(message));
    this.#piscina.on('workerCreate', (worker: { id: number }) => {
      this.#threads.set(worker.id, { createdAt: this.#now(), busyMs: 0, tasks: 0 });
    });
    // A destroyed worker's id reads -1 by then: prune the records of threads no longer alive.
    this.#piscina.on('workerDestroy', () => {
      if (!this.#closed) this.#counts.threadsReplaced++;
      this.#pruneThreads();
    });
    this.#watchdog = setInterval(() => this.#checkThreads(), this.#options.watchdogIntervalMs);
    this.#watchdog.unref();
  }

  /** Threads configured. */
  get threads(): number {
    return this.#options.threads;
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
    return this.#submit('run', name, input, options) as Promise<T>;
  }

  /**
   * Loads the module on a thread and calls its optional `probe` export. Resolves to what the
   * probe returned (true without one); rejects `E_MODULE_LOAD` or `E_PROBE_FAILED`.
   */
  probe(
    name: string,
    options: Pick<PoolRunOptions, 'signal' | 'timeoutMs'> = {},
  ): Promise<unknown> {
    return this.#submit('probe', name, undefined, options);
  }

  /** Resolves when no task is queued or running (at once if none is). */
  idle(): Promise<void> {
    if (this.#queued === 0 && this.#inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops taking tasks, lets queued and running ones finish for up to `timeoutMs`, then cancels
   * the rest (`E_CLOSED`) and stops every thread. Every task has settled when it resolves.
   */
  close(options: PoolCloseOptions = {}): Promise<void> {
    if (options === null || typeof options !== 'object') {
      return Promise.reject(invalidOption('close(options)', 'an object', options));
    }
    const force = options.force ?? false;
    const timeoutMs = options.timeoutMs ?? this.#options.closeTimeoutMs;
    if (typeof force !== 'boolean') {
      return Promise.reject(invalidOption('close(options).force', 'a boolean', force));
    }
    if (!isDuration(timeoutMs)) {
      return Promise.reject(
        invalidOption('close(options).timeoutMs', 'a duration in ms (a number >= 0)', timeoutMs),
      );
    }
    if (this.#closing !== undefined) {
      if (force) this.#cancelAll(new TroupeError('E_CLOSED', 'the pool was destroyed'));
      return this.#closing;
    }
    this.#closed = true;
    this.#closing = (async () => {
      if (!force && timeoutMs > 0) await this.#idleWithin(timeoutMs);
      if (this.#queued > 0 || this.#inFlight.size > 0) {
        this.#cancelAll(
          new TroupeError(
            'E_CLOSED',
            force
              ? 'the pool was closed with force'
              : `the pool closed: the task did not finish within ${timeoutMs} ms of close()`,
          ),
        );
        await this.idle();
      }
      clearInterval(this.#watchdog);
      this.#stopSweeper();
      await this.#piscina.destroy();
    })();
    return this.#closing;
  }

  /** Cancels every queued and running task (`E_CLOSED`) and stops every thread. */
  destroy(): Promise<void> {
    return this.close({ force: true });
  }

  /** A snapshot of queues, threads and timings. */
  stats(): PoolStats {
    const now = this.#now();
    this.#pruneThreads();
    const perThread = [...this.#threads].map(([threadId, t]) => {
      const aliveMs = Math.max(0, now - t.createdAt);
      return {
        threadId,
        tasks: t.tasks,
        busyMs: t.busyMs,
        aliveMs,
        utilization: aliveMs > 0 ? Math.min(1, t.busyMs / aliveMs) : 0,
      };
    });
    const modules: Record<string, ModuleStats> = {};
    for (const [name, m] of this.#modules) {
      modules[name] = {
        completed: m.completed,
        failed: m.failed,
        avgRunMs: m.avgRunMs,
        batch: this.#batchFor(m),
      };
    }
    return {
      threads: this.#options.threads,
      liveThreads: this.#piscina.threads.length,
      queued: this.#queued,
      running: this.#running,
      ...this.#counts,
      perThread,
      runMs: this.#runHistogram.summary(),
      waitMs: this.#waitHistogram.summary(),
      modules,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Submission and hand-off

  #submit(kind: Kind, name: string, input: unknown, options: PoolRunOptions): Promise<unknown> {
    if (this.#closed) {
      return Promise.reject(
        new TroupeError('E_CLOSED', 'the pool is closed: no task is taken after close()'),
      );
    }
    const module = this.#modules.get(name);
    if (module === undefined) {
      return Promise.reject(
        invalidOption(
          'module',
          `one of the registered modules (${this.modules.join(', ') || 'none'})`,
          name,
        ),
      );
    }
    if (options === null || typeof options !== 'object') {
      return Promise.reject(invalidOption('run(options)', 'an object', options));
    }
    const { signal, transfer, context } = options;
    const timeoutMs = options.timeoutMs ?? module.reg.timeoutMs;
    if (!isDuration(timeoutMs)) {
      return Promise.reject(
        invalidOption('run(options).timeoutMs', 'a duration in ms (a number >= 0)', timeoutMs),
      );
    }
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      return Promise.reject(invalidOption('run(options).signal', 'an AbortSignal', signal));
    }
    if (
      transfer !== undefined &&
      !(Array.isArray(transfer) && transfer.every((b) => b instanceof ArrayBuffer))
    ) {
      return Promise.reject(
        invalidOption('run(options).transfer', 'an array of ArrayBuffers', transfer),
      );
    }
    if (context !== undefined && (context === null || typeof context !== 'object')) {
      return Promise.reject(
        invalidOption('run(options).context', 'an object { task?, deps? }', context),
      );
    }
    if (module.broken !== undefined) {
      return Promise.reject(this.#brokenError(module));
    }
    if (this.#queued >= this.#options.maxQueue) {
      return Promise.reject(
        new TroupeError(
          'E_QUEUE_FULL',
          `the pool's queue holds ${this.#queued} tasks, its limit (maxQueue)`,
          {
            details: { maxQueue: this.#options.maxQueue },
          },
        ),
      );
    }
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    return new Promise<unknown>((resolve, reject) => {
      const job: Job = {
        seq: this.#seq++,
        kind,
        module,
        input,
        context,
        transfer,
        timeoutMs,
        enqueuedAt: this.#now(),
        requeues: 0,
        solo: kind === 'probe' || transfer !== undefined,
        settled: false,
        handoff: undefined,
        signal,
        onAbort: undefined,
        resolve,
        reject,
      };
      if (signal !== undefined) {
        job.onAbort = () => this.#onAbort(job);
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      module.queue.push(job);
      module.queued++;
      this.#queued++;
      this.#pump();
    });
  }

  /** Hands queued work to free threads: at most one message per thread. */
  #pump(): void {
    while (
      this.#queued > 0 &&
      this.#inFlight.size < this.#options.threads &&
      this.#forced === undefined
    ) {
      const module = this.#nextModule();
      if (module === undefined) return;
      this.#handOff(module, this.#take(module));
    }
  }

  /** The module whose oldest waiting job is oldest overall (FIFO across modules). */
  #nextModule(): ModuleState | undefined {
    let best: ModuleState | undefined;
    let bestSeq = Number.POSITIVE_INFINITY;
    for (const module of this.#modules.values()) {
      let head = module.queue.peek();
      while (head?.settled) {
        module.queue.shift();
        head = module.queue.peek();
      }
      if (head !== undefined && head.seq < bestSeq) {
        best = module;
        bestSeq = head.seq;
      }
    }
    return best;
  }

  #batchFor(module: ModuleState): number {
    const { batch } = module.reg;
    if (batch !== 'auto') return batch;
    if (module.samples < 3 || module.avgRunMs >= AUTO_BATCH_BELOW_MS) return 1;
    return Math.min(
      AUTO_BATCH_MAX,
      Math.max(1, Math.floor(AUTO_BATCH_TARGET_MS / Math.max(module.avgRunMs, 0.01))),
    );
  }

  #take(module: ModuleState): Job[] {
    const first = module.queue.shift() as Job;
    module.queued--;
    this.#queued--;
    const jobs = [first];
    if (first.solo) return jobs;
    // Split what waits evenly over the threads rather than giving one thread all of it.
    const want = Math.min(
      this.#batchFor(module),
      Math.ceil((module.queued + 1) / this.#options.threads),
    );
    while (jobs.length < want) {
      const next = module.queue.peek();
      if (next === undefined) break;
      if (next.settled) {
        module.queue.shift();
        continue;
      }
      if (next.solo || next.kind !== first.kind) break;
      module.queue.shift();
      module.queued--;
      this.#queued--;
      jobs.push(next);
    }
    return jobs;
  }

  #handOff(module: ModuleState, jobs: Job[]): void {
    const lane = this.#freeLanes.shift() as number;
    const gen = ((this.#gens[lane] as number) + 1) & GEN_MASK;
    this.#gens[lane] = gen;
    Atomics.store(this.#laneState, lane, laneWord(gen, LANE_HANDED));
    const now = this.#now();
    const handoff: Handoff = {
      lane,
      gen,
      jobs,
      handle: new KillHandle(),
      handedAt: now,
      kill: undefined,
      done: false,
    };
    const inputs = new Array<unknown>(jobs.length);
    let contexts: (TaskContextData | undefined)[] | undefined;
    let transferList: ArrayBuffer[] | undefined;
    for (let index = 0; index < jobs.length; index++) {
      const job = jobs[index] as Job;
      job.handoff = handoff;
      inputs[index] = job.input;
      if (job.context !== undefined) {
        contexts ??= new Array(jobs.length);
        contexts[index] = job.context;
      }
      if (job.transfer !== undefined) transferList = (transferList ?? []).concat(job.transfer);
      this.#waitHistogram.record(now - job.enqueuedAt);
    }
    this.#running += jobs.length;
    this.#inFlight.add(handoff);
    const message: TaskMessage = {
      k: (jobs[0] as Job).kind,
      m: module.reg.name,
      l: lane,
      g: gen,
      i: inputs,
      c: contexts,
    };
    this.#piscina
      .run(
        message,
        transferList === undefined
          ? { signal: handoff.handle }
          : { signal: handoff.handle, transferList },
      )
      .then(
        (response: TaskResponse) => this.#onAnswer(handoff, response),
        (error: unknown) => this.#onFailure(handoff, error),
      );
    this.#startSweeper();
  }

  // -------------------------------------------------------------------------------------------
  // Settlement

  #release(handoff: Handoff): boolean {
    if (handoff.done) return false;
    handoff.done = true;
    this.#inFlight.delete(handoff);
    this.#freeLanes.push(handoff.lane);
    this.#running -= handoff.jobs.length;
    return true;
  }

  #onAnswer(handoff: Handoff, response: TaskResponse): void {
    if (!this.#release(handoff)) return;
    const thread = this.#threadRecord(response.th);
    for (let index = 0; index < handoff.jobs.length; index++) {
      const job = handoff.jobs[index] as Job;
      const result = response.r[index];
      if (result === undefined) {
        this.#fail(
          job,
          new TroupeError(
            'E_INTERNAL',
            `the thread answered ${response.r.length} of ${handoff.jobs.length} items`,
          ),
        );
        continue;
      }
      this.#recordRun(job.module, thread, result.ms);
      if (result.ok) this.#succeed(job, result.v);
      else this.#fail(job, this.#itemError(job.module, result));
    }
    if (response.stray !== undefined) {
      for (const wire of response.stray)
        this.#reportStray(
          deserializeError(wire),
          `an error thrown on thread ${response.th} outside any running task`,
        );
    }
    if (response.recycle === true) this.#recycle(response.th);
    this.#afterSettle();
  }

  #onFailure(handoff: Handoff, error: unknown): void {
    if (!this.#release(handoff)) return;
    const blame = this.#blame(handoff, error);
    const requeue: Job[] = [];
    for (let index = 0; index < handoff.jobs.length; index++) {
      const job = handoff.jobs[index] as Job;
      if (blame.item === 'all' || blame.item === index) this.#fail(job, blame.error);
      else requeue.push(job);
    }
    for (let index = requeue.length - 1; index >= 0; index--)
      this.#requeue(requeue[index] as Job, error);
    this.#afterSettle();
  }

  /** Decides which item a failed hand-off is charged to, and with what. */
  #blame(handoff: Handoff, error: unknown): Blame {
    if (handoff.kill !== undefined) return handoff.kill;
    const first = handoff.jobs[0] as Job;
    const name = first.module.reg.name;
    if (error instanceof Error && error.name === 'DataCloneError') {
      // The message could not be posted: find the input (or context) that cannot cross.
      for (let index = 0; index < handoff.jobs.length; index++) {
        const job = handoff.jobs[index] as Job;
        const at = findUncloneable(job.input, 'input') ?? findUncloneable(job.context, 'context');
        if (at !== undefined) {
          return {
            item: index,
            error: new TroupeError(
              'E_NOT_CLONEABLE',
              `${name}: ${at.path} cannot be sent to a worker thread: it is ${at.what}`,
              {
                cause: error,
                details: { module: name, path: at.path },
              },
            ),
          };
        }
      }
      return {
        item: 'all',
        error: new TroupeError('E_NOT_CLONEABLE', `${name}: ${error.message}`, { cause: error }),
      };
    }
    const side = this.#sideMessages.get(`${handoff.lane}:${handoff.gen}`);
    if (side !== undefined) {
      this.#sideMessages.delete(`${handoff.lane}:${handoff.gen}`);
      return {
        item: side.item,
        error: new TroupeError(
          'E_NOT_CLONEABLE',
          `${name}: ${side.path} cannot be sent back from the worker thread`,
          {
            cause: error,
            details: { module: name, path: side.path },
          },
        ),
      };
    }
    const word = Atomics.load(this.#laneState, handoff.lane);
    const thread = Atomics.load(this.#laneThread, handoff.lane);
    const code = word & 0xff;
    if (word >>> 8 !== handoff.gen || code === LANE_HANDED || this.#recycling.has(thread)) {
      // The thread died before starting any of these: nobody is charged; they run elsewhere.
      return { item: 'none', error: crashError(name, error) };
    }
    if (code === LANE_LOADING) {
      const loadError = new TroupeError(
        'E_MODULE_LOAD',
        `module "${name}" killed its thread while loading: ${messageOf(error)}`,
        {
          cause: error,
          details: { module: name },
        },
      );
      first.module.broken = loadError;
      return { item: 'all', error: loadError };
    }
    return { item: code - 1, error: crashError(name, error) };
  }

  #requeue(job: Job, cause: unknown): void {
    if (job.settled) return;
    const refusal = this.#requeueRefusal(job, cause);
    if (refusal !== undefined) {
      this.#fail(job, refusal);
      return;
    }
    job.handoff = undefined;
    job.solo = true;
    job.module.queue.unshift(job);
    job.module.queued++;
    this.#queued++;
    this.#counts.requeued++;
  }

  /** Why a task whose thread died before running it cannot run elsewhere, if it cannot. */
  #requeueRefusal(job: Job, cause: unknown): TroupeError | undefined {
    const name = job.module.reg.name;
    if (this.#forced !== undefined) return this.#forced;
    if (job.transfer !== undefined && job.transfer.length > 0) {
      return new TroupeError(
        'E_WORKER_CRASHED',
        `${name}: the thread holding the task died and its transferred input is gone`,
        { cause },
      );
    }
    if (++job.requeues > MAX_REQUEUES) {
      return new TroupeError(
        'E_WORKER_CRASHED',
        `${name}: ${MAX_REQUEUES + 1} threads died before they could start the task`,
        { cause },
      );
    }
    return undefined;
  }

  #succeed(job: Job, value: unknown): void {
    if (job.settled) return;
    this.#settle(job);
    job.module.completed++;
    this.#counts.completed++;
    job.resolve(value);
  }

  #fail(job: Job, error: TroupeError): void {
    if (job.settled) return;
    this.#settle(job);
    if (error.code === 'E_CANCELLED') this.#counts.cancelled++;
    else {
      job.module.failed++;
      this.#counts.failed++;
    }
    job.reject(error);
  }

  #settle(job: Job): void {
    job.settled = true;
    if (job.onAbort !== undefined) job.signal?.removeEventListener('abort', job.onAbort);
  }

  #afterSettle(): void {
    this.#pump();
    if (this.#queued === 0 && this.#inFlight.size === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  #itemError(module: ModuleState, result: Extract<ItemResult, { ok: false }>): TroupeError {
    const name = module.reg.name;
    const remote = deserializeError(result.e);
    switch (result.code) {
      case 'E_MODULE_LOAD': {
        const error =
          remote instanceof TroupeError && remote.code === 'E_MODULE_LOAD'
            ? new TroupeError('E_MODULE_LOAD', remote.message, {
                cause: remote.cause,
                details: { module: name },
              })
            : new TroupeError(
                'E_MODULE_LOAD',
                `module "${name}" failed to load: ${remote.message}`,
                { cause: remote },
              );
        module.broken = error;
        this.#failQueued(module, error);
        return error;
      }
      case 'E_PROBE_FAILED':
        return new TroupeError('E_PROBE_FAILED', `${name}: probe failed: ${remote.message}`, {
          cause: remote,
          details: { module: name },
        });
      default:
        return new TroupeError('E_TASK_FAILED', `${name}: ${remote.message}`, {
          cause: remote,
          details: { module: name },
        });
    }
  }

  #brokenError(module: ModuleState): TroupeError {
    const broken = module.broken as TroupeError;
    return new TroupeError('E_MODULE_LOAD', broken.message, {
      cause: broken.cause,
      details: { module: module.reg.name },
    });
  }

  /** A module that cannot load fails what waits for it at once instead of one thread at a time. */
  #failQueued(module: ModuleState, error: TroupeError): void {
    for (const job of module.queue.drain()) {
      if (job.settled) continue;
      module.queued--;
      this.#queued--;
      this.#fail(
        job,
        new TroupeError('E_MODULE_LOAD', error.message, {
          cause: error.cause,
          details: { module: module.reg.name },
        }),
      );
    }
  }

  #recordRun(module: ModuleState, thread: ThreadRecord, ms: number): void {
    this.#runHistogram.record(ms);
    thread.busyMs += ms;
    thread.tasks++;
    module.samples++;
    module.avgRunMs = module.samples === 1 ? ms : module.avgRunMs * 0.8 + ms * 0.2;
  }

  #pruneThreads(): void {
    const live = new Set(this.#piscina.threads.map((worker) => worker.threadId));
    for (const threadId of this.#threads.keys()) {
      if (!live.has(threadId)) this.#threads.delete(threadId);
    }
  }

  #threadRecord(threadId: number): ThreadRecord {
    let record = this.#threads.get(threadId);
    if (record === undefined) {
      record = { createdAt: this.#now(), busyMs: 0, tasks: 0 };
      this.#threads.set(threadId, record);
    }
    return record;
  }

  // -------------------------------------------------------------------------------------------
  // Cancellation, timeouts, watchdog

  #onAbort(job: Job): void {
    if (job.settled) return;
    const error = cancelled(job.signal as AbortSignal);
    const handoff = job.handoff;
    if (handoff === undefined) {
      // Still queued: leave a tombstone, skipped when reached.
      job.module.queued--;
      this.#queued--;
      this.#fail(job, error);
      this.#afterSettle();
      return;
    }
    const index = handoff.jobs.indexOf(job);
    if (handoff.jobs.length === 1 || this.#runningItem(handoff) === index) {
      this.#kill(handoff, { item: index, error });
      return;
    }
    // In a batch but not running now (waiting its turn, or done and not yet reported): settle
    // now; whatever the thread reports for it later is ignored.
    this.#fail(job, error);
  }

  /** The item a hand-off's thread is running now, or -1. */
  #runningItem(handoff: Handoff): number {
    const word = Atomics.load(this.#laneState, handoff.lane);
    const code = word & 0xff;
    if (word >>> 8 !== handoff.gen || code === LANE_HANDED || code === LANE_LOADING) return -1;
    return code - 1;
  }

  #kill(handoff: Handoff, blame: Blame): void {
    if (handoff.done || handoff.kill !== undefined) return;
    handoff.kill = blame;
    handoff.handle.abort(blame.error);
  }

  #cancelAll(error: TroupeError): void {
    this.#forced ??= error;
    for (const module of this.#modules.values()) {
      for (const job of module.queue.drain()) {
        if (job.settled) continue;
        this.#fail(job, error);
      }
      module.queued = 0;
    }
    this.#queued = 0;
    for (const handoff of [...this.#inFlight]) this.#kill(handoff, { item: 'all', error });
    this.#afterSettle();
  }

  #startSweeper(): void {
    if (this.#sweeper !== undefined) return;
    this.#sweeper = setInterval(() => this.#sweep(), this.#options.sweepIntervalMs);
    this.#sweeper.unref();
  }

  #stopSweeper(): void {
    if (this.#sweeper === undefined) return;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  /** One pass over the threads' lanes: O(threads). Kills what ran past its time. */
  #sweep(): void {
    if (this.#inFlight.size === 0) {
      this.#stopSweeper();
      return;
    }
    const now = this.#now();
    for (const handoff of this.#inFlight) {
      if (handoff.kill !== undefined) continue;
      const word = Atomics.load(this.#laneState, handoff.lane);
      const code = word & 0xff;
      const first = handoff.jobs[0] as Job;
      const name = first.module.reg.name;
      if (word >>> 8 !== handoff.gen || code === LANE_HANDED) {
        const limit = first.timeoutMs;
        if (limit > 0 && now - handoff.handedAt > limit + this.#options.startGraceMs) {
          this.#kill(handoff, {
            item: 0,
            error: new TroupeError(
              'E_TIMEOUT',
              `${name}: no thread started the task within ${limit + this.#options.startGraceMs} ms of its hand-off (timeoutMs ${limit} + startGraceMs ${this.#options.startGraceMs})`,
              { details: { module: name, timeoutMs: limit } },
            ),
          });
        }
        continue;
      }
      const started = this.#laneTime[handoff.lane] as number;
      if (code === LANE_LOADING) {
        const limit = this.#options.moduleLoadTimeoutMs;
        if (now - started > limit + LOAD_SLACK_MS) {
          const error = new TroupeError(
            'E_MODULE_LOAD',
            `module "${name}" blocked its thread for more than ${limit} ms while loading`,
            {
              details: { module: name, moduleLoadTimeoutMs: limit },
            },
          );
          first.module.broken = error;
          this.#kill(handoff, { item: 'all', error });
        }
        continue;
      }
      const index = code - 1;
      const job = handoff.jobs[index];
      if (job === undefined || job.settled || job.timeoutMs === 0) continue;
      if (now - started > job.timeoutMs) {
        this.#kill(handoff, {
          item: index,
          error: new TroupeError(
            'E_TIMEOUT',
            `${name}: the task ran longer than its ${job.timeoutMs} ms timeout`,
            {
              details: { module: name, timeoutMs: job.timeoutMs },
            },
          ),
        });
      }
    }
  }

  /** Work waits and threads are missing (Piscina stopped replacing them): start one. */
  #checkThreads(): void {
    if (this.#closed || this.#pinging) return;
    if (this.#queued + this.#inFlight.size === 0) return;
    if (this.#piscina.threads.length >= this.#options.threads) return;
    this.#pinging = true;
    const ping: TaskMessage = { k: 'ping', m: '', l: -1, g: 0, i: [] };
    this.#piscina.run(ping).then(
      () => {
        this.#pinging = false;
      },
      () => {
        this.#pinging = false;
      },
    );
  }

  /** Replaces a thread that saw an uncaught error, once its answer is in. */
  #recycle(threadId: number): void {
    const worker = this.#piscina.threads.find((w) => w.threadId === threadId);
    if (worker === undefined) return;
    this.#recycling.add(threadId);
    if (this.#recycling.size > 1024) {
      const [oldest] = this.#recycling;
      this.#recycling.delete(oldest as number);
    }
    void worker.terminate();
  }

  #onSideMessage(message: unknown): void {
    const side = message as SideMessage;
    if (side === null || typeof side !== 'object' || side.kind !== 'troupe:not-cloneable') return;
    this.#sideMessages.set(`${side.lane}:${side.gen}`, side);
  }

  #reportStray(error: unknown, what: string): void {
    this.#counts.strayErrors++;
    const stray = new TroupeError(
      'E_TASK_FAILED',
      `${what} (charged to no task): ${messageOf(error)}`,
      { cause: error },
    );
    try {
      this.#options.onStrayError?.(stray);
    } catch {
      // A throwing observer must not break the pool.
    }
  }

  #idleWithin(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      void this.idle().then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #now(): number {
    return performance.now() - this.#startedAt;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function cancelled(signal: AbortSignal): TroupeError {
  return new TroupeError('E_CANCELLED', 'the task was cancelled by its signal', {
    cause: signal.reason,
  });
}

function crashError(name: string, error: unknown): TroupeError {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return new TroupeError(
      'E_WORKER_OOM',
      `${name}: the worker thread ran out of memory (resourceLimits)`,
      {
        cause: error,
        details: { module: name },
      },
    );
  }
  const exit = /exited with code: (\d+)/.exec(messageOf(error));
  if (exit !== null && Number(exit[1]) === EXIT_NOT_CLONEABLE) {
    return new TroupeError(
      'E_NOT_CLONEABLE',
      `${name}: the task's output cannot be sent back from the worker thread`,
      {
        cause: error,
        details: { module: name },
      },
    );
  }
  return new TroupeError(
    'E_WORKER_CRASHED',
    `${name}: the worker thread died while running the task (${messageOf(error)})`,
    {
      cause: error,
      details: { module: name, ...(exit === null ? {} : { exitCode: Number(exit[1]) }) },
    },
  );
}

/**
 * Creates a pool of worker threads that runs the registered modules. Each module's default
 * export `(input, ctx) => output` runs on a thread; failures come back as {@link TroupeError}s.
 */
export function createPool(options: PoolOptions): Pool {
  return new Pool(options);
}
