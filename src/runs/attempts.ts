/**
 * Every attempt of a run's subtasks, in the order they were handed out: when each left for its
 * expert, when it came back, how long it ran on which thread, and how it ended. Plain arrays
 * appended to, one entry per attempt (most subtasks have one), read once to build a trace.
 */
import type { AttemptRecord } from '../types.js';

/** How an attempt ended (`Open`: not yet). */
export const AttemptEnd = { Open: 0, Done: 1, Failed: 2, Cancelled: 3 } as const;
type OutcomeCode = (typeof AttemptEnd)[keyof typeof AttemptEnd];

const STATUS = ['running', 'done', 'failed', 'cancelled'] as const;

export class AttemptLog {
  readonly #subtask: number[] = [];
  readonly #attempt: number[] = [];
  readonly #expert: string[] = [];
  readonly #dispatched: number[] = [];
  readonly #ended: number[] = [];
  readonly #runMs: number[] = [];
  readonly #thread: number[] = [];
  readonly #outcome: OutcomeCode[] = [];
  readonly #code: (string | undefined)[] = [];

  get size(): number {
    return this.#subtask.length;
  }

  /** An attempt left for its expert at `now`: returns its entry. */
  open(subtask: number, attempt: number, expert: string, now: number): number {
    this.#subtask.push(subtask);
    this.#attempt.push(attempt);
    this.#expert.push(expert);
    this.#dispatched.push(now);
    this.#ended.push(Number.NaN);
    this.#runMs.push(0);
    this.#thread.push(-1);
    this.#outcome.push(AttemptEnd.Open);
    this.#code.push(undefined);
    return this.#subtask.length - 1;
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
    if (entry < 0 || this.#outcome[entry] !== AttemptEnd.Open) return;
    this.#outcome[entry] = outcome;
    this.#ended[entry] = now;
    this.#runMs[entry] = runMs;
    this.#thread[entry] = thread;
    this.#code[entry] = code;
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
