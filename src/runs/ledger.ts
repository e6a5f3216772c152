/**
 * The run ledger: everything that grows with a run, in plain mutable arrays indexed by subtask,
 * with O(1) operations per event (copying collections in `assign` would be quadratic).
 * The run machine holds control flow; this holds data. Every subtask ends here exactly once.
 */

import type { Suspicion } from '../actors/supervision.js';
import type { TroupeError } from '../errors.js';
import { setOwn } from '../fields.js';
import type { Contribution, SubtaskRecord, SubtaskStatus } from '../types.js';
import { AttemptEnd, AttemptLog } from './attempts.js';
import type { Graph } from './graph.js';

/** A subtask's state; terminal from `Done` on. */
export const State = {
  Waiting: 0,
  Ready: 1,
  Running: 2,
  Retrying: 3,
  Done: 4,
  Failed: 5,
  Cancelled: 6,
} as const;
export type State = (typeof State)[keyof typeof State];

const TERMINAL_FROM = State.Done;

/** What a subtask with no dependents releases. */
const NO_DEPENDENTS: readonly number[] = Object.freeze([]);

export class Ledger {
  readonly graph: Graph;
  readonly size: number;
  readonly state: Uint8Array;
  readonly #remaining: Int32Array;
  readonly attempts: Uint16Array;
  readonly expert: (string | undefined)[];
  readonly level: Uint8Array;
  readonly outputs: unknown[];
  readonly errors: (TroupeError[] | undefined)[];
  readonly queuedMs: Float64Array;
  readonly runMs: Float64Array;
  readonly lastRunMs: Float64Array;
  readonly #readyAt: Float64Array;
  readonly startedAt: Float64Array;
  readonly endedAt: Float64Array;
  /** An expert to avoid on the next attempt (the one that just failed it), if another qualifies. */
  readonly avoid: (string | undefined)[];
  /** Progress reported by each subtask (0–1, the highest so far), while it is not terminal. */
  readonly progress: Float64Array;
  /** Messages each subtask sent (`ctx.send`, `ctx.ask`). */
  readonly messages: Uint32Array;
  /** Σ progress of the subtasks not yet terminal. */
  progressSum = 0;
  /** Subtasks whose last attempt faulted and was not yet charged to its expert (see judgeFault). */
  readonly suspicions = new Map<number, Suspicion>();
  /** Every attempt handed out, for traces; `#current` is each subtask's open one (-1 none). */
  readonly log: AttemptLog;
  readonly #current: Int32Array;
  /** Pending retry timers, by index (the run clears them with its clock). */
  readonly timers = new Map<number, unknown>();
  done = 0;
  failed = 0;
  cancelled = 0;
  retries = 0;

  constructor(graph: Graph) {
    const n = graph.ids.length;
    this.graph = graph;
    this.size = n;
    this.state = new Uint8Array(n);
    this.#remaining = new Int32Array(n);
    this.attempts = new Uint16Array(n);
    this.expert = new Array(n);
    this.level = new Uint8Array(n);
    this.outputs = new Array(n);
    this.errors = new Array(n);
    this.queuedMs = new Float64Array(n);
    this.runMs = new Float64Array(n);
    this.lastRunMs = new Float64Array(n);
    this.#readyAt = new Float64Array(n);
    this.startedAt = new Float64Array(n).fill(Number.NaN);
    this.endedAt = new Float64Array(n);
    this.avoid = new Array(n);
    this.progress = new Float64Array(n);
    this.messages = new Uint32Array(n);
    this.#current = new Int32Array(n).fill(-1);
    this.log = new AttemptLog(n);
    for (let i = 0; i < n; i++) this.#remaining[i] = (graph.deps[i] as number[]).length;
  }

  get terminal(): number {
    return this.done + this.failed + this.cancelled;
  }

  get finished(): boolean {
    return this.terminal === this.size;
  }

  isTerminal(i: number): boolean {
    return (this.state[i] as number) >= TERMINAL_FROM;
  }

  /**
   * A running subtask reports progress: kept only if it is higher than what it reported before
   * (progress is monotonic per subtask, across attempts). Returns whether it was kept.
   */
  reportProgress(i: number, fraction: number): boolean {
    if (this.state[i] !== State.Running || fraction <= (this.progress[i] as number)) return false;
    this.progressSum += fraction - (this.progress[i] as number);
    this.progress[i] = fraction;
    return true;
  }

  /** Ended subtasks count whole; the others count their reported fraction. */
  get overallProgress(): number {
    return this.size === 0 ? 1 : (this.terminal + this.progressSum) / this.size;
  }

  /** The subtasks with no dependencies: ready now. */
  start(now: number): number[] {
    const ready: number[] = [];
    for (let i = 0; i < this.size; i++) {
      if (this.#remaining[i] === 0) {
        this.state[i] = State.Ready;
        this.#readyAt[i] = now;
        ready.push(i);
      }
    }
    return ready;
  }

  /** Handed to an expert. */
  running(i: number, expert: string, level: number, now: number): void {
    this.state[i] = State.Running;
    this.attempts[i] = (this.attempts[i] as number) + 1;
    this.expert[i] = expert;
    this.level[i] = level;
    this.queuedMs[i] = (this.queuedMs[i] as number) + (now - (this.#readyAt[i] as number));
    if (Number.isNaN(this.startedAt[i] as number)) this.startedAt[i] = now;
    this.#current[i] = this.log.open(i, this.attempts[i] as number, expert, now);
  }

  /** The subtask's open attempt ends in the log. */
  #closeAttempt(
    i: number,
    outcome: (typeof AttemptEnd)[keyof typeof AttemptEnd],
    now: number,
    runMs: number,
    thread: number,
    code: string | undefined,
  ): void {
    const entry = this.#current[i] as number;
    if (entry < 0) return;
    this.log.close(entry, outcome, now, runMs, thread, code);
    this.#current[i] = -1;
  }

  /** Done: records the output and returns the dependents that became ready (never written to). */
  complete(i: number, output: unknown, runMs: number, now: number, thread = -1): readonly number[] {
    this.#closeAttempt(i, AttemptEnd.Done, now, runMs, thread, undefined);
    this.state[i] = State.Done;
    this.outputs[i] = output;
    this.#ran(i, runMs);
    this.#end(i, now);
    this.done++;
    const dependents = this.graph.dependents[i] as number[];
    // Most subtasks release nothing: no list is made for them.
    if (dependents.length === 0) return NO_DEPENDENTS;
    const ready: number[] = [];
    for (const j of dependents) {
      this.#remaining[j] = (this.#remaining[j] as number) - 1;
      if (this.#remaining[j] === 0 && this.state[j] === State.Waiting) {
        this.state[j] = State.Ready;
        this.#readyAt[j] = now;
        ready.push(j);
      }
    }
    return ready;
  }

  /** One attempt failed; the caller decides between retry and failure. */
  attemptFailed(i: number, error: TroupeError, runMs: number, now: number, thread = -1): void {
    this.#closeAttempt(
      i,
      error.code === 'E_CANCELLED' ? AttemptEnd.Cancelled : AttemptEnd.Failed,
      now,
      runMs,
      thread,
      error.code,
    );
    this.#ran(i, runMs);
    let list = this.errors[i];
    if (list === undefined) {
      list = [];
      this.errors[i] = list;
    }
    list.push(error);
  }

  /** Waiting out a backoff before its next attempt. */
  retrying(i: number, avoid: string | undefined): void {
    this.state[i] = State.Retrying;
    this.avoid[i] = avoid;
    this.retries++;
  }

  /** Backoff over: ready again. */
  ready(i: number, now: number): void {
    this.state[i] = State.Ready;
    this.#readyAt[i] = now;
  }

  fail(i: number, error: TroupeError, now: number): void {
    this.state[i] = State.Failed;
    this.#end(i, now);
    this.failed++;
    if (this.errors[i]?.at(-1) !== error) this.attemptFailed(i, error, 0, now);
  }

  /**
   * Cancels every subtask not yet ended; returns the ones that had started (running, or
   * waiting for a retry): their `subtask.start` events want a `subtask.end`.
   */
  cancelRest(error: TroupeError, now: number): number[] {
    const started: number[] = [];
    for (let i = 0; i < this.size; i++) {
      const state = this.state[i] as State;
      if (state >= TERMINAL_FROM) continue;
      if (state === State.Running || !Number.isNaN(this.startedAt[i] as number)) started.push(i);
      this.#closeAttempt(i, AttemptEnd.Cancelled, now, 0, -1, error.code);
      this.state[i] = State.Cancelled;
      this.#end(i, now);
      this.cancelled++;
      let list = this.errors[i];
      if (list === undefined) {
        list = [];
        this.errors[i] = list;
      }
      list.push(error);
    }
    return started;
  }

  /** Deps' outputs, keyed by subtask id: what `ctx.deps` holds. */
  depsOf(i: number): Record<string, unknown> | undefined {
    const deps = this.graph.deps[i] as number[];
    if (deps.length === 0) return undefined;
    const out: Record<string, unknown> = {};
    for (const j of deps) setOwn(out, this.graph.ids[j] as string, this.outputs[j]);
    return out;
  }

  records(): SubtaskRecord[] {
    const records: SubtaskRecord[] = new Array(this.size);
    for (let i = 0; i < this.size; i++) {
      const state = this.state[i] as State;
      const status: SubtaskStatus =
        state === State.Done ? 'done' : state === State.Failed ? 'failed' : 'cancelled';
      const errors = this.errors[i] ?? [];
      const started = this.startedAt[i] as number;
      records[i] = {
        id: this.graph.ids[i] as string,
        needs: (this.graph.subtasks[i] as { needs: string }).needs,
        complexity: this.graph.complexity[i] as number,
        status,
        expert: this.expert[i],
        attempts: this.attempts[i] as number,
        errors,
        error: status === 'done' ? undefined : errors.at(-1),
        queuedMs: this.queuedMs[i] as number,
        runMs: this.runMs[i] as number,
        messages: this.messages[i] as number,
        startedAtMs: Number.isNaN(started) ? undefined : started,
        endedAtMs: this.endedAt[i] as number,
      };
    }
    return records;
  }

  contributions(): Contribution[] {
    // Sized once: one contribution per subtask done.
    const out: Contribution[] = new Array(this.done);
    let k = 0;
    for (let i = 0; i < this.size; i++) {
      if (this.state[i] !== State.Done) continue;
      out[k++] = {
        subtask: this.graph.ids[i] as string,
        needs: (this.graph.subtasks[i] as { needs: string }).needs,
        expert: this.expert[i] as string,
        level: this.level[i] as number,
        attempt: this.attempts[i] as number,
        queuedMs: this.queuedMs[i] as number,
        runMs: this.lastRunMs[i] as number,
        output: this.outputs[i],
      };
    }
    out.length = k;
    return out;
  }

  /** Longest chain of dependent subtasks by run time (topological order, O(V + E)). */
  criticalPathMs(): number {
    const n = this.size;
    const indegree = new Int32Array(n);
    for (let i = 0; i < n; i++) indegree[i] = (this.graph.deps[i] as number[]).length;
    const finish = new Float64Array(n);
    const queue: number[] = [];
    for (let i = 0; i < n; i++) if (indegree[i] === 0) queue.push(i);
    let longest = 0;
    for (let head = 0; head < queue.length; head++) {
      const i = queue[head] as number;
      let start = 0;
      for (const d of this.graph.deps[i] as number[]) start = Math.max(start, finish[d] as number);
      finish[i] = start + (this.runMs[i] as number);
      longest = Math.max(longest, finish[i] as number);
      for (const j of this.graph.dependents[i] as number[]) {
        indegree[j] = (indegree[j] as number) - 1;
        if (indegree[j] === 0) queue.push(j);
      }
    }
    return longest;
  }

  #ran(i: number, runMs: number): void {
    this.runMs[i] = (this.runMs[i] as number) + runMs;
    this.lastRunMs[i] = runMs;
  }

  #end(i: number, now: number): void {
    this.endedAt[i] = now;
    this.#clearProgress(i);
  }

  #clearProgress(i: number): void {
    this.progressSum -= this.progress[i] as number;
    this.progress[i] = 0;
  }
}
