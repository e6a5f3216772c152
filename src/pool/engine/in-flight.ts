/**
 * The hand-offs in flight: given to Piscina and not yet answered or rejected, at most
 * HANDOFF_DEPTH per thread. The counts the engine asks of them as a whole are kept here, each
 * changed on its one transition, so that asking costs no pass over them on the way of a task;
 * the fast sweep runs while the count of timed ones is above 0.
 */
import type { Handoff } from '../jobs.js';

/**
 * Messages handed to Piscina per thread: one running and one waiting in the thread's own port,
 * so that a thread goes from one task to the next without sleeping until the main thread hears
 * of the first and hands it the second (what puts the pool ahead of raw Piscina on short tasks:
 * docs/BENCHMARKS.md, "Pipelining is what puts troupe ahead of raw Piscina").
 */
export const HANDOFF_DEPTH = 2;

export class InFlight {
  readonly #all = new Set<Handoff>();
  /** The hand-off holding each lane, to answer a thread's `ctx` calls. */
  readonly #byLane: (Handoff | undefined)[] = [];
  /** Room for this many: the slots, HANDOFF_DEPTH per thread. */
  readonly capacity: number;
  readonly #sweep: () => void;
  readonly #sweepIntervalMs: number;
  #sweeper: NodeJS.Timeout | undefined;
  #timed = 0;
  #stacked = 0;
  #batches = 0;

  /** `sweep` runs every `sweepIntervalMs` while a hand-off with a run-time limit is in flight. */
  constructor(threads: number, sweepIntervalMs: number, sweep: () => void) {
    this.capacity = threads * HANDOFF_DEPTH;
    this.#sweepIntervalMs = sweepIntervalMs;
    this.#sweep = sweep;
  }

  get size(): number {
    return this.#all.size;
  }

  /** A slot is free: another hand-off may leave. */
  get hasRoom(): boolean {
    return this.#all.size < this.capacity;
  }

  /** Stacked and still worth stealing (see Handoff.stacked). */
  get stacked(): number {
    return this.#stacked;
  }

  /** With more than one item: a running one may be trimmed for an idle thread. */
  get batches(): number {
    return this.#batches;
  }

  /** Oldest first: a set keeps insertion order. */
  [Symbol.iterator](): IterableIterator<Handoff> {
    return this.#all.values();
  }

  atLane(lane: number): Handoff | undefined {
    return this.#byLane[lane];
  }

  /** It leaves for a thread. */
  add(handoff: Handoff): void {
    this.#all.add(handoff);
    this.#byLane[handoff.lane] = handoff;
    if (handoff.jobs.length > 1) this.#batches++;
    if (handoff.timed) {
      this.#timed++;
      if (this.#sweeper === undefined) {
        this.#sweeper = setInterval(this.#sweep, this.#sweepIntervalMs);
        this.#sweeper.unref();
      }
    }
  }

  /** Piscina answered or rejected it: its slot is free. */
  remove(handoff: Handoff): void {
    if (!this.#all.delete(handoff)) return;
    if (this.#byLane[handoff.lane] === handoff) this.#byLane[handoff.lane] = undefined;
    if (handoff.jobs.length > 1) this.#batches--;
    this.unstack(handoff);
    if (handoff.timed && --this.#timed === 0) this.stopSweeper();
  }

  /** Placed behind a hand-off its thread already had (see Dispatch.balance). */
  stack(handoff: Handoff): void {
    if (handoff.stacked) return;
    handoff.stacked = true;
    this.#stacked++;
  }

  /** No longer to be stolen: its thread began it, the pool took it back, or it left flight. */
  unstack(handoff: Handoff): void {
    if (!handoff.stacked) return;
    handoff.stacked = false;
    this.#stacked--;
  }

  /** No fast sweep (the pool closes; the next timed hand-off starts it again). */
  stopSweeper(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  /**
   * Tasks on threads and not yet settled: the jobs the hand-offs in flight own, and those of
   * `settling`, a hand-off answered a moment ago whose items are being settled one by one.
   */
  running(settling: Handoff | undefined): number {
    let running = settling?.owned() ?? 0;
    for (const handoff of this.#all) running += handoff.owned();
    return running;
  }
}
