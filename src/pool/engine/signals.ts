/**
 * The tasks each abort signal can cancel. One listener per signal, however many tasks share it
 * (a troupe run gives all its subtasks one): Node removes a listener in O(listeners), so one per
 * task would make each settlement cost time in proportion to the tasks in flight.
 */
import type { Job } from '../jobs.js';

export class Signals {
  readonly #watched = new Map<AbortSignal, { jobs: Set<Job>; listener: () => void }>();
  /** Cancels the tasks of a signal that fired, in the order they were admitted. */
  readonly #onAbort: (jobs: Job[]) => void;

  constructor(onAbort: (jobs: Job[]) => void) {
    this.#onAbort = onAbort;
  }

  watch(signal: AbortSignal, job: Job): void {
    let watched = this.#watched.get(signal);
    if (watched === undefined) {
      const jobs = new Set<Job>();
      const listener = () => {
        this.#watched.delete(signal);
        // A copy: each job leaves the set as it settles.
        this.#onAbort([...jobs]);
      };
      watched = { jobs, listener };
      this.#watched.set(signal, watched);
      signal.addEventListener('abort', listener, { once: true });
    }
    watched.jobs.add(job);
  }

  unwatch(signal: AbortSignal, job: Job): void {
    const watched = this.#watched.get(signal);
    if (watched === undefined || !watched.jobs.delete(job) || watched.jobs.size > 0) return;
    this.#watched.delete(signal);
    signal.removeEventListener('abort', watched.listener);
  }
}
