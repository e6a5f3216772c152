/**
 * Lanes: one slot of shared memory per hand-off, through which a thread says, without a message,
 * what it is doing: loading the module, or running item k since time t. The main thread reads
 * them to time tasks from their start and to charge a thread's death to the right task.
 */

import {
  GEN_MASK,
  LANE_DONE,
  LANE_HANDED,
  LANE_LOADING,
  LANE_STOLEN,
  laneWord,
  SKIP_WORDS,
} from './protocol.js';
import { Deque } from './queue.js';

/** What a lane says about the hand-off that holds it. */
export type LaneReading =
  /** Handed off, nothing started yet (or the lane was written by an earlier holder). */
  | { state: 'handed' }
  | { state: 'loading'; since: number; threadId: number }
  /** Every item ran; the answer was posted (Piscina may not have read it yet). */
  | { state: 'done'; threadId: number }
  | { state: 'running'; item: number; since: number; threadId: number };

const HANDED: LaneReading = Object.freeze({ state: 'handed' });

export class Lanes {
  /**
   * Shared with threads: Int32 state words, then Int32 thread ids, then Int32 cancel words, then
   * Int32 limit words (see {@link trim}).
   */
  readonly stateBuffer: SharedArrayBuffer;
  /** Shared with threads: Float64 start stamps, ms since the pool's epoch. */
  readonly timeBuffer: SharedArrayBuffer;
  /** Shared with threads: per-item skip words, SKIP_WORDS Int32 per lane (see {@link skip}). */
  readonly skipBuffer: SharedArrayBuffer;
  readonly #words: Int32Array;
  readonly #threads: Int32Array;
  readonly #cancels: Int32Array;
  readonly #limits: Int32Array;
  readonly #times: Float64Array;
  readonly #skips: Int32Array;
  readonly #gens: Int32Array;
  readonly #free = new Deque<number>();

  /**
   * Twice as many lanes as hand-offs can be in flight, reused oldest-first, so that a lane is
   * seldom handed out again while a thread that fell behind might still write to it. When it is,
   * the generation tells: a thread stamps by compare-and-swap from what it last wrote, and skips
   * the rest of a hand-off whose lane has been handed on (the worker's `runFrom`).
   */
  constructor(inFlight: number) {
    const count = inFlight * 2 + 2;
    this.stateBuffer = new SharedArrayBuffer(count * 16);
    this.timeBuffer = new SharedArrayBuffer(count * 8);
    this.#words = new Int32Array(this.stateBuffer, 0, count);
    this.#threads = new Int32Array(this.stateBuffer, count * 4, count);
    this.#cancels = new Int32Array(this.stateBuffer, count * 8, count);
    this.#limits = new Int32Array(this.stateBuffer, count * 12, count);
    this.#times = new Float64Array(this.timeBuffer);
    this.skipBuffer = new SharedArrayBuffer(count * SKIP_WORDS * 4);
    this.#skips = new Int32Array(this.skipBuffer);
    this.#gens = new Int32Array(count);
    for (let lane = 0; lane < count; lane++) this.#free.push(lane);
  }

  /** Takes the oldest free lane for a new hand-off. There is always one: at most `inFlight` are held. */
  acquire(): { lane: number; gen: number } {
    const lane = this.#free.shift();
    if (lane === undefined)
      throw new Error('troupe: no free lane (more hand-offs in flight than planned)');
    // Never generation 0: a cancel or limit word that was never written reads 0.
    const gen = ((this.#gens[lane] as number) + 1) & GEN_MASK || 1;
    this.#gens[lane] = gen;
    // Words an earlier holder of the lane left: after the generations wrap, one could match.
    Atomics.store(this.#cancels, lane, 0);
    Atomics.store(this.#limits, lane, 0);
    Atomics.store(this.#skips, lane * SKIP_WORDS, 0);
    Atomics.store(this.#words, lane, laneWord(gen, LANE_HANDED));
    return { lane, gen };
  }

  /**
   * Gives up on the hand-off's items from `from` on: the thread skips those it has not started,
   * and the `ctx.signal` of one it runs reads aborted. Then reads the lane. The thread stamps an
   * item's start and then reads the cancel word; we write the cancel word and then read the
   * stamp: with sequentially consistent atomics one of us sees the other, so the reading says
   * either what the thread will skip or what it has begun.
   */
  cancel(lane: number, gen: number, from = 0): LaneReading {
    Atomics.store(this.#cancels, lane, laneWord(gen, from));
    return this.read(lane, gen);
  }

  /**
   * Gives up on item `item` of the hand-off alone (the pool settled it: a cancel), then reads the
   * lane: the thread skips the item if it has not begun it, and if it runs it, its `ctx.signal`
   * reads aborted. Same ordering as {@link cancel}: the thread stamps an item's start and then
   * reads its skip bit; we write the bit and then read the stamp. The items before and after it
   * run as they would have.
   */
  skip(lane: number, gen: number, item: number): LaneReading {
    const base = lane * SKIP_WORDS;
    if (Atomics.load(this.#skips, base) !== gen) {
      // The first skip of this hand-off: bits an earlier holder of the lane left go first.
      for (let word = 1; word < SKIP_WORDS; word++) Atomics.store(this.#skips, base + word, 0);
      Atomics.store(this.#skips, base, gen);
    }
    Atomics.or(this.#skips, base + 1 + (item >>> 5), 1 << (item & 31));
    return this.read(lane, gen);
  }

  /**
   * Takes a hand-off back if no thread has begun it: one compare-and-swap against the thread's
   * own (see the worker's `claim`), so either the pool gets it back and the thread will skip
   * it, or the thread has it. Unlike {@link cancel}, a thread that won keeps running untouched.
   */
  steal(lane: number, gen: number): boolean {
    const handed = laneWord(gen, LANE_HANDED);
    return (
      Atomics.compareExchange(this.#words, lane, handed, laneWord(gen, LANE_STOLEN)) === handed
    );
  }

  /**
   * Takes back the items of a running batch from `from` on (`from` past the item it runs now):
   * the thread stops before item `from`, for it reads the limit word after stamping each item's
   * start, as it reads the cancel word. Returns the first item the pool holds from now on: past
   * the item the thread has stamped last, and at least `from`. (The thread may have stamped an
   * item at or past `from` and then stopped at the limit: that item stays with the hand-off and
   * comes back in its answer as `E_TRIMMED`, to be queued again.) Same reasoning as
   * {@link cancel}: we write the limit and then read the stamp; the thread writes the stamp and
   * then reads the limit; one of us sees the other.
   *
   * Returns `undefined` if nothing can be taken now: the thread is not running the batch (then
   * the limit is not written), or it answered meanwhile (then it may have stopped at the limit:
   * the items it stopped at come back in its answer as `E_TRIMMED`, to be queued again).
   */
  trim(lane: number, gen: number, from: number): number | undefined {
    if (this.read(lane, gen).state !== 'running') return undefined;
    Atomics.store(this.#limits, lane, laneWord(gen, from));
    const after = this.read(lane, gen);
    if (after.state !== 'running') return undefined;
    return Math.max(from, after.item + 1);
  }

  release(lane: number): void {
    this.#free.push(lane);
  }

  read(lane: number, gen: number): LaneReading {
    const word = Atomics.load(this.#words, lane);
    const code = word & 0xff;
    // Stolen: nothing ran, nothing will (the thread skips it); reads as never started.
    if (word >>> 8 !== gen || code === LANE_HANDED || code === LANE_STOLEN) return HANDED;
    const since = this.#times[lane] as number;
    const threadId = Atomics.load(this.#threads, lane);
    if (code === LANE_LOADING) return { state: 'loading', since, threadId };
    if (code === LANE_DONE) return { state: 'done', threadId };
    return { state: 'running', item: code - 1, since, threadId };
  }
}
