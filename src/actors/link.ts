/**
 * An expert's link to its pool: the dispatcher hands it work (`take`), it runs the work on the
 * pool, checks quality, and brings results home in batches (the dispatcher's `settle`), freeing
 * the expert's slots and counting its faults on the way. One per expert, made with its record;
 * it is open while the expert's machine lives (the machine's `link` actor opens and closes it),
 * and its machine hears from it only when its state may change.
 */
import { messageOf, TroupeError, wrapThrown } from '../errors.js';
import type { Executor } from '../executors/executor.js';
import type { Run } from '../runs/run.js';
import { rejection } from './experts.js';
import type { ExpertRecord, Link, WorkOrder, WorkResult } from './types.js';

/** What a link needs of the runtime: supervision's bookkeeping, the runs, and the data path. */
export interface LinkHost {
  readonly runs: ReadonlyMap<string, Run>;
  /** The attempt's asks are given up (it ended). */
  ended(work: WorkOrder, error: TroupeError | undefined): void;
  /** Blame for a failed attempt: returns the error it ends with (see judgeFault). */
  attemptFailed(record: ExpertRecord, work: WorkOrder, error: TroupeError): TroupeError;
  attemptDone(record: ExpertRecord, work: WorkOrder): void;
  refreshAhead(record: ExpertRecord): void;
  /** Results come home: routed, and what became ready handed out. */
  settle(results: WorkResult[]): void;
  abandon(run: Run, error: TroupeError): void;
}

export class ExpertLink implements Link {
  readonly #host: LinkHost;
  readonly #record: ExpertRecord;
  readonly #pool: Executor;
  readonly #name: string;
  /** Tells the expert's machine to look at its state again; set while the link is open. */
  #changed: (() => void) | undefined;
  #buffer: WorkResult[] = [];
  readonly #flush = (): void => this.#flushResults();
  /** One callback for every subtask of this expert: no promise and no closure per subtask. */
  readonly #done = (
    error: TroupeError | undefined,
    output: unknown,
    runMs: number,
    origin: unknown,
    thread: number,
  ): void => this.#answer(error, output, runMs, origin as WorkOrder, thread);

  constructor(host: LinkHost, record: ExpertRecord, pool: Executor) {
    this.#host = host;
    this.#record = record;
    this.#pool = pool;
    this.#name = record.def.name;
  }

  get isOpen(): boolean {
    return this.#changed !== undefined;
  }

  /** The expert's machine started: the link takes work until the returned function closes it. */
  open(changed: () => void): () => void {
    this.#changed = changed;
    return () => {
      if (this.#changed === changed) this.#changed = undefined;
    };
  }

  /** One attempt to run on the pool; whatever goes wrong handing it over is its failure. */
  take(work: WorkOrder): void {
    try {
      const task = { id: work.id, needs: work.needs, attempt: work.attempt, runId: work.runId };
      const context = work.deps === undefined ? { task } : { task, deps: work.deps };
      this.#pool.runThen(
        this.#name,
        work.input,
        { signal: work.signal, timeoutMs: work.timeoutMs, context, origin: work },
        this.#done,
      );
    } catch (error) {
      this.#failed(work, wrapThrown(error, 'E_INTERNAL', this.#name), 0, -1);
    }
  }

  #answer(
    error: TroupeError | undefined,
    output: unknown,
    runMs: number,
    work: WorkOrder,
    thread: number,
  ): void {
    const name = this.#name;
    try {
      if (error !== undefined) {
        this.#failed(work, wrapThrown(error, 'E_INTERNAL', name), runMs, thread);
        return;
      }
      // Quality is checked here, on the main thread, before anyone sees the output.
      const reason = rejection(this.#record.def, output, work.input);
      if (reason === undefined)
        this.#settle({ work, expert: name, ok: true, output, error: undefined, runMs, thread });
      else {
        const quality = new TroupeError('E_QUALITY', `${name}: ${reason}`, {
          details: { expert: name },
        });
        this.#failed(work, quality, runMs, thread);
      }
    } catch (thrown) {
      // Nothing may escape to the pool (it would count the result as lost): the attempt fails.
      this.#failed(
        work,
        wrapThrown(thrown, 'E_INTERNAL', `${name}: its result could not be taken`),
        runMs,
        thread,
      );
    }
  }

  #failed(work: WorkOrder, error: TroupeError, runMs: number, thread: number): void {
    this.#settle({ work, expert: this.#name, ok: false, output: undefined, error, runMs, thread });
  }

  #settle(result: WorkResult): void {
    // Results that arrive in the same turn (a batch from one thread) travel as one batch.
    if (this.#buffer.push(result) === 1) queueMicrotask(this.#flush);
  }

  #flushResults(): void {
    const host = this.#host;
    const record = this.#record;
    const results = this.#buffer;
    this.#buffer = [];
    const wasFull = record.slot.active >= record.slot.concurrency;
    record.slot.active -= results.length;
    host.refreshAhead(record);
    for (const result of results) {
      host.ended(result.work, result.error);
      if (result.error !== undefined)
        result.error = host.attemptFailed(record, result.work, result.error);
      else host.attemptDone(record, result.work);
    }
    try {
      host.settle(results);
    } catch (error) {
      // A bug on the data path: the runs concerned fail (E_INTERNAL), the troupe goes on.
      const message = messageOf(error);
      for (const runId of new Set(results.map((r) => r.work.runId))) {
        const run = host.runs.get(runId);
        if (run === undefined) continue;
        const why = `troupe: results could not be routed: ${message}`;
        host.abandon(run, new TroupeError('E_INTERNAL', why, { cause: error }));
      }
    }
    // Its machine hears only of a change: a restart due, or room where it was full (a full
    // expert that the same pass filled again stays busy, and needs no step of its machine).
    if (record.restartDue || (wasFull && record.slot.active < record.slot.concurrency))
      this.#changed?.();
  }
}
