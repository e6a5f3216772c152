/**
 * The runtime of one troupe: it makes the parts once (the pools, each expert's record and link,
 * the scheduler, the router and the threads' calls, the dispatcher), keeps the table of runs
 * under way (each a Run, made at admission) and supervision's bookkeeping of attempts (faults
 * charged, held or suspected). The machines hold control flow; each part sees this through a
 * small interface of its own (RunHost, DispatchHost, LinkHost, RouterHost).
 */
import type { ResolvedExpert } from './actors/experts.js';
import { ExpertLink, type LinkHost } from './actors/link.js';
import {
  EXPERT_FAULTS,
  type Fault,
  FaultHistory,
  judgeFault,
  RETRYABLE,
} from './actors/supervision.js';
import type { ExpertRecord, WorkOrder, WorkResult } from './actors/types.js';
import { TroupeError } from './errors.js';
import type { Executor } from './executors/executor.js';
import { ThreadCalls } from './messaging/context.js';
import { Router } from './messaging/router.js';
import type { ResolvedTroupe } from './options.js';
import type { ContextHost } from './pool/options.js';
import { Dispatcher, type DispatchHost, type TaskInspection } from './runs/dispatch.js';
import type { Ledger } from './runs/ledger.js';
import type { Run, RunHost } from './runs/run.js';
import { lookaheadOf, Scheduler, Slot } from './runs/scheduler.js';
import type { Clock, ExpertInfo, MessageFailure, Outcome, RunEvent } from './types.js';

/**
 * The refusal when the bound on outstanding subtasks (`maxQueuedSubtasks`) is reached: before a
 * run is analysed (`asked` undefined), or once its subtasks are known and would pass it.
 */
export function queueFull(bound: number, waiting: number, asked: number | undefined): TroupeError {
  const what =
    asked === undefined
      ? `${waiting} subtasks are admitted and not yet ended, the troupe's limit (maxQueuedSubtasks ${bound})`
      : asked > bound
        ? `the run has ${asked} subtasks, more than the troupe's limit itself (maxQueuedSubtasks ${bound})`
        : `the run's ${asked} subtasks would bring the subtasks admitted and not yet ended from ${waiting} to ${waiting + asked}, past the troupe's limit (maxQueuedSubtasks ${bound})`;
  return new TroupeError('E_QUEUE_FULL', what, {
    details: {
      maxQueuedSubtasks: bound,
      waiting,
      ...(asked === undefined ? {} : { asked }),
    },
  });
}

/** What a troupe's runtime is made of. */
export interface CoreSetup {
  options: ResolvedTroupe;
  experts: ResolvedExpert[];
  clock: Clock;
  random: () => number;
  onMessageFailed: ((failure: MessageFailure) => void) | undefined;
  /** Set while the troupe is inspected: the pool's work is shown too. */
  inspection: TaskInspection | undefined;
  /** Starts the troupe's pools, each handing its threads' `ctx` calls to `host`. */
  startPools: (host: ContextHost) => {
    pool: Executor | undefined;
    ownPools: ReadonlyMap<string, Executor>;
  };
}

export class Core implements RunHost, DispatchHost, LinkHost {
  readonly options: ResolvedTroupe;
  /**
   * The shared pool: every expert's work runs there unless the expert has threads of its own;
   * none when every expert has (no threads are started for nobody).
   */
  readonly pool: Executor | undefined;
  /** Pools of the experts with `resourceLimits` of their own, by expert name. */
  readonly ownPools: ReadonlyMap<string, Executor>;
  readonly clock: Clock;
  readonly random: () => number;
  readonly experts = new Map<string, ExpertRecord>();
  readonly scheduler: Scheduler;
  readonly router: Router;
  /** The data path: results home, ready subtasks out. */
  readonly dispatcher: Dispatcher;
  readonly runs = new Map<string, Run>();
  readonly counts = { done: 0, failed: 0, cancelled: 0 };
  /** Expert restarts so far (all experts). */
  restarts = 0;
  /** Waiting for every expert's first probe (`troupe.probed()`). */
  readonly probedWaiters: (() => void)[] = [];
  /** The troupe's `onMessageFailed` observer. */
  readonly onMessageFailed: ((failure: MessageFailure) => void) | undefined;
  /** Where the threads' `ctx` calls go. */
  readonly #calls: ThreadCalls;
  readonly inspection: TaskInspection | undefined;

  /** The executor an expert's work, probe and heavy messages run on (a pool, or Redis). */
  executorOf(expert: string): Executor {
    const pool = this.ownPools.get(expert) ?? this.pool;
    // Every expert without a pool of its own is on the shared one, which exists then.
    if (pool === undefined) throw new TroupeError('E_INTERNAL', `troupe: no pool for "${expert}"`);
    return pool;
  }

  /** Every pool of the troupe: the shared one first. */
  pools(): Executor[] {
    const own = [...this.ownPools.values()];
    return this.pool === undefined ? own : [this.pool, ...own];
  }

  /** Threads of every pool (what a run's efficiency is measured against). */
  get allThreads(): number {
    let threads = 0;
    for (const pool of this.pools()) threads += pool.threads;
    return threads;
  }

  constructor(setup: CoreSetup) {
    const { options, experts } = setup;
    this.options = options;
    this.clock = setup.clock;
    this.random = setup.random;
    this.onMessageFailed = setup.onMessageFailed;
    this.inspection = setup.inspection;
    // The threads' ctx calls arrive once the troupe is made (a thread calls from a task).
    const { pool, ownPools } = setup.startPools({
      call: (origin, module, op, args, thread) =>
        this.#calls.call(origin, module, op, args, thread),
    });
    this.pool = pool;
    this.ownPools = ownPools;
    // A heavy receiver's messages cannot wait in a busy thread's port: with lookahead there,
    // a thread that frees up would take the next subtask before a waiting message, and asks
    // between experts could hold every thread (E_ASK_DEADLOCK where none was).
    const heavy = experts.some((def) => def.messages === 'heavy');
    for (const def of experts) {
      const threads = this.executorOf(def.name).threads;
      const lookahead = heavy || !def.lookahead ? 0 : lookaheadOf(def.concurrency, threads);
      const slot = new Slot(def.name, def.skills, def.concurrency, lookahead);
      let link: ExpertLink | undefined;
      const record: ExpertRecord = {
        def,
        slot,
        health: new FaultHistory(),
        // One copy of the state: the slot's, which the scheduler reads.
        get state() {
          return slot.state;
        },
        set state(state) {
          slot.state = state;
        },
        reason: undefined,
        restarts: 0,
        probeFailures: 0,
        successes: 0,
        held: [],
        restartDue: false,
        probe: undefined,
        ref: undefined,
        // Made just below: the link needs its record.
        get link() {
          return link as ExpertLink;
        },
      };
      link = new ExpertLink(this, record, this.executorOf(def.name));
      this.experts.set(def.name, record);
    }
    // Runs count from admission (troupe.run): one still analysing or identifying is under way.
    this.scheduler = new Scheduler(
      [...this.experts.values()].map((e) => e.slot),
      () => this.runs.size,
    );
    this.router = new Router(this);
    this.#calls = new ThreadCalls(this.router, this.runs);
    this.dispatcher = new Dispatcher(this);
  }

  /** An attempt ended: its thread is no longer held by its asks (see Router.ended). */
  ended(work: WorkOrder, error: TroupeError | undefined): void {
    this.router.ended(work, error);
  }

  /** Results came home (an expert's link): the dispatcher routes them. */
  settle(results: WorkResult[]): void {
    this.dispatcher.settle(results);
  }

  /**
   * Counts a fault of the expert itself (crash, OOM, timeout, load, probe) against its intensity
   * window; past it, a working expert restarts at its next step (its machine is told).
   */
  recordFault(record: ExpertRecord, error: TroupeError): void {
    if (!EXPERT_FAULTS.has(error.code)) return;
    this.#charge(record, { atMs: this.clock.now(), code: error.code, message: error.message });
  }

  #charge(record: ExpertRecord, fault: Fault): void {
    const past = record.health.record(fault, this.options.supervision);
    // Only a working expert restarts; one backing off, probing or retired stays so.
    if (past && (record.state === 'ready' || record.state === 'busy')) record.restartDue = true;
  }

  /**
   * A subtask's attempt failed on `record`: its fault is charged to the expert, held as a
   * suspicion on the subtask, or found to be the input's (see judgeFault). Returns the error the
   * attempt ends with: for an isolated input, the same failure saying so (`details.isolated`),
   * which the run does not retry.
   */
  attemptFailed(record: ExpertRecord, work: WorkOrder, error: TroupeError): TroupeError {
    if (!EXPERT_FAULTS.has(error.code)) return error;
    const entry = this.runs.get(work.runId);
    const ledger = entry?.ledger;
    const fault: Fault = { atMs: this.clock.now(), code: error.code, message: error.message };
    if (entry === undefined || ledger === undefined) {
      this.#charge(record, fault);
      return error;
    }
    const suspicion = ledger.suspicions.get(work.index);
    const suspect = suspicion === undefined ? undefined : this.experts.get(suspicion.expert);
    const verdict = judgeFault({
      code: error.code,
      suspicion,
      successesOfSuspect: suspect?.successes ?? 0,
      retried: this.willRetry(work, record, error),
    });
    if (verdict === 'suspect') {
      ledger.suspicions.set(work.index, {
        expert: record.def.name,
        fault,
        successes: record.successes,
      });
      return error;
    }
    ledger.suspicions.delete(work.index);
    if (verdict === 'charge') {
      this.#charge(record, fault);
      return error;
    }
    if (verdict === 'hold' && suspicion !== undefined) {
      this.#hold(suspect ?? record, suspicion.fault);
      this.#hold(record, fault);
    }
    return new TroupeError(
      error.code,
      `${error.message} — isolated: subtask "${work.id}" faulted its thread on two attempts, so its input is taken for the cause; not retried`,
      {
        cause: error.cause ?? error,
        details: { ...error.details, isolated: true, subtask: work.id },
      },
    );
  }

  /**
   * Whether a failed attempt is tried again: its error is one worth retrying, the subtask has
   * attempts left (its own bound, else its expert's, else the troupe's), and its run goes on.
   * (An input isolated as the cause of its faults is not retried either: see the run machine.)
   */
  willRetry(work: WorkOrder, record: ExpertRecord, error: TroupeError): boolean {
    const run = this.runs.get(work.runId);
    const attempts =
      run?.ledger?.graph.subtasks[work.index]?.attempts ??
      record.def.attempts ??
      this.options.attempts;
    return (
      RETRYABLE.has(error.code) &&
      work.attempt < attempts &&
      run !== undefined &&
      !run.controller.signal.aborted
    );
  }

  /**
   * A fault that may be its input's, held on the expert until it shows it works (a success drops
   * what is held) or more than its intensity are held with no success between (all charged).
   */
  #hold(record: ExpertRecord, fault: Fault): void {
    record.held.push(fault);
    if (record.held.length <= this.options.supervision.intensity) return;
    // Charged now, as faults of now: they became the expert's now. (At their own times, held
    // over a quiet spell, they would fall out of the window together and a broken expert that
    // is asked rarely would never restart.)
    const atMs = this.clock.now();
    for (const each of record.held.splice(0)) this.#charge(record, { ...each, atMs });
  }

  /** A subtask's attempt succeeded on `record`: a fault it was suspected of is charged now. */
  attemptDone(record: ExpertRecord, work: WorkOrder): void {
    record.successes++;
    // It works: faults held on it were its inputs'.
    if (record.held.length > 0) record.held.length = 0;
    const ledger = this.runs.get(work.runId)?.ledger;
    const suspicion = ledger?.suspicions.get(work.index);
    if (suspicion === undefined) return;
    ledger?.suspicions.delete(work.index);
    const suspect = this.experts.get(suspicion.expert);
    if (suspect !== undefined) this.#charge(suspect, suspicion.fault);
  }

  /**
   * Results of the expert came in, and with them the pool's measure of their run time: its deep
   * lookahead becomes a batch per thread (the batch the pool now makes of its subtasks), so that
   * the pool can send each thread a whole one: short subtasks then travel many to a message, as
   * on the pool alone (the runtime suite's batched rows, docs/BENCHMARKS.md).
   */
  refreshAhead(record: ExpertRecord): void {
    const { slot } = record;
    if (slot.lookahead > 0)
      slot.ahead = slot.lookahead * this.executorOf(record.def.name).aheadOf(record.def.name);
  }

  expert(name: string): ExpertRecord {
    const record = this.experts.get(name);
    if (record === undefined) throw new Error(`troupe: no expert "${name}"`);
    return record;
  }

  /** Sends a run event to the caller's `onEvent`, if the run is still there (see Run.emit). */
  emit(runId: string, event: RunEvent): void {
    this.runs.get(runId)?.emit(event);
  }

  /** Emits to every active run (expert restarts concern them all). */
  broadcast(make: (runId: string) => RunEvent): void {
    for (const run of this.runs.values()) run.emit(make(run.runId));
  }

  /** Queues a run's ready subtasks for the scheduler. */
  enqueue(runId: string, ledger: Ledger, indexes: readonly number[]): void {
    // An indexed loop: for-of would make an iterator per call, and most calls are for a
    // subtask that released nothing.
    for (let k = 0; k < indexes.length; k++) {
      const i = indexes[k] as number;
      const subtask = ledger.graph.subtasks[i] as { needs: string };
      this.scheduler.enqueue(
        runId,
        i,
        subtask.needs,
        ledger.graph.complexity[i] as number,
        ledger.avoid[i],
      );
    }
  }

  /**
   * Ends a run whose actor cannot (it threw, the coordinator died, or the runtime found its own
   * bug on the run's path): every subtask gets its record, its work is aborted, and its caller
   * gets a failed outcome. A run actor still alive is told to stop (it then ends as failed,
   * finding its run ended), so that it does not linger.
   */
  abandon(run: Run, error: TroupeError): void {
    if (run.end({ status: 'failed', error, stage: 'coordinating' }) === undefined) return;
    const ref = run.ref;
    if (ref !== undefined && ref.getSnapshot().status === 'active')
      ref.send({ type: 'abort', error });
  }

  /** A run ended (Run.end): it stops counting, and its queues go. */
  released(run: Run, outcome: Outcome): void {
    this.scheduler.removeRun(run.runId);
    this.runs.delete(run.runId);
    this.counts[outcome.status]++;
  }

  /**
   * Subtasks admitted and not yet ended, across runs: waiting for their dependencies, for an
   * expert or for a retry, or running. `maxQueuedSubtasks` bounds it, so that no more than that
   * ever wait, whatever the runs do next (a failed attempt goes back to waiting). O(runs).
   */
  outstanding(): number {
    let count = 0;
    for (const run of this.runs.values()) {
      const ledger = run.ledger;
      if (ledger !== undefined && !run.finished) count += ledger.size - ledger.terminal;
    }
    return count;
  }

  /**
   * The error for subtasks needing `needs` at `complexity` when every expert that qualifies is
   * retired: one message however the run finds out (at identification, or later), with why each
   * retired (its last probe failure).
   */
  retiredError(needs: string, complexity: number): TroupeError {
    const reasons = this.scheduler
      .qualified(needs, complexity)
      .map((e) => `${e.name}: ${this.expert(e.name).reason ?? 'retired'}`)
      .join('; ');
    return new TroupeError(
      'E_EXPERT_RETIRED',
      `every expert with "${needs}" at level ${complexity} is retired (${reasons})`,
      { details: { needs, complexity } },
    );
  }

  /** Every expert has been probed at least once (its probe passed or failed). */
  get probed(): boolean {
    for (const record of this.experts.values()) if (record.probe === undefined) return false;
    return true;
  }

  /** A probe ended: wake `troupe.probed()` callers once every expert has one. */
  probeEnded(): void {
    if (!this.probed) return;
    for (const resolve of this.probedWaiters.splice(0)) resolve();
  }

  info(record: ExpertRecord): ExpertInfo {
    return {
      name: record.def.name,
      skills: { ...record.def.skills },
      state: record.state,
      concurrency: record.def.concurrency,
      lookahead: this.scheduler.lookaheadNow(record.slot),
      active: record.slot.active,
      restarts: record.restarts,
      faults: record.health.faults.map((f) => ({ ...f })),
      reason: record.reason,
      probe: record.probe === undefined ? undefined : { ...record.probe },
    };
  }
}
