/**
 * Cancellation and timeouts: a signal that fires cancels its tasks wherever they are (queued: a
 * tombstone; alone on a thread: the hand-off is given up on; in a batch: that item alone); the
 * sweep gives up on hand-offs that ran out of time. A thread that has begun what is given up on
 * is terminated, after `cancelGraceMs` unless the task stops first (its `ctx.signal` reads the
 * lane's cancel word or skip bit).
 */
import type { TroupeError } from '../../errors.js';
import { cancelledError } from '../failures.js';
import type { Blame, Handoff, Job } from '../jobs.js';
import type { Lanes } from '../lanes.js';
import type { PoolMeter } from '../meter.js';
import type { ResolvedPoolOptions } from '../options.js';
import type { AbortNotice } from '../protocol.js';
import { expired } from '../timeouts.js';
import type { WorkQueue } from '../work-queue.js';
import type { Dispatch } from './handoff.js';
import type { InFlight } from './in-flight.js';
import type { Settlement } from './settle.js';
import type { Threads } from './threads.js';
import type { Shared } from './types.js';

export class Cancellation {
  readonly #options: ResolvedPoolOptions;
  readonly #queue: WorkQueue;
  readonly #lanes: Lanes;
  readonly #meter: PoolMeter;
  readonly #inFlight: InFlight;
  readonly #threads: Threads;
  readonly #settle: Pick<Settlement, 'fail' | 'apply' | 'force'>;
  readonly #dispatch: Pick<Dispatch, 'holdPump' | 'resumePump' | 'afterSettle'>;

  constructor(
    shared: Shared,
    settle: Pick<Settlement, 'fail' | 'apply' | 'force'>,
    dispatch: Pick<Dispatch, 'holdPump' | 'resumePump' | 'afterSettle'>,
  ) {
    this.#options = shared.options;
    this.#queue = shared.queue;
    this.#lanes = shared.lanes;
    this.#meter = shared.meter;
    this.#inFlight = shared.inFlight;
    this.#threads = shared.threads;
    this.#settle = settle;
    this.#dispatch = dispatch;
  }

  /** A signal fired: its tasks (see Signals), in the order they were admitted. */
  abort(jobs: readonly Job[]): void {
    // Each one settles (and leaves the signal's set) as it goes. No hand-off meanwhile: one
    // would give a thread a task of this same, cancelled signal.
    this.#dispatch.holdPump();
    try {
      for (const each of jobs) this.#onAbort(each);
    } finally {
      this.#dispatch.resumePump();
    }
    this.#dispatch.afterSettle();
  }

  #onAbort(job: Job): void {
    if (job.settled) return;
    const error = cancelledError(job.signal as AbortSignal);
    const handoff = job.handoff;
    if (handoff === undefined) {
      this.#queue.forget(job); // stays as a tombstone, skipped when reached
      this.#settle.fail(job, error);
      this.#dispatch.afterSettle();
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
      job.thread = lane.threadId;
      this.#stopItem(handoff, lane.threadId, index);
    }
    this.#settle.fail(job, error);
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
      // is not to blame (see Settlement's blame), and runs again elsewhere.
      this.#threads.end(lane.threadId);
    }
    if (lane.state === 'running' && lane.item === blamed) {
      const running = handoff.jobs[blamed];
      if (running !== undefined) {
        running.runMs = this.#meter.now() - lane.since;
        running.thread = lane.threadId;
      }
    }
    // Items before `from` stay with the hand-off: the thread has run them (or runs one, beyond
    // the blamed item), and their results come with its answer (or, if the thread is ended
    // before it answers, they run again: see Settlement.onDeath). Only those it will skip go
    // back to the queue now.
    this.#settle.apply(handoff, verdict, verdict.error, blamed >= 0, blamed >= 0 ? from : 0);
    this.#dispatch.afterSettle();
  }

  /** Everything queued and in flight settles with `error`, and nothing runs again (`close()`). */
  cancelAll(error: TroupeError): void {
    this.#settle.force(error);
    for (const job of this.#queue.drainAll()) this.#settle.fail(job, error);
    for (const handoff of [...this.#inFlight]) this.#kill(handoff, { item: 'all', error });
    this.#dispatch.afterSettle();
  }

  /**
   * One pass over the hand-offs in flight (at most two per thread): kills what ran out of time.
   * Every `sweepIntervalMs` while a timed task is in flight, else on the watchdog's tick.
   */
  sweep(): void {
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
}
