/**
 * Every attempt of a run's subtasks, in the order they were handed out: when each left for its
 * expert, when it came back, how long it ran on which thread, and how it ended. Columns appended
 * to, one entry per attempt (most subtasks have one), read once to build a trace.
 */
import type { AttemptRecord } from '../types.js';

/** How an attempt ended (`Open`: not yet). */
export const AttemptEnd = { Open: 0, Done: 1, Failed: 2, Cancelled: 3 } as const;
type OutcomeCode = (typeof AttemptEnd)[keyof typeof AttemptEnd];

const STATUS = ['running', 'done', 'failed', 'cancelled'] as const;

export class AttemptLog {
  // Columns of typed arrays sized for one attempt per subtask up front, doubled when retries
  // need more: an attempt costs the main thread no allocation, where appending to nine plain
  // arrays left their outgrown copies to the garbage collector (docs/BENCHMARKS.md, "audit").
  #size = 0;
  #subtask: Int32Array;
  #attempt: Int32Array;
  #expert: (string | undefined)[];
  #dispatched: Float64Array;
  #ended: Float64Array;
  #runMs: Float64Array;
  #thread: Int32Array;
  #outcome: Uint8Array;
  #code: (string | undefined)[];

  /** @param capacity Attempts to make room for at once (a run's subtasks). */
  constructor(capacity = 16) {
    const n = Math.max(1, capacity);
    this.#subtask = new Int32Array(n);
    this.#attempt = new Int32Array(n);
    this.#expert = new Array(n);
    this.#dispatched = new Float64Array(n);
    this.#ended = new Float64Array(n);
    this.#runMs = new Float64Array(n);
    this.#thread = new Int32Array(n);
    this.#outcome = new Uint8Array(n);
    this.#code = new Array(n);
  }

  get size(): number {
    return this.#size;
  }

  /** An attempt left for its expert at `now`: returns its entry. */
  open(subtask: number, attempt: number, expert: string, now: number): number {
    const k = this.#size;
    if (k === this.#subtask.length) this.#grow();
    this.#subtask[k] = subtask;
    this.#attempt[k] = attempt;
    this.#expert[k] = expert;
    this.#dispatched[k] = now;
    this.#ended[k] = Number.NaN;
    this.#runMs[k] = 0;
    this.#thread[k] = -1;
    this.#outcome[k] = AttemptEnd.Open;
    this.#code[k] = undefined;
    this.#size = k + 1;
    return k;
  }

  /** The attempt came back (or its run gave up on it) at `now`. */
  close(
    entry: number,
    outcome: OutcomeCode,
    now: number,
    runMs: number,
    thread: number,
    code: string | undefined,
  ): void {
    if (entry < 0 || entry >= this.#size || this.#outcome[entry] !== AttemptEnd.Open) return;
    this.#outcome[entry] = outcome;
    this.#ended[entry] = now;
    this.#runMs[entry] = runMs;
    // An Int32 column would read an executor's missing thread id as 0, and wrap a huge one.
    this.#thread[entry] =
      Number.isInteger(thread) && thread >= 0 && thread <= 0x7fffffff ? thread : -1;
    this.#code[entry] = code;
  }

  #grow(): void {
    const n = this.#subtask.length * 2;
    const wider = <T extends Int32Array | Float64Array | Uint8Array>(
      old: T,
      make: (n: number) => T,
    ): T => {
      const next = make(n);
      next.set(old);
      return next;
    };
    this.#subtask = wider(this.#subtask, (m) => new Int32Array(m));
    this.#attempt = wider(this.#attempt, (m) => new Int32Array(m));
    this.#dispatched = wider(this.#dispatched, (m) => new Float64Array(m));
    this.#ended = wider(this.#ended, (m) => new Float64Array(m));
    this.#runMs = wider(this.#runMs, (m) => new Float64Array(m));
    this.#thread = wider(this.#thread, (m) => new Int32Array(m));
    this.#outcome = wider(this.#outcome, (m) => new Uint8Array(m));
    this.#expert.length = n;
    this.#code.length = n;
  }

  records(ids: readonly string[]): AttemptRecord[] {
    const out: AttemptRecord[] = new Array(this.size);
    for (let k = 0; k < this.size; k++) {
      const ended = this.#ended[k] as number;
      out[k] = {
        subtask: ids[this.#subtask[k] as number] as string,
        attempt: this.#attempt[k] as number,
        expert: this.#expert[k] as string,
        status: STATUS[this.#outcome[k] as OutcomeCode],
        dispatchedAtMs: this.#dispatched[k] as number,
        endedAtMs: Number.isNaN(ended) ? undefined : ended,
        runMs: this.#runMs[k] as number,
        thread: this.#thread[k] === -1 ? undefined : (this.#thread[k] as number),
        code: this.#code[k],
      };
    }
    return out;
  }
}
