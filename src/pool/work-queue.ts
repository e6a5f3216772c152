/**
 * Where work waits: one FIFO per module, so that the next tasks of one module (a batch) are found
 * in O(1), with admission order kept across modules by sequence number. A job cancelled while
 * queued stays as a tombstone and is skipped when reached: O(1) either way.
 */
import { batchSize } from './batching.js';
import type { Job, ModuleState } from './jobs.js';

export class WorkQueue {
  readonly #modules: ModuleState[];
  #size = 0;

  constructor(modules: Iterable<ModuleState>) {
    this.#modules = [...modules];
  }

  /** Live jobs waiting. */
  get size(): number {
    return this.#size;
  }

  push(job: Job): void {
    job.module.queue.push(job);
    job.module.queued++;
    this.#size++;
  }

  /**
   * Puts a job back at the front of its module's queue, by age: behind the older ones put back
   * before it (two messages that die together are put back in either order).
   */
  unshift(job: Job): void {
    const queue = job.module.queue;
    // Only jobs put back can be older than one taken out (the queue hands out its oldest).
    const older: Job[] = [];
    for (let head = queue.peek(); head !== undefined && head.seq < job.seq; head = queue.peek())
      older.push(queue.shift() as Job);
    queue.unshift(job);
    for (let i = older.length - 1; i >= 0; i--) queue.unshift(older[i] as Job);
    job.module.queued++;
    this.#size++;
  }

  /** Puts jobs back at the front of the queue, in their order. */
  unshiftAll(jobs: readonly Job[]): void {
    for (let index = jobs.length - 1; index >= 0; index--) this.unshift(jobs[index] as Job);
  }

  /** A queued job was settled where it stands (cancelled): count it out; it is skipped later. */
  forget(job: Job): void {
    job.module.queued--;
    this.#size--;
  }

  /**
   * The jobs of the next message: the oldest job overall, then as many of its module's next
   * jobs as its batch and a fair share allow. Undefined when nothing waits.
   */
  take(share: number): Job[] | undefined {
    const module = this.#oldest();
    if (module === undefined) return undefined;
    const first = this.#shift(module);
    const jobs = [first];
    if (first.solo) return jobs;
    const want = Math.min(batchSize(module), share);
    while (jobs.length < want) {
      const next = module.queue.peek();
      if (next === undefined) break;
      if (next.settled) {
        module.queue.shift();
        continue;
      }
      if (next.solo || next.kind !== first.kind) break;
      jobs.push(this.#shift(module));
    }
    return jobs;
  }

  /** Removes and returns the live jobs of one module. */
  drainModule(module: ModuleState): Job[] {
    const live = module.queue.drain().filter((job) => !job.settled);
    this.#size -= module.queued;
    module.queued = 0;
    return live;
  }

  /** Removes and returns every live job. */
  drainAll(): Job[] {
    return this.#modules.flatMap((module) => this.drainModule(module));
  }

  #shift(module: ModuleState): Job {
    const job = module.queue.shift() as Job;
    module.queued--;
    this.#size--;
    return job;
  }

  /** The module whose first live job is the oldest; drops tombstones on the way. */
  #oldest(): ModuleState | undefined {
    let best: ModuleState | undefined;
    let bestSeq = Number.POSITIVE_INFINITY;
    for (const module of this.#modules) {
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
}
