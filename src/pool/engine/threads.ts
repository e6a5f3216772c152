/**
 * One record per thread (`Thread`, in jobs.ts), by id. The doom table stays beside the records,
 * in shared memory, because the threads read it (see {@link Threads.doom}).
 */
import type { Worker } from 'node:worker_threads';
import { Thread } from '../jobs.js';

/**
 * Slots of the doom table: a thread's slot is its id modulo this. Two threads whose ids differ
 * by a multiple of it, doomed at about the same time, share a slot: the first then goes without
 * the guard.
 */
export const DOOM_SLOTS = 1024;

export class Threads {
  readonly #byId = new Map<number, Thread>();
  /** Piscina's threads, as it lists them (an exited thread's id reads -1). */
  readonly #workers: () => readonly Worker[];
  /** Shared with threads: the id of each thread the pool dooms, in its slot (see {@link doom}). */
  readonly doomed = new Int32Array(new SharedArrayBuffer(DOOM_SLOTS * 4));

  constructor(workers: () => readonly Worker[]) {
    this.#workers = workers;
  }

  get(id: number): Thread | undefined {
    return this.#byId.get(id);
  }

  /** The record of thread `id`, made the first time the pool hears of the thread. */
  of(id: number): Thread {
    let thread = this.#byId.get(id);
    if (thread === undefined) {
      thread = new Thread(id);
      this.#byId.set(id, thread);
    }
    return thread;
  }

  /** Threads that are ready, hold no hand-off of the pool's and are not doomed. */
  idle(): number {
    let idle = 0;
    for (const thread of this.#byId.values())
      if (thread.ready && thread.handoffs === 0 && !this.isDoomed(thread.id)) idle++;
    return idle;
  }

  /**
   * A thread is gone: threads Piscina no longer lists are not ready, and the records of those
   * that hold no hand-off go. One that still holds some is judged by what it says until they
   * have settled (its hand-offs' rejections come after Piscina's `workerDestroy`).
   */
  prune(liveIds: readonly number[]): void {
    for (const thread of this.#byId.values()) {
      if (liveIds.includes(thread.id)) continue;
      thread.ready = false;
      if (thread.handoffs === 0) this.#byId.delete(thread.id);
    }
  }

  liveIds(): number[] {
    return this.#workers().map((worker) => worker.threadId);
  }

  /**
   * Ends a thread; Piscina replaces it. Marked as ending first (what dies with it is not to
   * blame), then doomed in the table the threads share: Node can drop a termination (one that
   * lands while the thread reports an error thrown in a microtask), and a doomed thread exits
   * instead of sleeping until its next message (see the worker's `exitIfDoomed`); asleep, it
   * would never exit.
   */
  end(id: number): void {
    this.of(id).ending = true;
    const worker = this.#workers().find((w) => w.threadId === id);
    if (worker === undefined) return;
    this.doom(id);
    void worker.terminate();
  }

  doom(id: number): void {
    Atomics.store(this.doomed, id % DOOM_SLOTS, id);
  }

  /** Is the pool ending this thread? A doomed one takes nothing more (it may take a while to go). */
  isDoomed(id: number): boolean {
    return Atomics.load(this.doomed, id % DOOM_SLOTS) === id;
  }
}
