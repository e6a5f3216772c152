/**
 * The data path: results coming home, ready subtasks going out. Called by a run when subtasks
 * of its own become ready, by the coordinator's actions when an expert or the set of runs
 * changes, and by an expert's link when results arrive — not through an event to the
 * coordinator, which would cost a macrostep per batch of results. The machines keep the control
 * flow: a run hears of its failures and of its last subtask ending; an expert hears when it
 * fills up or must restart.
 */

import type { ExpertRecord, WorkOrder, WorkResult } from '../actors/types.js';
import { TroupeError } from '../errors.js';
import type { TaskEnd, TaskView } from '../inspect/inspect.js';
import type { ResolvedTroupe } from '../options.js';
import type { Ledger } from './ledger.js';
import type { Run } from './run.js';
import type { Scheduler } from './scheduler.js';

/** Where the pool's work is shown while a troupe is inspected (the Inspection of inspect.ts). */
export interface TaskInspection {
  taskStarted(task: TaskView, expertRef: ExpertRecord['ref']): void;
  taskEnded(task: TaskView, expertRef: ExpertRecord['ref'], end: TaskEnd): void;
}

/** What the dispatcher needs of the runtime: the experts, the runs and their queues. */
export interface DispatchHost {
  readonly options: Pick<ResolvedTroupe, 'timeoutMs'>;
  readonly scheduler: Scheduler;
  readonly experts: ReadonlyMap<string, ExpertRecord>;
  readonly runs: ReadonlyMap<string, Run>;
  /** Set while the troupe is inspected: each attempt is shown starting and ending. */
  readonly inspection: TaskInspection | undefined;
  expert(name: string): ExpertRecord;
  /** Queues a run's ready subtasks for the scheduler. */
  enqueue(runId: string, ledger: Ledger, indexes: readonly number[]): void;
  /** Ends a run the runtime cannot carry on (its own bug on the run's path). */
  abandon(run: Run, error: TroupeError): void;
  /** The error for subtasks whose every qualified expert is retired. */
  retiredError(needs: string, complexity: number): TroupeError;
}

export class Dispatcher {
  readonly #host: DispatchHost;
  /** Subtasks handed to experts and not yet reported back. */
  #running = 0;

  constructor(host: DispatchHost) {
    this.#host = host;
  }

  get running(): number {
    return this.#running;
  }

  /**
   * Fails runs whose waiting subtasks no expert can take any more (all retired). With no expert
   * retired none can be stranded (a need no expert has is refused at identification), so the
   * walk over every run's queues is skipped.
   */
  checkServable(): void {
    const host = this.#host;
    if (!anyRetired(host)) return;
    for (const runId of host.scheduler.runIds()) {
      const lost = host.scheduler.unservable(runId);
      if (lost.length === 0) continue;
      const run = host.runs.get(runId);
      const { needs, complexity } = lost[0] as { needs: string; complexity: number };
      const error = host.retiredError(needs, complexity);
      host.scheduler.removeRun(runId);
      run?.ref?.send({ type: 'abort', error });
    }
  }

  /**
   * Gives ready subtasks to experts with free slots, each as soon as it is chosen: the first
   * reaches a thread before the rest of a large pass is even prepared.
   */
  dispatch(): void {
    const host = this.#host;
    let touched: Set<ExpertRecord> | undefined;
    for (const a of host.scheduler.dispatch()) {
      const run = host.runs.get(a.item.runId);
      const ledger = run?.ledger;
      if (
        run === undefined ||
        run.finished ||
        ledger === undefined ||
        ledger.isTerminal(a.item.index)
      ) {
        a.expert.active--;
        continue;
      }
      const i = a.item.index;
      const record = host.expert(a.expert.name);
      // An expert takes work only while its link is open (for its machine's whole life):
      // otherwise the work would be lost. That is troupe's bug: the run fails E_INTERNAL, and
      // the rest of the pass goes on.
      if (!record.link.isOpen) {
        a.expert.active--;
        host.abandon(
          run,
          new TroupeError(
            'E_INTERNAL',
            `troupe: expert "${a.expert.name}" has no link to take work`,
          ),
        );
        continue;
      }
      ledger.running(i, a.expert.name, a.level, run.elapsed());
      const id = ledger.graph.ids[i] as string;
      const work: WorkOrder = {
        runId: run.runId,
        index: i,
        id,
        needs: a.item.needs,
        attempt: ledger.attempts[i] as number,
        level: a.level,
        input: (ledger.graph.subtasks[i] as { input?: unknown }).input,
        deps: ledger.depsOf(i),
        timeoutMs:
          (ledger.graph.subtasks[i] as { timeoutMs?: number }).timeoutMs ??
          record.def.timeoutMs ??
          host.options.timeoutMs,
        signal: run.controller.signal,
      };
      this.#running++;
      // (Checked here: no event object is made per subtask for a run nobody listens to.)
      if (run.options.onEvent !== undefined) {
        run.emit({
          type: 'subtask.start',
          runId: run.runId,
          id,
          expert: a.expert.name,
          attempt: work.attempt,
        });
      }
      const inspection = host.inspection;
      if (inspection !== undefined)
        inspection.taskStarted(
          { runId: run.runId, id, attempt: work.attempt, expert: a.expert.name },
          record.ref,
        );
      record.link.take(work);
      touched ??= new Set();
      touched.add(record);
    }
    if (touched === undefined) return;
    for (const record of touched) {
      // Full now: its machine goes busy (it hears nothing else of the data path).
      if (record.slot.active >= record.slot.concurrency && record.state === 'ready')
        record.ref?.send({ type: 'changed' });
    }
  }

  /**
   * Results come home. A success is data, not control flow: it is written to the run's ledger
   * and the dependents it releases are queued, without waking the run's machine. The run hears
   * of failures (its retry policy) and of its last subtask ending.
   */
  route(results: WorkResult[]): void {
    const host = this.#host;
    this.#running -= results.length;
    const wake = new Map<string, WorkResult[]>();
    const inspection = host.inspection;
    for (const result of results) {
      if (inspection !== undefined) showEnd(inspection, host, result);
      const { runId, index } = result.work;
      const run = host.runs.get(runId);
      const ledger = run?.ledger;
      if (run === undefined || run.finished || ledger === undefined || ledger.isTerminal(index))
        continue;
      if (result.ok && ledger.failed === 0) {
        host.enqueue(
          runId,
          ledger,
          run.complete(index, result.output, result.runMs, result.expert, result.thread),
        );
        if (ledger.finished && !wake.has(runId)) wake.set(runId, []);
        continue;
      }
      const list = wake.get(runId);
      if (list === undefined) wake.set(runId, [result]);
      else list.push(result);
    }
    for (const [runId, settled] of wake)
      host.runs.get(runId)?.ref?.send({ type: 'work.settled', results: settled });
  }

  /** An expert's results arrived: route them, then hand out what became ready. */
  settle(results: WorkResult[]): void {
    this.route(results);
    // Subtasks this made ready may need only retired experts.
    this.checkServable();
    this.dispatch();
  }
}

/** Every attempt handed out comes back here once, whatever became of its run. */
function showEnd(inspection: TaskInspection, host: DispatchHost, result: WorkResult): void {
  const { work, expert, runMs, error } = result;
  const task = { runId: work.runId, id: work.id, attempt: work.attempt, expert };
  const ref = host.experts.get(expert)?.ref;
  const thread = result.thread < 0 ? undefined : result.thread;
  if (result.ok) inspection.taskEnded(task, ref, { status: 'done', runMs, thread });
  else
    inspection.taskEnded(task, ref, {
      status: error?.code === 'E_CANCELLED' ? 'cancelled' : 'failed',
      runMs,
      thread,
      error,
    });
}

function anyRetired(host: DispatchHost): boolean {
  for (const record of host.experts.values()) if (record.slot.retired) return true;
  return false;
}
