/**
 * The pool: one Piscina pool per troupe, fed by hand-off. Work waits in troupe's own queue;
 * Piscina gets at most one message per thread. A thread reports through its lane what it runs,
 * so tasks are timed from their start and a thread's death is charged to the task it was running.
 */
import { MessagePort } from 'node:worker_threads';
import { expose } from 'comlink/dist/esm/comlink.mjs';
import { Piscina, queueOptionsSymbol } from 'piscina';
import { deserializeError, invalidOption, notify, serializeError, TroupeError } from '../errors.js';
import { isInstance, readArray, readFields } from '../fields.js';
import { DURATION, isDuration } from '../validate.js';
import { aheadBatch, batchSize, fairShare } from './batching.js';
import { findUncloneable } from './clone.js';
import { blame, cancelledError, itemError, messageOf, tooLarge } from './failures.js';
import { InFlight } from './in-flight.js';
import {
  type Blame,
  Handoff,
  type Job,
  type JobKind,
  type ModuleState,
  type Settled,
} from './jobs.js';
import { Lanes } from './lanes.js';
import { PoolMeter } from './meter.js';
import {
  type PoolCloseOptions,
  type PoolOptions,
  type PoolRunOptions,
  type ResolvedPoolOptions,
  resolvePoolOptions,
} from './options.js';
import { payloadBytes } from './payload.js';
import {
  type AbortNotice,
  type CallResult,
  type ContextHostApi,
  type ContextOp,
  type MessageInput,
  packContexts,
  type SideMessage,
  type TaskContextData,
  type TaskMessage,
  type TaskResponse,
  type WorkerBoot,
} from './protocol.js';
import { Deque } from './queue.js';
import type { PoolStats } from './stats.js';
import { Threads } from './threads.js';
import { expired } from './timeouts.js';
import { WorkQueue } from './work-queue.js';

/** Times a task's thread may die before the task started, before the task fails. */
const MAX_REQUEUES = 3;
/**
 * Times a task may go back to the queue after deaths it is not charged with (see #collateral),
 * before it fails all the same: a bound, in case the charge was wrong.
 */
const MAX_COLLATERAL_REQUEUES = 16;
/**
 * Messages handed to Piscina per thread: one running and one waiting in the thread's own port,
 * so that a thread goes from one task to the next without sleeping until the main thread hears
 * of the first and hands it the second (what puts the pool ahead of raw Piscina on short tasks:
 * docs/BENCHMARKS.md, "Pipelining is what puts troupe ahead of raw Piscina").
 */
const HANDOFF_DEPTH = 2;
/**
 * A running batch is split for an idle thread only if the part taken back holds at least this
 * much work (by its module's mean run time): less is not worth a message.
 */
const MIN_TRIM_MS = 0.5;

const WORKER_URL = new URL('./worker-entry.cjs', import.meta.url).href;

/** A signal that never fires: it only makes Piscina treat a task as abortable (see #handOff). */
const UNSTACKABLE = Object.freeze({
  aborted: false,
  once: () => {},
  off: () => {},
  removeListener: () => {},
});

/** Piscina's load balancer: its type is not exported from the package root. */
type Balancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']>;
/** What #balance reads of a task (Piscina's task interface): its hand-off rides in the slot. */
interface BalancedTask {
  isAbortable: boolean;
  [queueOptionsSymbol]?: unknown;
}
/** What #balance reads of a thread (Piscina's `PiscinaWorker`). */
interface BalancedWorker {
  id: number;
  currentUsage: number;
  isRunningAbortableTask: boolean;
}

/** What a stolen hand-off's verdict says: it is never applied (its jobs went back to the queue). */
const STOLEN: Blame = Object.freeze({
  item: 'none',
  error: new TroupeError('E_CANCELLED', 'taken back by the pool before any thread began it'),
}) as Blame;

/** A pool of worker threads that runs registered modules by name. See {@link createPool}. */
export class Pool {
  readonly #options: ResolvedPoolOptions;
  readonly #piscina: Piscina;
  readonly #modules = new Map<string, ModuleState>();
  readonly #queue: WorkQueue;
  readonly #lanes: Lanes;
  readonly #meter: PoolMeter;
  readonly #inFlight: InFlight;
  /** One record per thread: its port, readiness, hand-offs, whether the pool ends it. */
  readonly #threads = new Threads(() => this.#piscina.threads);
  #idleWaiters: (() => void)[] = [];
  #seq = 0;
  /**
   * The hand-off whose answer or rejection is being applied: released already, its items settle
   * one by one, and those not yet settled are still running (see stats).
   */
  #settling: Handoff | undefined;
  #closed = false;
  #forced: TroupeError | undefined;
  #closing: Promise<void> | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #stealCheck: NodeJS.Immediate | undefined;
  /** While above 0, #pump hands nothing out (see #watch). */
  #holdPump = 0;
  /** A #pump is queued for the end of this turn (see #pumpSoon). */
  #pumpPending = false;
  /** Tasks by the signal that can cancel them (see #watch). */
  readonly #watched = new Map<AbortSignal, { jobs: Set<Job>; listener: () => void }>();
  readonly #watchdog: NodeJS.Timeout;
  #pinging = false;
  /** The watchdog timer is ref'd while work is pending: pending work keeps the process alive. */
  #holding = false;

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
        avgLogMs: 0,
        meanRunMs: 0,
        samples: 0,
        completed: 0,
        failed: 0,
      });
    }
    this.#queue = new WorkQueue(this.#modules.values());
    this.#lanes = new Lanes(threads * HANDOFF_DEPTH);
    this.#inFlight = new InFlight(threads * HANDOFF_DEPTH);
    this.#meter = new PoolMeter();
    const boot: WorkerBoot = {
      modules: Object.fromEntries([...this.#options.modules].map(([name, m]) => [name, m.href])),
      laneState: this.#lanes.stateBuffer,
      laneTime: this.#lanes.timeBuffer,
      laneSkip: this.#lanes.skipBuffer,
      epoch: this.#meter.epoch,
      moduleLoadTimeoutMs: this.#options.moduleLoadTimeoutMs,
      // Infinity does not cross as an Int: 0 says "no limit".
      maxOutputBytes: Number.isFinite(this.#options.maxOutputBytes)
        ? this.#options.maxOutputBytes
        : 0,
      context: this.#options.context,
      idleSpinMs: this.#options.idleSpinMs,
      doomed: this.#threads.doomed.buffer as SharedArrayBuffer,
    };
    this.#piscina = new Piscina({
      filename: WORKER_URL,
      // Never undefined: Piscina would then start no thread at all.
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      // Two messages per thread: the next one waits in the thread's own port while the first
      // runs (the dispatcher still runs them one at a time), so the thread never sleeps between
      // tasks waiting for the main thread to hand it more.
      concurrentTasksPerWorker: HANDOFF_DEPTH,
      loadBalancer: ((task: BalancedTask, workers: BalancedWorker[]) =>
        this.#balance(task, workers)) as unknown as Balancer,
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
      this.#meter.threadStarted(worker.id);
      const threadId = worker.id;
      hearLostAnswers(worker, (error) => this.#onLostAnswer(threadId, error));
      this.#threads.of(worker.id).ready = true;
      // A replacement is ready: work stacked behind a busy thread meanwhile may move to it.
      this.#scheduleSteal();
    });
    this.#piscina.on('workerDestroy', () => {
      // The gone thread's id already reads -1 here (Node clears it before 'exit'): keep only
      // the ids of threads still listed, or a dead one would count as idle for ever after.
      const live = this.#threads.liveIds();
      this.#threads.prune(live);
      this.#meter.threadGone(live, !this.#closed);
    });
    // The watchdog also sweeps, slowly, for what needs no fast timer (a module load that blocks).
    this.#watchdog = setInterval(() => {
      this.#checkThreads();
      this.#sweep();
    }, this.#options.watchdogIntervalMs);
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
    this.#admit('run', name, input, options, settled);
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
    if (this.#queue.size === 0 && this.#inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
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
    const timeoutMs = fields.timeoutMs ?? this.#options.closeTimeoutMs;
    if (typeof force !== 'boolean')
      return Promise.reject(invalidOption('close(options).force', 'a boolean', force));
    if (!isDuration(timeoutMs))
      return Promise.reject(invalidOption('close(options).timeoutMs', DURATION, timeoutMs));
    if (this.#closing !== undefined) {
      if (force) this.#cancelAll(new TroupeError('E_CLOSED', 'the pool was destroyed'));
      return this.#closing;
    }
    this.#closed = true;
    this.#closing = (async () => {
      if (!force && timeoutMs > 0) await this.#idleWithin(timeoutMs);
      if (this.#queue.size > 0 || this.#inFlight.size > 0) {
        const why = force
          ? 'the pool was closed with force'
          : `the task did not finish within ${timeoutMs} ms of close()`;
        // Every task settles here; destroying Piscina then frees the slots of what was in flight.
        this.#cancelAll(new TroupeError('E_CLOSED', why));
      }
      clearInterval(this.#watchdog);
      clearImmediate(this.#stealCheck);
      this.#stopSweeper();
      // Piscina terminates every thread and waits for each to exit (see Threads.end).
      for (const id of this.#threads.liveIds()) this.#threads.doom(id);
      await this.#piscina.destroy();
      await this.idle();
    })();
    return this.#closing;
  }

  /** Cancels every queued and running task (`E_CLOSED`) and stops every thread. */
  destroy(): Promise<void> {
    return this.close({ force: true });
  }

  /** A snapshot of queues, threads and timings. */
  stats(): PoolStats {
    return this.#meter.snapshot({
      threads: this.#options.threads,
      liveThreadIds: this.#threads.liveIds(),
      queued: this.#queue.size,
      running: this.#inFlight.running(this.#settling),
      modules: this.#modules.values(),
    });
  }

  // -------------------------------------------------------------------------------------------
  // Admission and hand-off

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
      this.#admit(kind, name, input, checked, (error, value) => {
        if (error === undefined) resolve(value);
        else reject(error);
      });
    });
  }

  /**
   * Checks and queues a task; `settled` is called once, when it settles (refused: in a
   * microtask). Behind {@link run} (as a promise) and {@link runThen} (as is).
   */
  #admit(
    kind: JobKind,
    name: string,
    input: unknown,
    options: PoolRunOptions,
    settled: Settled,
  ): void {
    const onFreed =
      options !== null && typeof options === 'object' && typeof options.onFreed === 'function'
        ? options.onFreed
        : undefined;
    // Refused before admission: no thread ever runs it.
    const refuse = (error: TroupeError): void => {
      if (onFreed !== undefined) queueMicrotask(() => notify(onFreed, undefined));
      queueMicrotask(() => this.#callSettled(settled, error, undefined, 0, options?.origin));
    };
    if (this.#closed)
      return void refuse(
        new TroupeError('E_CLOSED', 'the pool is closed: no task is taken after close()'),
      );
    const module = this.#modules.get(name);
    if (module === undefined) {
      return void refuse(
        invalidOption(
          'module',
          `one of the registered modules (${this.modules.join(', ') || 'none'})`,
          name,
        ),
      );
    }
    if (options === null || typeof options !== 'object')
      return void refuse(invalidOption('run(options)', 'an object', options));
    const { signal, transfer, context, onRunTime, origin } = options;
    if (options.onFreed !== undefined && typeof options.onFreed !== 'function') {
      return void refuse(invalidOption('run(options).onFreed', 'a function', options.onFreed));
    }
    const timeoutMs = options.timeoutMs ?? module.reg.timeoutMs;
    if (!isDuration(timeoutMs))
      return void refuse(invalidOption('run(options).timeoutMs', DURATION, timeoutMs));
    if (signal !== undefined && !isInstance(signal, AbortSignal)) {
      return void refuse(invalidOption('run(options).signal', 'an AbortSignal', signal));
    }
    if (
      transfer !== undefined &&
      !(Array.isArray(transfer) && transfer.every((b) => isInstance(b, ArrayBuffer)))
    ) {
      return void refuse(
        invalidOption('run(options).transfer', 'an array of ArrayBuffers', transfer),
      );
    }
    if (onRunTime !== undefined && typeof onRunTime !== 'function') {
      return void refuse(invalidOption('run(options).onRunTime', 'a function', onRunTime));
    }
    if (context !== undefined && (context === null || typeof context !== 'object')) {
      return void refuse(
        invalidOption('run(options).context', 'an object { task?, deps? }', context),
      );
    }
    if (module.broken !== undefined) return void refuse(copyError(module.broken));
    const maxInput = this.#options.maxInputBytes;
    if (maxInput !== Number.POSITIVE_INFINITY && kind !== 'probe') {
      const weight = payloadBytes(input, maxInput);
      if (weight > maxInput)
        return void refuse(tooLarge(name, 'input', maxInput, weight, subtaskOf(context)));
    }
    // Tasks of this turn not yet handed out (see #pumpSoon) must not make the queue look full.
    if (this.#queue.size >= this.#options.maxQueue) this.#pump();
    if (this.#queue.size >= this.#options.maxQueue) {
      return void refuse(
        new TroupeError(
          'E_QUEUE_FULL',
          `the pool's queue holds ${this.#queue.size} tasks, its limit (maxQueue)`,
          {
            details: { maxQueue: this.#options.maxQueue },
          },
        ),
      );
    }
    if (signal?.aborted) return void refuse(cancelledError(signal));
    const job: Job = {
      seq: this.#seq++,
      kind,
      module,
      input,
      context,
      transfer,
      timeoutMs,
      enqueuedAt: this.#meter.now(),
      requeues: 0,
      collateral: 0,
      solo: kind !== 'run' || transfer !== undefined,
      settled: false,
      handoff: undefined,
      signal,
      onRunTime,
      onFreed,
      origin,
      runMs: 0,
      onSettled: settled,
    };
    if (signal !== undefined) this.#watch(signal, job);
    this.#queue.push(job);
    if (!this.#holding) {
      this.#holding = true;
      this.#watchdog.ref();
    }
    // A full message for every thread is queued (of this module alone), and a slot is free:
    // one leaves now, so that a thread starts while the rest of a burst is still being
    // submitted. Otherwise at the end of the turn, split over the threads (see #pump).
    const batch = batchSize(module);
    if (
      module.queued >= batch * this.#options.threads &&
      module.queued === this.#queue.size &&
      this.#inFlight.hasRoom &&
      this.#holdPump === 0 &&
      this.#forced === undefined
    ) {
      const jobs = this.#queue.take(batch);
      if (jobs !== undefined) this.#handOff(jobs);
    }
    if (this.#queue.size > 0) this.#pumpSoon();
  }

  /**
   * Hands queued work out, while there are free slots (HANDOFF_DEPTH per thread): each message
   * a fair share of what waits (see fairShare).
   */
  #pump(): void {
    if (this.#holdPump > 0) return;
    const free = this.#inFlight.capacity - this.#inFlight.size;
    if (free <= 0 || this.#queue.size === 0) return;
    const share = fairShare(this.#queue.size, free, this.#options.threads);
    while (this.#inFlight.hasRoom && this.#forced === undefined) {
      const jobs = this.#queue.take(share);
      if (jobs === undefined) return;
      this.#handOff(jobs);
    }
  }

  /**
   * A pump after the current synchronous turn: tasks submitted in one burst (a run handing out
   * its ready subtasks) leave together, in batches, instead of the first ones one by one.
   */
  #pumpSoon(): void {
    if (this.#pumpPending) return;
    this.#pumpPending = true;
    queueMicrotask(() => {
      this.#pumpPending = false;
      this.#pump();
    });
  }

  #handOff(jobs: Job[]): void {
    const first = jobs[0] as Job;
    const { lane, gen } = this.#lanes.acquire();
    const now = this.#meter.now();
    const timed = jobs.some((job) => job.timeoutMs > 0);
    const handoff = new Handoff(lane, gen, jobs, timed, now);
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
      this.#meter.waited(now - job.enqueuedAt);
    }
    this.#inFlight.add(handoff);
    const message: TaskMessage = {
      k: first.kind,
      m: first.module.reg.name,
      l: lane,
      g: gen,
      i: inputs,
    };
    // Only what is there crosses: an absent field costs nothing to clone.
    if (contexts !== undefined) packContexts(message, contexts);
    // Short tasks may wait in a busy thread's port (pipelining); a long or unmeasured one is
    // marked abortable, which Piscina never stacks on a thread nor stacks anything upon, so
    // that nothing short is stuck behind it while another thread frees up.
    const options: { transferList?: ArrayBuffer[]; signal?: typeof UNSTACKABLE } = {};
    if (transferList !== undefined) options.transferList = transferList;
    if (!this.#stackable(first)) options.signal = UNSTACKABLE;
    // #balance finds the hand-off through Piscina's queue-options slot, whenever Piscina places
    // it (at once, or later from its own queue). A symbol key is not cloned: it never crosses.
    (message as unknown as Record<symbol, unknown>)[queueOptionsSymbol] = handoff;
    let answered: Promise<TaskResponse>;
    try {
      answered = this.#piscina.run(message, options);
    } catch (error) {
      // Piscina rejects rather than throws; should it throw (having queued the task, say, and
      // then failed to start a thread), the hand-off still settles, and the lane is taken back
      // first, so that a copy Piscina places later is skipped by its thread, never run twice.
      this.#lanes.steal(lane, gen);
      answered = Promise.reject(error);
    }
    answered.then(
      (response: TaskResponse) => this.#onAnswer(handoff, response),
      (error: unknown) => this.#onDeath(handoff, error),
    );
    if (handoff.timed) this.#startSweeper();
  }

  /**
   * May this hand-off wait in a busy thread's port? A measured task, yes: the thread then goes
   * from one task to the next without sleeping until the main thread hears of the first and
   * hands it the second. Should another thread go idle while it still waits there, the pool
   * takes it back and hands it to that thread (see #stealForIdle), so nothing waits behind a
   * long task while a thread is free. An unmeasured task or a message, never: Piscina then sends
   * it to a free thread only.
   */
  #stackable(first: Job): boolean {
    // Not with transferred input either: once posted, its buffers are gone from this thread,
    // so it could not be taken back and sent elsewhere.
    return first.kind === 'run' && first.transfer === undefined && first.module.samples >= 3;
  }

  /**
   * Piscina's own least-busy rule — a thread with nothing first; never a message on or under an
   * abortable (unstackable) one; else the least busy under the limit — which also records where
   * each hand-off went and whether it waits behind another (stacked).
   */
  #balance<W extends BalancedWorker>(task: BalancedTask, workers: W[]): W | null {
    let chosen: W | null = null;
    let least = HANDOFF_DEPTH;
    for (const worker of workers) {
      // A thread the pool is ending takes nothing more (it may take a while to go).
      if (this.#threads.isDoomed(worker.id)) continue;
      if (worker.currentUsage === 0) {
        chosen = worker;
        break;
      }
      if (worker.isRunningAbortableTask) continue;
      if (!task.isAbortable && worker.currentUsage < least) {
        chosen = worker;
        least = worker.currentUsage;
      }
    }
    const handoff = task[queueOptionsSymbol] as Handoff | null | undefined;
    // Not one already settled (see #handOff's catch): nothing would ever count it out again.
    if (
      chosen !== null &&
      handoff?.lane !== undefined &&
      handoff.thread === undefined &&
      !handoff.done
    ) {
      // An exited thread's id reads -1: no record (none is ever judged by it).
      if (chosen.id >= 0) {
        const thread = this.#threads.of(chosen.id);
        handoff.thread = thread;
        thread.handoffs++;
      }
      if (chosen.currentUsage > 0) this.#inFlight.stack(handoff);
    }
    return chosen;
  }

  #scheduleSteal(): void {
    if (this.#inFlight.stacked + this.#inFlight.batches === 0 || this.#queue.size > 0) return;
    if (this.#stealCheck !== undefined) return;
    this.#stealCheck = setImmediate(() => {
      this.#stealCheck = undefined;
      const { stacked, batches } = this.#inFlight;
      if (stacked + batches > 0 && this.#queue.size === 0 && this.#forced === undefined)
        this.#stealForIdle();
    });
    this.#stealCheck.unref();
  }

  /**
   * Nothing waits in the queue, a thread has nothing of the pool's, and a stacked hand-off still
   * waits behind a busy thread: take it back (if that thread has not begun it) and hand it out
   * again — to the idle thread, which #balance prefers. The old message stays in the busy
   * thread's port as a "zombie", which that thread skips when it gets there. With no stacked
   * hand-off left to take, a batch a busy thread is running gives up half of what it has not
   * begun (see #trimForIdle).
   */
  #stealForIdle(): void {
    let idle = this.#threads.idle();
    if (idle === 0) return;
    const candidates: Handoff[] = [];
    for (const handoff of this.#inFlight) {
      if (!handoff.stacked || handoff.kill !== undefined) continue;
      // Begun by its thread meanwhile: no longer a candidate (nor a reason to check again).
      if (this.#lanes.read(handoff.lane, handoff.gen).state !== 'handed') {
        this.#inFlight.unstack(handoff);
        continue;
      }
      candidates.push(handoff);
    }
    let stole = false;
    // Oldest first: the set keeps insertion order.
    for (const handoff of candidates) {
      if (idle <= 0) break;
      if (!this.#lanes.steal(handoff.lane, handoff.gen)) continue;
      idle--;
      stole = true;
      handoff.kill = STOLEN;
      this.#inFlight.unstack(handoff);
      this.#meter.counts.stolen++;
      // Back to the front of the queue in their original order, then out again.
      for (let index = handoff.jobs.length - 1; index >= 0; index--) {
        const job = handoff.jobs[index] as Job;
        if (!handoff.owns(job)) continue;
        job.handoff = undefined;
        // Its module failed to load meanwhile: it fails as the others of its module do.
        if (job.module.broken !== undefined) this.#fail(job, copyError(job.module.broken));
        else this.#queue.unshift(job);
      }
    }
    if (stole) this.#pump();
    while (idle > 0 && this.#inFlight.batches > 0 && this.#trimForIdle()) idle--;
  }

  /**
   * Of the batches busy threads are running, takes back from the one with the most work not yet
   * begun the later half of that work (at least MIN_TRIM_MS of it), and hands it to an idle
   * thread in one message: the two threads then finish at about the same time, instead of one
   * waiting for the other's whole batch. The busy thread stops before the first item taken (see
   * Lanes.trim); exactly one of them runs each item. True if work was handed out.
   */
  #trimForIdle(): boolean {
    let best: Handoff | undefined;
    let bestFrom = 0;
    let most = MIN_TRIM_MS;
    for (const handoff of this.#inFlight) {
      if (handoff.held < 2 || handoff.kill !== undefined || handoff.stacked) continue;
      const lane = this.#lanes.read(handoff.lane, handoff.gen);
      if (lane.state !== 'running') continue;
      const take = Math.ceil((handoff.held - lane.item - 1) / 2);
      const work = take * (handoff.jobs[0] as Job).module.meanRunMs;
      if (take < 1 || work < most) continue;
      best = handoff;
      bestFrom = handoff.held - take;
      most = work;
    }
    if (best === undefined) return false;
    const from = this.#lanes.trim(best.lane, best.gen, bestFrom);
    if (from === undefined || from >= best.held) return false;
    const taken: Job[] = [];
    for (let index = from; index < best.held; index++) {
      const job = best.jobs[index] as Job;
      if (!best.owns(job)) continue;
      job.handoff = undefined;
      taken.push(job);
    }
    best.held = from;
    const module = (best.jobs[0] as Job).module;
    if (module.broken !== undefined) {
      for (const job of taken) this.#fail(job, copyError(module.broken));
      return true;
    }
    this.#meter.counts.trimmed += taken.length;
    if (taken.length === 0) return true;
    if (this.#inFlight.hasRoom && this.#holdPump === 0) {
      this.#handOff(taken);
      return true;
    }
    this.#queue.unshiftAll(taken);
    this.#pump();
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Settlement

  #release(handoff: Handoff): boolean {
    if (handoff.done) return false;
    handoff.done = true;
    if (handoff.thread !== undefined) handoff.thread.handoffs--;
    // Every job still on it, settled or not: no thread runs it any more.
    for (const job of handoff.jobs) if (job.handoff === handoff) this.#freed(job);
    this.#inFlight.remove(handoff);
    if (handoff.timed && this.#inFlight.timed === 0) this.#stopSweeper();
    clearTimeout(handoff.graceTimer);
    clearTimeout(handoff.itemGrace);
    this.#lanes.release(handoff.lane);
    return true;
  }

  #onAnswer(handoff: Handoff, response: TaskResponse): void {
    if (handoff.done) return;
    // Items the thread stopped at, at a limit the pool set as it answered (see Lanes.trim): not
    // begun; back to the front of the queue (before #release, which would call them freed).
    let trimmed: Job[] | undefined;
    for (let index = 0; index < handoff.jobs.length; index++) {
      const job = handoff.jobs[index] as Job;
      const result = response.r[index];
      if (result?.ok !== false || result.code !== 'E_TRIMMED') continue;
      if (!handoff.owns(job)) continue;
      job.handoff = undefined;
      if (trimmed === undefined) trimmed = [];
      trimmed.push(job);
    }
    this.#release(handoff);
    this.#settling = handoff;
    if (trimmed !== undefined) this.#queue.unshiftAll(trimmed);
    for (let index = 0; index < handoff.jobs.length; index++) {
      const job = handoff.jobs[index] as Job;
      const result = response.r[index];
      if (result === undefined) {
        const count = `${response.r.length} of ${handoff.jobs.length}`;
        this.#fail(job, new TroupeError('E_INTERNAL', `a thread answered ${count} items`));
        continue;
      }
      if (result.ok || (result.code !== 'E_CANCELLED' && result.code !== 'E_TRIMMED')) {
        this.#meter.ran(job.module, response.th, result.ms);
        job.runMs = result.ms;
      }
      // Settled or requeued already (the pool gave up on this hand-off, cancelled the item, or
      // took it back from the batch and gave it to another thread).
      if (!handoff.owns(job)) continue;
      if (result.ok) {
        this.#succeed(job, result.v);
        continue;
      }
      const error = itemError(job.module.reg.name, result, subtaskOf(job.context));
      if (error.code === 'E_MODULE_LOAD') this.#markBroken(job.module, error);
      this.#fail(job, error);
    }
    for (const wire of response.stray ?? []) {
      const what = `an error thrown on thread ${response.th} outside any running task`;
      this.#reportStray(deserializeError(wire), what);
    }
    if (response.recycle === true) this.#recycle(response.th);
    this.#settling = undefined;
    this.#afterSettle();
  }

  /** Piscina rejected the hand-off: the post failed, the thread died, or the pool killed it. */
  #onDeath(handoff: Handoff, error: unknown): void {
    if (!this.#release(handoff)) return;
    this.#settling = handoff;
    // A hand-off the pool gave up on had its verdict applied then: only its slot is freed now.
    if (handoff.kill === undefined) {
      const verdict = this.#blame(handoff, error);
      if (typeof verdict.item === 'number' && handoff.thread !== undefined)
        handoff.thread.deathCharged = true;
      this.#apply(handoff, verdict, error, this.#collateral(handoff, verdict));
    } else {
      // Given up on (see #kill) with items it had run still on it: their results died with the
      // thread. They run again.
      for (let index = handoff.jobs.length - 1; index >= 0; index--) {
        const job = handoff.jobs[index] as Job;
        if (handoff.owns(job)) this.#requeue(job, error, true);
      }
    }
    this.#settling = undefined;
    this.#afterSettle();
  }

  /**
   * Did this hand-off die of something else? Its thread died running another item of the batch
   * (charged with it), or another message (charged, or still reading as running), or the pool
   * ended the thread itself. Then its tasks that had not begun are provably not why, and their
   * requeue is not counted against MAX_REQUEUES — which is there to stop a task that kills every
   * thread before it begins, and would otherwise fail a task that merely waited behind crashes.
   */
  #collateral(handoff: Handoff, verdict: Blame): boolean {
    if (typeof verdict.item === 'number') return true;
    const thread = handoff.thread;
    if (verdict.item !== 'none' || thread === undefined) return false;
    if (thread.ending || thread.deathCharged) return true;
    for (const other of this.#inFlight) {
      if (other === handoff || other.thread !== thread) continue;
      const state = this.#lanes.read(other.lane, other.gen).state;
      if (state === 'running' || state === 'loading') return true;
    }
    return false;
  }

  /**
   * Fails the blamed item (or all), and puts the others back at the front of the queue (not
   * counted as requeues if `collateral`: see #collateral) — except the first `ran`, which the
   * thread has run already and will report.
   */
  #apply(handoff: Handoff, verdict: Blame, cause: unknown, collateral = false, ran = 0): void {
    if (verdict.error.code === 'E_MODULE_LOAD')
      this.#markBroken((handoff.jobs[0] as Job).module, verdict.error);
    const innocent: Job[] = [];
    handoff.jobs.forEach((job, index) => {
      if (!handoff.owns(job)) return;
      if (verdict.item === 'all' || verdict.item === index) this.#fail(job, verdict.error);
      else if (index >= ran) innocent.push(job);
    });
    // Back to the front of the queue in their original order.
    for (let index = innocent.length - 1; index >= 0; index--)
      this.#requeue(innocent[index] as Job, cause, collateral);
  }

  #blame(handoff: Handoff, error: unknown): Blame {
    const lane = this.#lanes.read(handoff.lane, handoff.gen);
    if (lane.state === 'running') {
      const running = handoff.jobs[lane.item];
      if (running !== undefined) running.runMs = this.#meter.now() - lane.since;
    }
    return blame({
      module: (handoff.jobs[0] as Job).module.reg.name,
      error,
      lane,
      terminatedByPool:
        lane.state !== 'handed' && this.#threads.get(lane.threadId)?.ending === true,
      // Piscina drops a dead thread from its list before it fails the thread's tasks: a task
      // failed while its thread is still listed never reached it (the post threw).
      postFailed:
        lane.state === 'handed' &&
        handoff.thread !== undefined &&
        !handoff.thread.ending &&
        this.#threads.liveIds().includes(handoff.thread.id),
      uncloneableInput: () => {
        for (let item = 0; item < handoff.jobs.length; item++) {
          const job = handoff.jobs[item] as Job;
          const at = findUncloneable(job.input, 'input') ?? findUncloneable(job.context, 'context');
          if (at !== undefined) return { item, at };
        }
        return undefined;
      },
    });
  }

  #requeue(job: Job, cause: unknown, innocent = false): void {
    if (job.settled) return;
    const name = job.module.reg.name;
    let refusal: TroupeError | undefined = this.#forced;
    if (refusal === undefined && job.module.broken !== undefined)
      refusal = copyError(job.module.broken);
    if (refusal === undefined && job.transfer !== undefined && job.transfer.length > 0) {
      refusal = new TroupeError(
        'E_WORKER_CRASHED',
        `${name}: the thread holding the task died and its transferred input is gone`,
        {
          cause,
        },
      );
    }
    if (refusal === undefined && innocent && ++job.collateral > MAX_COLLATERAL_REQUEUES) {
      refusal = new TroupeError(
        'E_WORKER_CRASHED',
        `${name}: sent back to the queue ${MAX_COLLATERAL_REQUEUES + 1} times for other tasks' failures (crashes, timeouts, cancels beside it)`,
        { cause },
      );
    }
    if (refusal === undefined && !innocent && ++job.requeues > MAX_REQUEUES) {
      refusal = new TroupeError(
        'E_WORKER_CRASHED',
        `${name}: ${MAX_REQUEUES + 1} threads died before they could start the task`,
        {
          cause,
        },
      );
    }
    if (refusal !== undefined) {
      this.#fail(job, refusal);
      return;
    }
    job.handoff = undefined;
    job.solo = true;
    this.#queue.unshift(job);
    this.#meter.counts.requeued++;
  }

  #succeed(job: Job, value: unknown): void {
    if (job.settled) return;
    this.#settle(job);
    job.module.completed++;
    this.#meter.counts.completed++;
    this.#notify(job, undefined, value);
  }

  #fail(job: Job, error: TroupeError): void {
    if (job.settled) return;
    this.#settle(job);
    if (error.code === 'E_CANCELLED') this.#meter.counts.cancelled++;
    else {
      job.module.failed++;
      this.#meter.counts.failed++;
    }
    this.#notify(job, error, undefined);
  }

  /** Tells the submitter. */
  #notify(job: Job, error: TroupeError | undefined, value: unknown): void {
    this.#callSettled(job.onSettled, error, value, job.runMs, job.origin);
  }

  /** A settlement callback that throws (see runThen) must not break the pool. */
  #callSettled(
    settled: Settled,
    error: TroupeError | undefined,
    value: unknown,
    runMs: number,
    origin: unknown,
  ): void {
    try {
      settled(error, value, runMs, origin);
    } catch (thrown) {
      this.#reportStray(thrown, "a task's settlement callback threw");
    }
  }

  #settle(job: Job): void {
    job.settled = true;
    // An observer that fails must not keep the task from settling.
    if (job.onRunTime !== undefined) notify(job.onRunTime, job.runMs);
    // On a hand-off, it is freed when its thread is done with it (see #release).
    if (job.handoff === undefined) this.#freed(job);
    if (job.signal !== undefined) this.#unwatch(job.signal, job);
  }

  #freed(job: Job): void {
    const onFreed = job.onFreed;
    if (onFreed === undefined) return;
    job.onFreed = undefined;
    notify(onFreed, undefined);
  }

  #afterSettle(): void {
    this.#pump();
    // Not at once: whoever feeds the pool (a troupe's coordinator) often refills the queue in
    // the microtasks that follow an answer, and a thread then gets new work without a steal.
    // A steal the refill made needless costs the robbed thread a skipped message and a wait.
    this.#scheduleSteal();
    if (this.#queue.size > 0 || this.#inFlight.size > 0) return;
    if (this.#holding) {
      this.#holding = false;
      this.#watchdog.unref();
    }
    if (this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** A module that cannot load fails what waits for it at once, instead of one thread at a time. */
  #markBroken(module: ModuleState, error: TroupeError): void {
    module.broken ??= error;
    for (const job of this.#queue.drainModule(module)) this.#fail(job, copyError(error));
  }

  // -------------------------------------------------------------------------------------------
  // Cancellation, timeouts, watchdog

  /**
   * One listener per signal, however many tasks share it (a troupe run gives all its subtasks
   * one): Node removes a listener in O(listeners), so one per task would cost each settlement
   * time in proportion to the tasks in flight.
   */
  #watch(signal: AbortSignal, job: Job): void {
    let watched = this.#watched.get(signal);
    if (watched === undefined) {
      const jobs = new Set<Job>();
      const listener = () => {
        this.#watched.delete(signal);
        // In the order they were run; each one settles (and leaves the set) as it goes. No
        // hand-off meanwhile: one would give a thread a task of this same, cancelled signal.
        this.#holdPump++;
        try {
          for (const each of [...jobs]) this.#onAbort(each);
        } finally {
          this.#holdPump--;
        }
        this.#afterSettle();
      };
      watched = { jobs, listener };
      this.#watched.set(signal, watched);
      signal.addEventListener('abort', listener, { once: true });
    }
    watched.jobs.add(job);
  }

  #unwatch(signal: AbortSignal, job: Job): void {
    const watched = this.#watched.get(signal);
    if (watched === undefined || !watched.jobs.delete(job) || watched.jobs.size > 0) return;
    this.#watched.delete(signal);
    signal.removeEventListener('abort', watched.listener);
  }

  #onAbort(job: Job): void {
    if (job.settled) return;
    const error = cancelledError(job.signal as AbortSignal);
    const handoff = job.handoff;
    if (handoff === undefined) {
      this.#queue.forget(job); // stays as a tombstone, skipped when reached
      this.#fail(job, error);
      this.#afterSettle();
      return;
    }
    if (handoff.jobs.length === 1) {
      this.#kill(handoff, { item: 0, error }, true);
      return;
    }
    this.#cancelItem(handoff, handoff.jobs.indexOf(job), error);
  }

  /**
   * Cancels one item of a batch and settles it now; the batch's other items are left alone. Its
   * thread skips it if it has not begun it (see Lanes.skip). If it has, its `ctx.signal` reads
   * aborted, and should it still run `cancelGraceMs` later, its thread is terminated, as for a
   * task cancelled alone (the items after it then run elsewhere). Either way no thread is busy
   * with it past its settlement but for that grace.
   */
  #cancelItem(handoff: Handoff, index: number, error: TroupeError): void {
    const job = handoff.jobs[index] as Job;
    const lane = this.#lanes.skip(handoff.lane, handoff.gen, index);
    if (lane.state === 'running' && lane.item === index) {
      job.runMs = this.#meter.now() - lane.since;
      this.#stopItem(handoff, lane.threadId, index);
    }
    this.#fail(job, error);
  }

  /**
   * Item `item` of the hand-off, which the thread runs, was given up on alone: its listeners on
   * `ctx.signal` fire, and if it still runs `cancelGraceMs` later, its thread is terminated.
   */
  #stopItem(handoff: Handoff, threadId: number, item: number): void {
    const notice: AbortNotice = { troupe: 'abort', l: handoff.lane, g: handoff.gen, i: item };
    this.#threads.get(threadId)?.port?.postMessage(notice);
    const stopIfStillRunning = () => {
      if (handoff.done) return;
      const now = this.#lanes.read(handoff.lane, handoff.gen);
      if (now.state === 'running' && now.item === item) {
        this.#threads.end(now.threadId);
      }
    };
    // Only one item of a lane runs at a time: an earlier item's timer has nothing left to stop.
    clearTimeout(handoff.itemGrace);
    handoff.itemGrace = undefined;
    const grace = this.#options.cancelGraceMs;
    if (grace === 0) {
      stopIfStillRunning();
      return;
    }
    handoff.itemGrace = setTimeout(stopIfStillRunning, grace);
    handoff.itemGrace.unref();
  }

  /**
   * Gives up on a hand-off: the verdict applies at once. A thread that has begun it is
   * terminated (Piscina replaces it) — after `cancelGraceMs` if `graceful`, unless the task
   * stops first (its `ctx.signal` reads the cancel word); one that has not begun will skip it
   * (see Lanes.cancel).
   */
  #kill(handoff: Handoff, verdict: Blame, graceful = false): void {
    if (handoff.done || handoff.kill !== undefined) return;
    const blamed = typeof verdict.item === 'number' ? verdict.item : -1;
    // The verdict may rest on an older reading (a sweep reads every lane first, and settling one
    // hand-off runs callbacks before the next is judged): the thread may have moved past the
    // blamed item. What it runs beyond it is innocent: the cancel starts after it.
    let from = Math.max(0, blamed);
    let lane = this.#lanes.cancel(handoff.lane, handoff.gen, from);
    while (blamed >= 0 && lane.state === 'running' && lane.item > blamed && lane.item >= from) {
      from = lane.item + 1;
      lane = this.#lanes.cancel(handoff.lane, handoff.gen, from);
    }
    if (lane.state === 'done') from = handoff.jobs.length;
    // The thread runs what the verdict is about (the blamed item, or anything for 'all'/'none').
    const guilty =
      (lane.state === 'running' && (blamed < 0 || lane.item === blamed)) ||
      lane.state === 'loading';
    handoff.kill = verdict;
    const grace = this.#options.cancelGraceMs;
    if (guilty && lane.state === 'running' && graceful && grace > 0) {
      const notice: AbortNotice = {
        troupe: 'abort',
        l: handoff.lane,
        g: handoff.gen,
        i: lane.item,
      };
      this.#threads.get(lane.threadId)?.port?.postMessage(notice);
      handoff.graceTimer = setTimeout(() => {
        if (handoff.done) return;
        const now = this.#lanes.read(handoff.lane, handoff.gen);
        if (now.state === 'loading' || (now.state === 'running' && now.item === lane.item)) {
          this.#threads.end(now.threadId);
        }
      }, grace);
      handoff.graceTimer.unref();
    } else if (guilty && (lane.state === 'running' || lane.state === 'loading')) {
      // The thread may have moved on to the next message by now: whatever else dies with it
      // is not to blame (see #blame), and runs again elsewhere.
      this.#threads.end(lane.threadId);
    }
    if (lane.state === 'running' && lane.item === blamed) {
      const running = handoff.jobs[blamed];
      if (running !== undefined) running.runMs = this.#meter.now() - lane.since;
    }
    // Items before `from` stay with the hand-off: the thread has run them (or runs one, beyond
    // the blamed item), and their results come with its answer (or, if the thread is ended
    // before it answers, they run again: see #onDeath). Only those it will skip go back to the
    // queue now.
    this.#apply(handoff, verdict, verdict.error, blamed >= 0, blamed >= 0 ? from : 0);
    this.#afterSettle();
  }

  #cancelAll(error: TroupeError): void {
    this.#forced ??= error;
    for (const job of this.#queue.drainAll()) this.#fail(job, error);
    for (const handoff of [...this.#inFlight]) this.#kill(handoff, { item: 'all', error });
    this.#afterSettle();
  }

  #startSweeper(): void {
    if (this.#sweeper !== undefined) return;
    this.#sweeper = setInterval(() => this.#sweep(), this.#options.sweepIntervalMs);
    this.#sweeper.unref();
  }

  #stopSweeper(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  /**
   * One pass over the hand-offs in flight (at most two per thread): kills what ran out of time.
   * Every `sweepIntervalMs` while a timed task is in flight, else on the watchdog's tick.
   */
  #sweep(): void {
    if (this.#inFlight.size === 0) return;
    const now = this.#meter.now();
    const handoffs = [...this.#inFlight];
    let started = 0;
    for (const handoff of handoffs) {
      const state = this.#lanes.read(handoff.lane, handoff.gen).state;
      if (state === 'running' || state === 'loading') started++;
    }
    for (const handoff of handoffs) {
      if (handoff.kill !== undefined || handoff.done) continue;
      // Read just before judging: settling a hand-off killed above runs callbacks meanwhile.
      const lane = this.#lanes.read(handoff.lane, handoff.gen);
      // Waiting behind busy threads is queue time, not a failure to start: the clock restarts.
      if (lane.state === 'handed' && started >= this.#options.threads) handoff.waitingSince = now;
      const verdict = expired(
        {
          module: (handoff.jobs[0] as Job).module.reg.name,
          waitingSince: handoff.waitingSince,
          items: handoff.jobs,
        },
        lane,
        now,
        this.#options,
      );
      // A run that outlived its limit gets the grace a cancel gets; a blocked load does not.
      if (verdict !== undefined) this.#kill(handoff, verdict, lane.state === 'running');
    }
  }

  /** Work waits and threads are missing (Piscina stopped replacing them): start one. */
  #checkThreads(): void {
    if (this.#closed || this.#pinging || this.#queue.size + this.#inFlight.size === 0) return;
    if (this.#piscina.threads.length >= this.#options.threads) return;
    this.#pinging = true;
    const ping: TaskMessage = { k: 'ping', m: '', l: -1, g: 0, i: [] };
    const done = () => {
      this.#pinging = false;
    };
    this.#piscina.run(ping).then(done, done);
  }

  /** Replaces a thread that saw an uncaught error, once its answer is in. */
  #recycle(threadId: number): void {
    this.#threads.end(threadId);
  }

  /**
   * A thread could not send an answer (an output that cannot be cloned): that item fails, the
   * others of its message run elsewhere, and the thread, whose Piscina task would never end, is
   * terminated and replaced.
   */
  #onSideMessage(message: unknown): void {
    const side = message as SideMessage | null;
    if (side === null || typeof side !== 'object') return;
    if (side.kind === 'troupe:ctx') {
      // Posted by troupe's dispatcher when a thread starts, before any module loads. Anything
      // else that looks like it (a module posting on parentPort) is ignored.
      if (
        Number.isInteger(side.threadId) &&
        side.port instanceof MessagePort &&
        this.#threads.get(side.threadId)?.port === undefined
      ) {
        try {
          this.#openChannel(side.threadId, side.port);
        } catch (error) {
          this.#reportStray(error, `thread ${side.threadId}'s context channel could not open`);
        }
      }
      return;
    }
    if (side.kind !== 'troupe:not-cloneable') return;
    this.#threads.end(side.threadId);
    let handoff: Handoff | undefined;
    for (const h of this.#inFlight) if (h.lane === side.lane && h.gen === side.gen) handoff = h;
    if (handoff === undefined || handoff.kill !== undefined) return;
    const name = (handoff.jobs[0] as Job).module.reg.name;
    const error = new TroupeError(
      'E_NOT_CLONEABLE',
      `${name}: ${side.path} cannot be sent back from the worker thread`,
      {
        cause: new Error(side.message),
        details: { module: name, path: side.path },
      },
    );
    handoff.kill = { item: side.item, error };
    this.#apply(handoff, handoff.kill, error, true);
    this.#afterSettle();
  }

  /**
   * A thread's answer reached the main thread but could not be decoded there (an output nested
   * deeper than the main thread's deserializer goes, though the thread could encode it): Piscina
   * drops such a message without a word, and its task would never end. The lost answer is the
   * oldest of the thread's hand-offs that reads done (answers arrive in order). A task alone fails
   * `E_NOT_CLONEABLE`; the tasks of a batch run again, each alone, so that the one whose output
   * cannot cross is found. The thread is ended (Piscina counts the lost task as running on it).
   */
  #onLostAnswer(threadId: number, error: unknown): void {
    // The oldest hand-off of the thread that it has finished is the one whose answer this was
    // (answers come in order), whether or not it was given up on meanwhile.
    let lost: Handoff | undefined;
    for (const handoff of this.#inFlight) {
      if (handoff.thread?.id !== threadId) continue;
      if (this.#lanes.read(handoff.lane, handoff.gen).state !== 'done') continue;
      lost = handoff;
      break;
    }
    this.#threads.end(threadId);
    if (lost !== undefined && lost.kill !== undefined) return;
    if (lost === undefined) {
      this.#reportStray(error, `an answer of thread ${threadId} could not be read`);
      return;
    }
    const name = (lost.jobs[0] as Job).module.reg.name;
    const failure = new TroupeError(
      'E_NOT_CLONEABLE',
      `${name}: the output cannot be received from the worker thread (${messageOf(error)}; nested too deep?)`,
      { cause: error, details: { module: name } },
    );
    const verdict: Blame = { item: lost.jobs.length === 1 ? 0 : 'none', error: failure };
    lost.kill = verdict;
    this.#apply(lost, verdict, failure, true);
    this.#afterSettle();
  }

  /** A thread started: serve its `ctx` calls on the port it sent (one channel per thread). */
  #openChannel(threadId: number, port: MessagePort): void {
    const api: ContextHostApi = {
      call: (l, g, item, op, args) => this.#serveContext(l, g, item, op, args),
    };
    expose(api, port as never);
    // An idle pool must not keep the process alive.
    port.unref();
    const thread = this.#threads.of(threadId);
    thread.port = port;
    port.once('close', () => {
      if (thread.port === port) thread.port = undefined;
    });
  }

  async #serveContext(
    lane: number,
    gen: number,
    item: number,
    op: ContextOp,
    args: unknown[],
  ): Promise<CallResult> {
    const handoff = this.#inFlight.atLane(lane);
    const job = handoff?.gen === gen ? handoff.jobs[item] : undefined;
    try {
      if (job === undefined || job.settled || handoff?.kill !== undefined) {
        throw new TroupeError(
          'E_CANCELLED',
          `ctx.${op}: the task has already ended (cancelled or timed out)`,
        );
      }
      const host = this.#options.host;
      if (host === undefined) {
        throw new TroupeError(
          'E_NO_RECIPIENT',
          `ctx.${op}: this pool has no context host (messages, progress and the blackboard come with a troupe)`,
        );
      }
      const reading = this.#lanes.read(lane, gen);
      const thread = reading.state === 'handed' ? -1 : reading.threadId;
      return { ok: true, v: await host.call(job.origin, job.module.reg.name, op, args, thread) };
    } catch (error) {
      return { ok: false, e: serializeError(error) };
    }
  }

  #reportStray(error: unknown, what: string): void {
    this.#meter.counts.strayErrors++;
    const stray = new TroupeError(
      'E_TASK_FAILED',
      `${what} (charged to no task): ${messageOf(error)}`,
      { cause: error },
    );
    const onStrayError = this.#options.onStrayError;
    if (onStrayError !== undefined) notify(onStrayError, stray);
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
 * Hears of a thread's answers that cannot be decoded (see #onLostAnswer), from Piscina's record
 * of the thread (Piscina does not export the symbol that holds it). Piscina reads answers two
 * ways: from its port's 'message' events, where a failed decode is a 'messageerror', and
 * synchronously, with receiveMessageOnPort, once an answer has come (processPendingMessages),
 * where it throws — out of a port listener, so uncaught: that read is wrapped.
 */
function hearLostAnswers(worker: object, onLost: (error: unknown) => void): void {
  const info = workerInfoOf(worker);
  if (info === undefined) {
    // A Piscina that keeps its record elsewhere: no answer is lost silently — a failed decode
    // is then an uncaught error, which the tests (test/hostile-values.test.ts) would show.
    return;
  }
  info.port.on('messageerror', onLost);
  const read = info.processPendingMessages;
  if (typeof read !== 'function') return;
  info.processPendingMessages = function readPending(this: unknown, ...args: unknown[]) {
    try {
      return read.apply(this, args);
    } catch (error) {
      // The answers read before this one are settled by promise callbacks not yet run: judge
      // after them, or the one before would be blamed.
      setImmediate(() => onLost(error));
      return undefined;
    }
  };
}

interface WorkerInfo {
  port: MessagePort;
  processPendingMessages?: (...args: unknown[]) => unknown;
}

function workerInfoOf(worker: object): WorkerInfo | undefined {
  for (const symbol of Object.getOwnPropertySymbols(worker)) {
    if (symbol.description !== 'Piscina.kWorkerData') continue;
    const info = (worker as Record<symbol, { port?: unknown } | undefined>)[symbol];
    if (info?.port instanceof MessagePort) return info as WorkerInfo;
  }
  return undefined;
}

/** The subtask a task is, when the runtime says so in its context (for messages that name it). */
function subtaskOf(context: unknown): string | undefined {
  const task = (context as { task?: { id?: unknown } } | undefined)?.task;
  return typeof task?.id === 'string' ? task.id : undefined;
}

/** A fresh error per task with the same code, message and cause (errors are not shared). */
function copyError(error: TroupeError): TroupeError {
  return new TroupeError(error.code, error.message, { cause: error.cause, details: error.details });
}

/**
 * Creates a pool of worker threads that runs the registered modules. Each module's default
 * export `(input, ctx) => output` runs on a thread; failures come back as {@link TroupeError}s.
 */
export function createPool(options: PoolOptions): Pool {
  return new Pool(options);
}
