/**
 * Settlement and crash recovery: what a thread's answer, a hand-off's rejection, an unsendable
 * or a lost answer means for each task on it. Each task settles once (`fail`, `succeed`); a
 * task that did not run is put back at the front of the queue (`requeue`), counted against a
 * bound unless its hand-off died of something else (collateral); only the item that was running
 * when a thread died is blamed (`blame`, in failures.ts). Whatever this settles, the caller
 * follows with Dispatch.afterSettle.
 */
import { deserializeError, notify, TroupeError } from '../../errors.js';
import { findUncloneable } from '../clone.js';
import { blame, itemError, messageOf } from '../failures.js';
import {
  type Blame,
  copyError,
  type Handoff,
  type Job,
  type ModuleState,
  type Settled,
  subtaskOf,
} from '../jobs.js';
import type { Lanes } from '../lanes.js';
import type { PoolMeter } from '../meter.js';
import type { ResolvedPoolOptions } from '../options.js';
import type { SideMessage, TaskResponse } from '../protocol.js';
import type { WorkQueue } from '../work-queue.js';
import type { InFlight } from './in-flight.js';
import type { Signals } from './signals.js';
import type { Threads } from './threads.js';
import type { Shared } from './types.js';

/** Times a task's thread may die before the task started, before the task fails. */
const MAX_REQUEUES = 3;
/**
 * Times a task may go back to the queue after deaths it is not charged with (see #collateral),
 * before it fails all the same: a bound, in case the charge was wrong.
 */
const MAX_COLLATERAL_REQUEUES = 16;

export class Settlement {
  readonly #options: ResolvedPoolOptions;
  readonly #queue: WorkQueue;
  readonly #lanes: Lanes;
  readonly #meter: PoolMeter;
  readonly #inFlight: InFlight;
  readonly #threads: Threads;
  readonly #signals: Signals;
  /**
   * The hand-off whose answer or rejection is being applied: released already, its items settle
   * one by one, and those not yet settled are still running (see InFlight.running).
   */
  #settling: Handoff | undefined;
  /** The pool was destroyed (or closed with force): what would be requeued fails with this. */
  #forced: TroupeError | undefined;

  constructor(shared: Shared) {
    this.#options = shared.options;
    this.#queue = shared.queue;
    this.#lanes = shared.lanes;
    this.#meter = shared.meter;
    this.#inFlight = shared.inFlight;
    this.#threads = shared.threads;
    this.#signals = shared.signals;
  }

  get settling(): Handoff | undefined {
    return this.#settling;
  }

  get forced(): TroupeError | undefined {
    return this.#forced;
  }

  /** Nothing runs again: what would be requeued fails with `error` (the first one given). */
  force(error: TroupeError): void {
    this.#forced ??= error;
  }

  #release(handoff: Handoff): boolean {
    if (handoff.done) return false;
    handoff.done = true;
    if (handoff.thread !== undefined) handoff.thread.handoffs--;
    // Every job still on it, settled or not: no thread runs it any more.
    for (const job of handoff.jobs) if (job.handoff === handoff) this.#freed(job);
    this.#inFlight.remove(handoff);
    clearTimeout(handoff.graceTimer);
    clearTimeout(handoff.itemGrace);
    this.#lanes.release(handoff.lane);
    return true;
  }

  /** A thread answered the hand-off. False if it was released already (nothing changed). */
  onAnswer(handoff: Handoff, response: TaskResponse): boolean {
    if (handoff.done) return false;
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
        this.fail(job, new TroupeError('E_INTERNAL', `a thread answered ${count} items`));
        continue;
      }
      if (result.ok || (result.code !== 'E_CANCELLED' && result.code !== 'E_TRIMMED')) {
        // A probe or a message says nothing of how long the module's tasks take.
        this.#meter.ran(job.module, response.th, result.ms, job.kind === 'run');
        job.runMs = result.ms;
        job.thread = response.th;
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
      this.fail(job, error);
    }
    for (const wire of response.stray ?? []) {
      const what = `an error thrown on thread ${response.th} outside any running task`;
      this.reportStray(deserializeError(wire), what);
    }
    // Replaced once its answer is in: it saw an uncaught error.
    if (response.recycle === true) this.#threads.end(response.th);
    this.#settling = undefined;
    return true;
  }

  /**
   * Piscina rejected the hand-off: the post failed, the thread died, or the pool killed it.
   * False if it was released already (nothing changed).
   */
  onDeath(handoff: Handoff, error: unknown): boolean {
    if (!this.#release(handoff)) return false;
    this.#settling = handoff;
    // A hand-off the pool gave up on had its verdict applied then: only its slot is freed now.
    if (handoff.kill === undefined) {
      const verdict = this.#blame(handoff, error);
      if (typeof verdict.item === 'number' && handoff.thread !== undefined)
        handoff.thread.deathCharged = true;
      this.apply(handoff, verdict, error, this.#collateral(handoff, verdict));
    } else {
      // Given up on (see Cancellation) with items it had run still on it: their results died
      // with the thread. They run again.
      for (let index = handoff.jobs.length - 1; index >= 0; index--) {
        const job = handoff.jobs[index] as Job;
        if (handoff.owns(job)) this.#requeue(job, error, true);
      }
    }
    this.#settling = undefined;
    return true;
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
  apply(handoff: Handoff, verdict: Blame, cause: unknown, collateral = false, ran = 0): void {
    if (verdict.error.code === 'E_MODULE_LOAD')
      this.#markBroken((handoff.jobs[0] as Job).module, verdict.error);
    const innocent: Job[] = [];
    handoff.jobs.forEach((job, index) => {
      if (!handoff.owns(job)) return;
      if (verdict.item === 'all' || verdict.item === index) this.fail(job, verdict.error);
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
      if (running !== undefined) {
        running.runMs = this.#meter.now() - lane.since;
        running.thread = lane.threadId;
      }
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
      this.fail(job, refusal);
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

  fail(job: Job, error: TroupeError): void {
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
    this.callSettled(job.onSettled, error, value, job.runMs, job.origin, job.thread);
  }

  /** A settlement callback that throws (see Pool.runThen) must not break the pool. */
  callSettled(
    settled: Settled,
    error: TroupeError | undefined,
    value: unknown,
    runMs: number,
    origin: unknown,
    thread: number,
  ): void {
    try {
      settled(error, value, runMs, origin, thread);
    } catch (thrown) {
      this.reportStray(thrown, "a task's settlement callback threw");
    }
  }

  #settle(job: Job): void {
    job.settled = true;
    // An observer that fails must not keep the task from settling.
    if (job.onRunTime !== undefined) notify(job.onRunTime, job.runMs);
    // On a hand-off, it is freed when its thread is done with it (see #release).
    if (job.handoff === undefined) this.#freed(job);
    if (job.signal !== undefined) this.#signals.unwatch(job.signal, job);
  }

  #freed(job: Job): void {
    const onFreed = job.onFreed;
    if (onFreed === undefined) return;
    job.onFreed = undefined;
    notify(onFreed, undefined);
  }

  /** A module that cannot load fails what waits for it at once, instead of one thread at a time. */
  #markBroken(module: ModuleState, error: TroupeError): void {
    module.broken ??= error;
    for (const job of this.#queue.drainModule(module)) this.fail(job, copyError(error));
  }

  /**
   * A thread could not send an answer (an output that cannot be cloned): that item fails, the
   * others of its message run elsewhere, and the thread, whose Piscina task would never end, is
   * terminated and replaced. False if nothing was settled.
   */
  onUnsendable(side: Extract<SideMessage, { kind: 'troupe:not-cloneable' }>): boolean {
    this.#threads.end(side.threadId);
    let handoff: Handoff | undefined;
    for (const h of this.#inFlight) if (h.lane === side.lane && h.gen === side.gen) handoff = h;
    if (handoff === undefined || handoff.kill !== undefined) return false;
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
    this.apply(handoff, handoff.kill, error, true);
    return true;
  }

  /**
   * A thread's answer reached the main thread but could not be decoded there (an output nested
   * deeper than the main thread's deserializer goes, though the thread could encode it): Piscina
   * drops such a message without a word, and its task would never end. The lost answer is the
   * oldest of the thread's hand-offs that reads done (answers arrive in order). A task alone fails
   * `E_NOT_CLONEABLE`; the tasks of a batch run again, each alone, so that the one whose output
   * cannot cross is found. The thread is ended (Piscina counts the lost task as running on it).
   */
  onLostAnswer(threadId: number, error: unknown): boolean {
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
    if (lost !== undefined && lost.kill !== undefined) return false;
    if (lost === undefined) {
      this.reportStray(error, `an answer of thread ${threadId} could not be read`);
      return false;
    }
    const name = (lost.jobs[0] as Job).module.reg.name;
    const failure = new TroupeError(
      'E_NOT_CLONEABLE',
      `${name}: the output cannot be received from the worker thread (${messageOf(error)}; nested too deep?)`,
      { cause: error, details: { module: name } },
    );
    const verdict: Blame = { item: lost.jobs.length === 1 ? 0 : 'none', error: failure };
    lost.kill = verdict;
    this.apply(lost, verdict, failure, true);
    return true;
  }

  /** An error no task is charged with: counted, and told to `onStrayError`. */
  reportStray(error: unknown, what: string): void {
    this.#meter.counts.strayErrors++;
    const stray = new TroupeError(
      'E_TASK_FAILED',
      `${what} (charged to no task): ${messageOf(error)}`,
      { cause: error },
    );
    const onStrayError = this.#options.onStrayError;
    if (onStrayError !== undefined) notify(onStrayError, stray);
  }
}
