/**
 * The hand-offs in flight: given to Piscina and not yet answered or rejected, at most
 * `capacity` (two per thread). The counts the pool asks of them as a whole are kept here, each
 * changed on its one transition, so that asking costs no pass over them on the way of a task.
 */
import type { Handoff } from './jobs.js';

export class InFlight {
  readonly #all = new Set<Handoff>();
  /** The hand-off holding each lane, to answer a thread's `ctx` calls. */
  readonly #byLane: (Handoff | undefined)[] = [];
  /** Room for this many: the slots, two per thread. */
  readonly capacity: number;
  #timed = 0;
  #stacked = 0;
  #batches = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#all.size;
  }

  /** A slot is free: another hand-off may leave. */
  get hasRoom(): boolean {
    return this.#all.size < this.capacity;
  }

  /** With a run-time limit: the fast sweep runs only while there are some. */
  get timed(): number {
    return this.#timed;
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
    if (handoff.timed) this.#timed++;
    if (handoff.jobs.length > 1) this.#batches++;
  }

  /** Piscina answered or rejected it: its slot is free. */
  remove(handoff: Handoff): void {
    if (!this.#all.delete(handoff)) return;
    if (this.#byLane[handoff.lane] === handoff) this.#byLane[handoff.lane] = undefined;
    if (handoff.timed) this.#timed--;
    if (handoff.jobs.length > 1) this.#batches--;
    this.unstack(handoff);
  }

  /** Placed behind a hand-off its thread already had (see the pool's balancer). */
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
