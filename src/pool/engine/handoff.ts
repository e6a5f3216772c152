/**
 * Hand-off and rebalancing: queued work goes out in messages (the pump, a fair share each),
 * Piscina places each on a thread through the balancer, which records where it went and whether
 * it waits behind another (stacked); an idle thread then takes back a stacked message its
 * thread has not begun (steal), or the later half of a batch a busy thread runs (trim).
 */
import type { Piscina } from 'piscina';
import { queueOptionsSymbol } from 'piscina';
import { TroupeError } from '../../errors.js';
import { fairShare, isMeasured } from '../batching.js';
import { type Blame, copyError, Handoff, type Job } from '../jobs.js';
import type { Lanes } from '../lanes.js';
import type { PoolMeter } from '../meter.js';
import type { ResolvedPoolOptions } from '../options.js';
import {
  packContexts,
  type TaskContextData,
  type TaskMessage,
  type TaskResponse,
} from '../protocol.js';
import type { WorkQueue } from '../work-queue.js';
import { HANDOFF_DEPTH, type InFlight } from './in-flight.js';
import type { KeepAlive } from './keep-alive.js';
import { type BalancedTask, type BalancedWorker, UNSTACKABLE } from './piscina.js';
import type { Settlement } from './settle.js';
import type { Threads } from './threads.js';
import type { Shared } from './types.js';

/**
 * A running batch is split for an idle thread only if the part taken back holds at least this
 * much work (by its module's mean run time): less is not worth a message.
 */
const MIN_TRIM_MS = 0.5;

/** What a stolen hand-off's verdict says: it is never applied (its jobs went back to the queue). */
const STOLEN: Blame = Object.freeze({
  item: 'none',
  error: new TroupeError('E_CANCELLED', 'taken back by the pool before any thread began it'),
}) as Blame;

export class Dispatch {
  readonly #options: ResolvedPoolOptions;
  readonly #queue: WorkQueue;
  readonly #lanes: Lanes;
  readonly #meter: PoolMeter;
  readonly #inFlight: InFlight;
  readonly #threads: Threads;
  readonly #keepAlive: KeepAlive;
  readonly #piscina: Piscina;
  readonly #settle: Pick<Settlement, 'onAnswer' | 'onDeath' | 'fail' | 'forced'>;
  /** While above 0, the pump hands nothing out (see holdPump). */
  #held = 0;
  #stealCheck: NodeJS.Immediate | undefined;

  constructor(
    shared: Shared,
    piscina: Piscina,
    settle: Pick<Settlement, 'onAnswer' | 'onDeath' | 'fail' | 'forced'>,
  ) {
    this.#options = shared.options;
    this.#queue = shared.queue;
    this.#lanes = shared.lanes;
    this.#meter = shared.meter;
    this.#inFlight = shared.inFlight;
    this.#threads = shared.threads;
    this.#keepAlive = shared.keepAlive;
    this.#piscina = piscina;
    this.#settle = settle;
  }

  /**
   * Hands queued work out, while there are free slots (HANDOFF_DEPTH per thread): each message
   * a fair share of what waits (see fairShare).
   */
  pump(): void {
    if (this.#held > 0) return;
    const free = this.#inFlight.capacity - this.#inFlight.size;
    if (free <= 0 || this.#queue.size === 0) return;
    const share = fairShare(this.#queue.size, free, this.#options.threads);
    while (this.#inFlight.hasRoom && this.#settle.forced === undefined) {
      const jobs = this.#queue.take(share);
      if (jobs === undefined) return;
      this.handOff(jobs);
    }
  }

  /** Posts one message to Piscina, which the balancer places on a thread (at once or later). */
  handOff(jobs: Job[]): void {
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
    // The balancer finds the hand-off through Piscina's queue-options slot, whenever Piscina
    // places it (at once, or later from its own queue). A symbol key is not cloned: it never
    // crosses.
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
      (response: TaskResponse) => this.#answered(handoff, response),
      (error: unknown) => this.#died(handoff, error),
    );
  }

  #answered(handoff: Handoff, response: TaskResponse): void {
    if (this.#settle.onAnswer(handoff, response)) this.afterSettle();
  }

  #died(handoff: Handoff, error: unknown): void {
    if (this.#settle.onDeath(handoff, error)) this.afterSettle();
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
    return first.kind === 'run' && first.transfer === undefined && isMeasured(first.module);
  }

  /**
   * Piscina's own least-busy rule — a thread with nothing first; never a message on or under an
   * abortable (unstackable) one; else the least busy under the limit — which also records where
   * each hand-off went and whether it waits behind another (stacked).
   */
  balance<W extends BalancedWorker>(task: BalancedTask, workers: W[]): W | null {
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
    // Not one already settled (see handOff's catch): nothing would ever count it out again.
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

  /**
   * Looks for an idle thread to give stacked or batched work to, after this turn's callbacks:
   * after a settlement, and when a thread becomes ready.
   */
  scheduleSteal(): void {
    if (this.#inFlight.stacked + this.#inFlight.batches === 0 || this.#queue.size > 0) return;
    if (this.#stealCheck !== undefined) return;
    this.#stealCheck = setImmediate(() => {
      this.#stealCheck = undefined;
      const { stacked, batches } = this.#inFlight;
      if (stacked + batches > 0 && this.#queue.size === 0 && this.#settle.forced === undefined)
        this.#stealForIdle();
    });
    this.#stealCheck.unref();
  }

  /**
   * Nothing waits in the queue, a thread has nothing of the pool's, and a stacked hand-off still
   * waits behind a busy thread: take it back (if that thread has not begun it) and hand it out
   * again — to the idle thread, which the balancer prefers. The old message stays in the busy
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
        if (job.module.broken !== undefined) this.#settle.fail(job, copyError(job.module.broken));
        else this.#queue.unshift(job);
      }
    }
    if (stole) this.pump();
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
      for (const job of taken) this.#settle.fail(job, copyError(module.broken));
      return true;
    }
    this.#meter.counts.trimmed += taken.length;
    if (taken.length === 0) return true;
    if (this.#inFlight.hasRoom && this.#held === 0) {
      this.handOff(taken);
      return true;
    }
    this.#queue.unshiftAll(taken);
    this.pump();
    return true;
  }

  /**
   * What follows a settlement: the freed slots go to the next messages, an idle thread may take
   * work back, and a pool with nothing left lets the process exit and tells `idle()`'s waiters.
   */
  afterSettle(): void {
    this.pump();
    // Not at once: whoever feeds the pool (a troupe's coordinator) often refills the queue in
    // the microtasks that follow an answer, and a thread then gets new work without a steal.
    // A steal the refill made needless costs the robbed thread a skipped message and a wait.
    this.scheduleSteal();
    if (this.#queue.size > 0 || this.#inFlight.size > 0) return;
    this.#keepAlive.idle();
  }

  /** Nothing is handed out until {@link resumePump} (a signal's tasks are being cancelled). */
  holdPump(): void {
    this.#held++;
  }

  resumePump(): void {
    this.#held--;
  }

  /** A message may leave now: a slot is free, the pump is not held, the pool not destroyed. */
  get mayHandOff(): boolean {
    return this.#inFlight.hasRoom && this.#held === 0 && this.#settle.forced === undefined;
  }

  /** The pool closes: no steal check is left pending. */
  stop(): void {
    clearImmediate(this.#stealCheck);
  }
}
