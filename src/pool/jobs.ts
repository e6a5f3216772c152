/**
 * The pool's records: a job per task, a hand-off per message, a record per thread, a state per
 * module.
 */
import type { MessagePort } from 'node:worker_threads';
import { TroupeError } from '../errors.js';
import type { ResolvedModule } from './options.js';
import type { TaskContextData } from './protocol.js';
import type { Deque } from './queue.js';

export type JobKind = 'run' | 'message' | 'probe';

/** One task, from `run()` until it settles. */
export interface Job {
  /** Admission order: FIFO across modules. */
  seq: number;
  kind: JobKind;
  module: ModuleState;
  input: unknown;
  context: TaskContextData | undefined;
  transfer: ArrayBuffer[] | undefined;
  timeoutMs: number;
  enqueuedAt: number;
  /** Times its thread died before running it. */
  requeues: number;
  /** Times it went back to the queue after deaths it was not charged with (see Settlement). */
  collateral: number;
  /** Never batched (a probe, a transfer, or a task whose batch was lost). */
  solo: boolean;
  settled: boolean;
  handoff: Handoff | undefined;
  signal: AbortSignal | undefined;
  onRunTime: ((ms: number) => void) | undefined;
  /** Called once when no thread runs it any more (see PoolRunOptions.onFreed). */
  onFreed: (() => void) | undefined;
  /** Who the task is, for the context host (`ctx` calls it makes are handed back with this). */
  origin: unknown;
  /** Its run time on its thread, ms, once known. */
  runMs: number;
  /** The thread it ran on (its last try), -1 if none is known. */
  thread: number;
  /** Called once when it settles: with the error, or with `undefined` and the output. */
  onSettled: Settled;
}

/**
 * How a task's submitter hears of its settlement (see Pool.runThen): the error, or `undefined`
 * and the output; then its run time on its thread (ms, 0 if it never ran), its `origin`, so
 * that one function can serve every task, and the thread it ran on (-1 if it never ran).
 */
export type Settled = (
  error: TroupeError | undefined,
  value: unknown,
  runMs: number,
  origin: unknown,
  thread: number,
) => void;

/** Who a failed hand-off is charged to. */
export interface Blame {
  /** The item charged with the failure, every item, or none (the thread died before any ran). */
  item: number | 'all' | 'none';
  error: TroupeError;
}

/** One message to one thread: a task, or a batch of tasks of one module. */
export class Handoff {
  readonly lane: number;
  readonly gen: number;
  readonly jobs: Job[];
  /** Some job has a run-time limit. */
  readonly timed: boolean;
  /** When it was handed off, or last seen waiting while every thread was busy (queue time is free). */
  waitingSince: number;
  /**
   * Set when the pool gave up on the hand-off (timeout, cancel, close): its jobs were settled
   * or requeued then, and whatever Piscina reports for it later only frees its slot.
   */
  kill: Blame | undefined = undefined;
  /** Answered or rejected by Piscina: its slot and lane are free (see Settlement). */
  done = false;
  /** The thread Piscina gave it to (undefined while it waits in Piscina's own queue). */
  thread: Thread | undefined = undefined;
  /**
   * Given to a thread that already had a hand-off: it waits in that thread's port, and may be
   * taken back (stolen) if another thread goes idle first.
   */
  stacked = false;
  /**
   * Items before this index are the hand-off's; those from it on were taken back from the batch
   * while it ran (see Lanes.trim) and run elsewhere. `jobs.length` until then.
   */
  held: number;
  /** A cancelled task's thread is terminated when this fires, unless the task stops first. */
  graceTimer: NodeJS.Timeout | undefined = undefined;
  /**
   * The same for one item of a batch cancelled alone while its thread ran it (see
   * Cancellation): the thread goes on with the batch's other items if that one stops in time.
   */
  itemGrace: NodeJS.Timeout | undefined = undefined;

  constructor(lane: number, gen: number, jobs: Job[], timed: boolean, now: number) {
    this.lane = lane;
    this.gen = gen;
    this.jobs = jobs;
    this.timed = timed;
    this.waitingSince = now;
    this.held = jobs.length;
  }

  /**
   * Is the job still this hand-off's to settle? Not once it was taken back (stolen, trimmed),
   * requeued, or settled (cancelled alone, say): whatever the thread reports of it is then news
   * about a task the pool has dealt with already.
   */
  owns(job: Job): boolean {
    return job.handoff === this && !job.settled;
  }

  /** The jobs it owns: tasks on a thread and not yet settled. */
  owned(): number {
    let owned = 0;
    for (const job of this.jobs) if (this.owns(job)) owned++;
    return owned;
  }
}

/** What the main thread knows of one thread (see the engine's Threads). */
export class Thread {
  readonly id: number;
  /** Its end of the context channel, once the thread has sent it. */
  port: MessagePort | undefined = undefined;
  /** Piscina said it is ready (`workerCreate`) and still lists it: only a ready thread can be idle. */
  ready = false;
  /** Hand-offs in flight placed on it by the balancer (what Piscina counts as its usage). */
  handoffs = 0;
  /** The pool ends it itself: nothing else that dies with it is to blame. */
  ending = false;
  /** A death of it was charged to the task it ran: what else died with it is collateral. */
  deathCharged = false;

  constructor(id: number) {
    this.id = id;
  }
}

export interface ModuleState {
  reg: ResolvedModule;
  queue: Deque<Job>;
  /** Live (unsettled) jobs in `queue`. */
  queued: number;
  /** Set once the module failed to load: its tasks then fail at once. */
  broken: TroupeError | undefined;
  /** Typical run time of an item: a moving geometric mean, ms (what stats report). */
  avgRunMs: number;
  /** Its logarithm, the moving average actually kept. */
  avgLogMs: number;
  /**
   * Expected run time of an item: a moving arithmetic mean, ms. What batches and trimming are
   * sized by: the work a batch of k items holds is k times this, not k times the typical one
   * (which, for mixed items, is smaller: a batch sized by it would hold far more work).
   */
  meanRunMs: number;
  samples: number;
  completed: number;
  failed: number;
}

/** The subtask a task is, when the runtime says so in its context (for messages that name it). */
export function subtaskOf(context: unknown): string | undefined {
  const task = (context as { task?: { id?: unknown } } | undefined)?.task;
  return typeof task?.id === 'string' ? task.id : undefined;
}

/** A fresh error per task with the same code, message and cause (errors are not shared). */
export function copyError(error: TroupeError): TroupeError {
  return new TroupeError(error.code, error.message, { cause: error.cause, details: error.details });
}
