/**
 * Admission: every task is checked (module known and not broken, options, input size, queue
 * bound, signal) before a thread sees it, refusals settle in a microtask like results, and an
 * admitted task is queued and watched by its signal. What a turn admits leaves at its end, in
 * batches, unless a full message per thread is already waiting.
 */
import { invalidOption, notify, TroupeError } from '../../errors.js';
import { isInstance } from '../../fields.js';
import { DURATION, isDuration } from '../../validate.js';
import { batchSize } from '../batching.js';
import { cancelledError, tooLarge } from '../failures.js';
import {
  copyError,
  type Job,
  type JobKind,
  type ModuleState,
  type Settled,
  subtaskOf,
} from '../jobs.js';
import type { PoolMeter } from '../meter.js';
import type { PoolRunOptions, ResolvedPoolOptions } from '../options.js';
import { payloadBytes } from '../payload.js';
import type { WorkQueue } from '../work-queue.js';
import type { Dispatch } from './handoff.js';
import type { KeepAlive } from './keep-alive.js';
import type { Settlement } from './settle.js';
import type { Signals } from './signals.js';
import type { Shared } from './types.js';

export class Admission {
  readonly #options: ResolvedPoolOptions;
  readonly #modules: ReadonlyMap<string, ModuleState>;
  readonly #queue: WorkQueue;
  readonly #meter: PoolMeter;
  readonly #signals: Signals;
  readonly #keepAlive: KeepAlive;
  readonly #settle: Pick<Settlement, 'callSettled'>;
  readonly #dispatch: Pick<Dispatch, 'pump' | 'handOff' | 'mayHandOff'>;
  #closed = false;
  #seq = 0;
  /** A pump is queued for the end of this turn (see #pumpSoon). */
  #pumpPending = false;

  constructor(
    shared: Shared,
    settle: Pick<Settlement, 'callSettled'>,
    dispatch: Pick<Dispatch, 'pump' | 'handOff' | 'mayHandOff'>,
  ) {
    this.#options = shared.options;
    this.#modules = shared.modules;
    this.#queue = shared.queue;
    this.#meter = shared.meter;
    this.#signals = shared.signals;
    this.#keepAlive = shared.keepAlive;
    this.#settle = settle;
    this.#dispatch = dispatch;
  }

  /** `close()` was called: no task is taken from now on. */
  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.#closed = true;
  }

  /**
   * Checks and queues a task; `settled` is called once, when it settles (refused: in a
   * microtask). Behind Pool.run (as a promise) and Pool.runThen (as is).
   */
  admit(
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
    if (this.#closed)
      return void this.#refuse(
        settled,
        options,
        onFreed,
        new TroupeError('E_CLOSED', 'the pool is closed: no task is taken after close()'),
      );
    const module = this.#modules.get(name);
    if (module === undefined) {
      return void this.#refuse(
        settled,
        options,
        onFreed,
        invalidOption(
          'module',
          `one of the registered modules (${[...this.#modules.keys()].join(', ') || 'none'})`,
          name,
        ),
      );
    }
    if (options === null || typeof options !== 'object')
      return void this.#refuse(
        settled,
        options,
        onFreed,
        invalidOption('run(options)', 'an object', options),
      );
    const { signal, transfer, context, onRunTime, origin } = options;
    if (options.onFreed !== undefined && typeof options.onFreed !== 'function') {
      return void this.#refuse(
        settled,
        options,
        onFreed,
        invalidOption('run(options).onFreed', 'a function', options.onFreed),
      );
    }
    const timeoutMs = options.timeoutMs ?? module.reg.timeoutMs;
    if (!isDuration(timeoutMs))
      return void this.#refuse(
        settled,
        options,
        onFreed,
        invalidOption('run(options).timeoutMs', DURATION, timeoutMs),
      );
    if (signal !== undefined && !isInstance(signal, AbortSignal)) {
      return void this.#refuse(
        settled,
        options,
        onFreed,
        invalidOption('run(options).signal', 'an AbortSignal', signal),
      );
    }
    if (
      transfer !== undefined &&
      !(Array.isArray(transfer) && transfer.every((b) => isInstance(b, ArrayBuffer)))
    ) {
      return void this.#refuse(
        settled,
        options,
        onFreed,
        invalidOption('run(options).transfer', 'an array of ArrayBuffers', transfer),
      );
    }
    if (onRunTime !== undefined && typeof onRunTime !== 'function') {
      return void this.#refuse(
        settled,
        options,
        onFreed,
        invalidOption('run(options).onRunTime', 'a function', onRunTime),
      );
    }
    if (context !== undefined && (context === null || typeof context !== 'object')) {
      return void this.#refuse(
        settled,
        options,
        onFreed,
        invalidOption('run(options).context', 'an object { task?, deps? }', context),
      );
    }
    if (module.broken !== undefined)
      return void this.#refuse(settled, options, onFreed, copyError(module.broken));
    const maxInput = this.#options.maxInputBytes;
    if (maxInput !== Number.POSITIVE_INFINITY && kind !== 'probe') {
      const weight = payloadBytes(input, maxInput);
      if (weight > maxInput)
        return void this.#refuse(
          settled,
          options,
          onFreed,
          tooLarge(name, 'input', maxInput, weight, subtaskOf(context)),
        );
    }
    // Tasks of this turn not yet handed out (see #pumpSoon) must not make the queue look full.
    if (this.#queue.size >= this.#options.maxQueue) this.#dispatch.pump();
    if (this.#queue.size >= this.#options.maxQueue) {
      return void this.#refuse(
        settled,
        options,
        onFreed,
        new TroupeError(
          'E_QUEUE_FULL',
          `the pool's queue holds ${this.#queue.size} tasks, its limit (maxQueue)`,
          {
            details: { maxQueue: this.#options.maxQueue },
          },
        ),
      );
    }
    if (signal?.aborted)
      return void this.#refuse(settled, options, onFreed, cancelledError(signal));
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
      thread: -1,
      onSettled: settled,
    };
    if (signal !== undefined) this.#signals.watch(signal, job);
    this.#queue.push(job);
    this.#keepAlive.busy();
    // A full message for every thread is queued (of this module alone), and a slot is free:
    // one leaves now, so that a thread starts while the rest of a burst is still being
    // submitted. Otherwise at the end of the turn, split over the threads (see Dispatch.pump).
    const batch = batchSize(module);
    if (
      module.queued >= batch * this.#options.threads &&
      module.queued === this.#queue.size &&
      this.#dispatch.mayHandOff
    ) {
      const jobs = this.#queue.take(batch);
      if (jobs !== undefined) this.#dispatch.handOff(jobs);
    }
    if (this.#queue.size > 0) this.#pumpSoon();
  }

  /** Refused before admission: no thread ever runs it (told in a microtask, as admitted ones are later). */
  #refuse(
    settled: Settled,
    options: PoolRunOptions,
    onFreed: (() => void) | undefined,
    error: TroupeError,
  ): void {
    if (onFreed !== undefined) queueMicrotask(() => notify(onFreed, undefined));
    queueMicrotask(() =>
      this.#settle.callSettled(settled, error, undefined, 0, options?.origin, -1),
    );
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
      this.#dispatch.pump();
    });
  }
}
