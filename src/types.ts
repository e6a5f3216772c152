/** Public types shared across the runtime: experts, plans, subtasks, outcomes, events. */

import type { ResourceLimits } from 'node:worker_threads';
import type { InspectionEvent } from 'xstate';
import type { TroupeError } from './errors.js';
import type { ExecutorFactory } from './executors/redis/options.js';

/** A skill level: 1 (novice) to 5 (master). A subtask of complexity c needs a level ≥ c. */
export type Level = 1 | 2 | 3 | 4 | 5;

/**
 * An expert: a worker module plus what it is good at. Its module's default export
 * `(input, ctx) => output` runs on a worker thread; an optional `probe` export is checked once
 * before the expert's first delegation.
 */
export interface ExpertDefinition<In = unknown, Out = unknown> {
  /** Unique name; also its registered module name and its actor's `systemId`. */
  name: string;
  /** Skills and their levels, e.g. `{ integrity: 3 }`. */
  skills: Record<string, Level>;
  /** The worker module: a `file:` URL or an absolute path. */
  module: URL | string;
  /** Subtasks it may run at once (on the shared pool). @default 1 */
  concurrency?: number;
  /**
   * Take subtasks ahead while `concurrency` ≥ the troupe's threads — one per thread, or a batch
   * per thread while its run is the only one (docs/experts.md, "`concurrency` and lookahead");
   * `false`: only ever as many as `concurrency`. @default true
   */
  lookahead?: boolean;
  /** Run-time limit of one subtask, in ms; 0 = none. @default the troupe's `timeoutMs` */
  timeoutMs?: number;
  /** Attempts of a subtask it takes, including the first. @default the troupe's `attempts` */
  attempts?: number;
  /** Tasks per message to a thread: 1, a number, or `'auto'` (short tasks only). @default 'auto' */
  batch?: number | 'auto';
  /**
   * Checks an output on the main thread: return `true` (or nothing) to accept, `false` or a
   * reason string to reject. A rejection uses up an attempt (`E_QUALITY`).
   */
  validate?: (output: Out, input: In) => boolean | string | undefined;
  /**
   * Takes messages (`tell`, `ask`) on the main thread: cheap, called in the order messages
   * arrive. What it returns (or resolves to) answers an `ask`. Use `messages: 'heavy'` instead to
   * run the module's `onMessage` export on the pool.
   */
  onMessage?: (msg: unknown, from: string, ctx: MessageContext) => unknown;
  /**
   * `'heavy'`: messages run the module's `onMessage(msg, from, ctx)` export on a worker thread,
   * one at a time per expert (so that order holds). Without `onMessage` or this, the expert
   * takes no messages (`E_NO_RECIPIENT`).
   */
  messages?: 'heavy';
  /**
   * Heap (and stack) limits for this expert alone, in MB, as `worker_threads` takes them. The
   * expert's work, its probe and its heavy messages then run on threads of its own (as many as
   * its `concurrency`, at most the troupe's `threads`), started with these limits over the
   * troupe's `resourceLimits`; past them its subtask fails `E_WORKER_OOM` and no other expert's
   * thread is touched. Those threads come on top of the troupe's `threads` (which are not started
   * at all when every expert has limits of its own).
   * @default none: the expert shares the troupe's threads and their limits
   */
  resourceLimits?: ResourceLimits;
}

/** Who a message is for: an expert by name, or the least-loaded expert with a skill. */
export type Recipient = string | { skill: string; level?: Level };

/** Options of an `ask`. */
export interface AskOptions {
  /** How long to wait for the answer, ms (`E_ASK_TIMEOUT`). @default the troupe's `askTimeoutMs` */
  timeoutMs?: number;
}

/** A tell no one took: its handler threw, or its recipient retired before taking it. */
export interface MessageFailure {
  from: string;
  to: string;
  /** The run it was sent within, if any. */
  runId: string | undefined;
  error: TroupeError;
}

/** What an inline `onMessage` receives as its third argument. */
export interface MessageContext {
  /** The expert handling the message. */
  expert: string;
  /** The run the message belongs to, if it was sent from one. */
  runId: string | undefined;
  /** Tells another expert, as this expert. */
  tell(to: Recipient, msg: unknown): void;
  /** Asks another expert, as this expert. */
  ask<T = unknown>(to: Recipient, msg: unknown, options?: AskOptions): Promise<T>;
}

/** One unit of work found by task analysis. */
export interface Subtask<In = unknown> {
  /** Unique within the run. */
  id: string;
  /** The skill it needs. */
  needs: string;
  /** 1–5: an expert needs a level ≥ this. @default 1 */
  complexity?: Level;
  /** Its input, cloned to the worker thread. */
  input?: In;
  /** Ids of the subtasks that must be done first; their outputs arrive as `ctx.deps`. */
  after?: string[];
  /** Run-time limit of one attempt, ms; 0 = none. @default the expert's, else the troupe's */
  timeoutMs?: number;
  /** Attempts, including the first. @default the expert's, else the troupe's */
  attempts?: number;
}

/** One subtask's result with who produced it. */
export interface Contribution<Out = unknown> {
  subtask: string;
  needs: string;
  expert: string;
  level: number;
  /** 1 for the first attempt. */
  attempt: number;
  /** From ready to handed to its expert, ms. */
  queuedMs: number;
  /** On its worker thread, ms. */
  runMs: number;
  output: Out;
}

/** A plan: how to split the input, merge the contributions, and judge the result. */
export interface Plan<In = unknown, Result = unknown> {
  /** A name for logs and events. @default 'run' */
  name?: string;
  /** Task analysis: the subtasks (a graph through `after`). */
  analyze: (input: In) => Subtask[] | Promise<Subtask[]>;
  /** Integration. @default contributions keyed by subtask id: `{ [id]: output }` */
  integrate?: (contributions: Contribution[], input: In) => Result | Promise<Result>;
  /**
   * Quality validation of the integrated result: what it returns becomes `outcome.quality`;
   * throwing fails the run (`E_QUALITY`).
   */
  validate?: (result: Result, input: In) => unknown;
}

/** How a subtask ended. */
export type SubtaskStatus = 'done' | 'failed' | 'cancelled';

/** Exactly one terminal record per subtask. */
export interface SubtaskRecord {
  id: string;
  needs: string;
  complexity: number;
  status: SubtaskStatus;
  /** The expert of the last attempt, if one started. */
  expert: string | undefined;
  attempts: number;
  /** Every attempt's failure, oldest first. */
  errors: TroupeError[];
  /** Why it failed or was cancelled. */
  error: TroupeError | undefined;
  /** Time waiting for an expert, summed over attempts, ms. */
  queuedMs: number;
  /** Time running on threads, summed over attempts, ms. */
  runMs: number;
  /** Messages it sent (`ctx.send`, `ctx.ask`). */
  messages: number;
  /** Since the run started, ms (undefined if it never started). */
  startedAtMs: number | undefined;
  endedAtMs: number;
}

/** Per expert, within one run. */
export interface ExpertRunMetrics {
  subtasks: number;
  waitMs: number;
  runMs: number;
  retries: number;
}

/** How well the team worked. `parallelism` is not a speed-up: the benchmarks measure that. */
export interface RunMetrics {
  /** From admission to the end, ms. */
  wallMs: number;
  /** Σ run time of all attempts on threads, ms. */
  runMs: number;
  /** runMs ÷ wallMs: how many threads were busy on average. */
  parallelism: number;
  /** parallelism ÷ threads. */
  efficiency: number;
  /** The troupe's threads, with those of experts that have threads of their own. */
  threads: number;
  subtasks: number;
  retries: number;
  /** Expert restarts during the run. */
  restarts: number;
  /** Messages sent within the run (by its subtasks and by the handlers of their messages). */
  messages: number;
  /** messages ÷ subtasks. */
  messagesPerSubtask: number;
  /** Messages per sender → receiver pair, most first. */
  messagePairs: { from: string; to: string; count: number }[];
  /** Longest chain of dependent subtasks by run time, ms: the lower bound on wall time. */
  criticalPathMs: number;
  perExpert: Record<string, ExpertRunMetrics>;
}

/** One attempt of a subtask, for traces: when it left, came back, ran where, and how it ended. */
export interface AttemptRecord {
  subtask: string;
  attempt: number;
  expert: string;
  status: 'running' | 'done' | 'failed' | 'cancelled';
  /** When it was handed to its expert, ms since the run started. */
  dispatchedAtMs: number;
  /** When its result came back to the main thread (or its run gave up on it), ms since the run started. */
  endedAtMs: number | undefined;
  /** Time it ran on its thread, ms (0 if it never ran or its thread never said). */
  runMs: number;
  /** The worker thread it ran on (`threadId`), if one said. */
  thread: number | undefined;
  /** The error code it ended with, if it did not succeed. */
  code: string | undefined;
}

/** One message sent within a run (by a subtask or by a handler of the run's messages), for traces. */
export interface MessageRecord {
  /** The sending expert. */
  from: string;
  /** The subtask that sent it, if a subtask did (else a message handler of the run did). */
  subtask: string | undefined;
  /** The receiving expert. */
  to: string;
  kind: 'tell' | 'ask';
  /** Where its handler ran: on the main thread (`onMessage`) or on the pool (`messages: 'heavy'`). */
  handler: 'inline' | 'heavy' | undefined;
  /** When the main thread routed it, ms since the run started. */
  sentAtMs: number;
  /** When its handler began (a heavy one: when it was handed to the pool), if it did. */
  startedAtMs: number | undefined;
  /** When its handler ended, or it was found undeliverable. */
  endedAtMs: number | undefined;
  /** `undelivered`: its run ended before any handler took it; `running`: one still had it then. */
  status: 'done' | 'failed' | 'undelivered' | 'running';
}

/** What every outcome says, whatever its status. */
export interface OutcomeBase {
  runId: string;
  plan: string;
  /** One record per subtask, in the order analysis gave them (made on first read, then kept). */
  records: SubtaskRecord[];
  contributions: Contribution[];
  metrics: RunMetrics;
  /** Every attempt, in the order they were handed out (read on first use: it is made then). */
  attempts: AttemptRecord[];
  /** Every message sent within the run, in the order sent (read on first use, as `attempts`). */
  messageLog: MessageRecord[];
  /** The stages the run entered, with when (ms since it started). */
  stages: { stage: Stage | 'done' | 'failed' | 'cancelled'; atMs: number }[];
}

/** What `troupe.run()` resolves to: switch on `status`. */
export type Outcome<Result = unknown> =
  | (OutcomeBase & { status: 'done'; result: Result; quality: unknown })
  | (OutcomeBase & { status: 'failed'; error: TroupeError; stage: Stage })
  | (OutcomeBase & { status: 'cancelled'; error: TroupeError; stage: Stage });

/** The stages of a run. */
export type Stage = 'analyzing' | 'identifying' | 'coordinating' | 'integrating' | 'validating';

/** What `onEvent` receives while a run goes. */
export type RunEvent =
  | {
      type: 'stage';
      runId: string;
      stage: Stage | 'done' | 'failed' | 'cancelled';
      /** Subtasks in the run, once analysis has found them. */
      subtasks?: number;
    }
  | { type: 'subtask.start'; runId: string; id: string; expert: string; attempt: number }
  | {
      type: 'subtask.end';
      runId: string;
      id: string;
      status: SubtaskStatus;
      expert: string | undefined;
      error?: TroupeError;
    }
  | {
      type: 'subtask.retry';
      runId: string;
      id: string;
      attempt: number;
      delayMs: number;
      error: TroupeError;
    }
  | {
      type: 'subtask.progress';
      runId: string;
      id: string;
      fraction: number;
      note: string | undefined;
      /** The run's progress: ended subtasks count whole, running ones their fraction. */
      overall: number;
    }
  | {
      /** A message no one could take or answer: a `tell` whose handler threw, or whose recipient retired. */
      type: 'message.failed';
      runId: string;
      from: string;
      to: string;
      error: TroupeError;
    }
  | { type: 'expert.restart'; runId: string; expert: string; reason: string }
  | { type: 'expert.excluded'; runId: string; expert: string; reason: string };

/** Options of one run. */
export interface RunOptions {
  /** Cancels the run: pending subtasks are cancelled, running ones aborted. */
  signal?: AbortSignal;
  /** Cancels the run this many ms after admission. */
  deadlineMs?: number;
  /** Called for each run event (stage changes, subtask start and end, retries, restarts). */
  onEvent?: (event: RunEvent) => void;
  /** Called when a subtask reports progress (`ctx.progress`), with the run's overall progress. */
  onProgress?: (progress: Progress) => void;
}

/** What `onProgress` receives. */
export interface Progress {
  runId: string;
  /** The subtask that reported. */
  id: string;
  /** Its progress, 0–1 (never lower than it reported before). */
  fraction: number;
  note: string | undefined;
  /** Subtasks ended, and in all. */
  done: number;
  total: number;
  /** The run's progress, 0–1: ended subtasks count whole, running ones their fraction. */
  overall: number;
}

/** A clock: lets tests drive supervision windows and backoff. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Supervision of experts (OTP-style intensity). */
export interface SupervisionOptions {
  /** Expert faults tolerated within `windowMs`; one more restarts the expert. @default 5 */
  intensity?: number;
  /** The window, ms. @default 10000 */
  windowMs?: number;
  /** First restart backoff, ms; doubles per consecutive restart, with jitter. @default 200 */
  restartBackoffMs?: number;
  /** Upper bound of the restart backoff, ms. @default 5000 */
  maxRestartBackoffMs?: number;
  /** Consecutive failed probes that retire an expert. @default 3 */
  maxProbeFailures?: number;
}

/** Options of {@link createTroupe}. */
export interface TroupeOptions {
  /** The team. */
  // biome-ignore lint/suspicious/noExplicitAny: experts of any input and output types; each is checked by its own definition
  experts: ExpertDefinition<any, any>[];
  /** Worker threads of the shared pool. @default os.availableParallelism() */
  threads?: number;
  /** Default run-time limit of a subtask, ms; 0 = none. @default 0 */
  timeoutMs?: number;
  /** Attempts of a subtask, including the first. @default 3 */
  attempts?: number;
  /** First retry backoff, ms; doubles per attempt, with jitter. @default 50 */
  retryBackoffMs?: number;
  /** Upper bound of the retry backoff, ms. @default 2000 */
  maxRetryBackoffMs?: number;
  /**
   * Subtasks admitted and not yet ended, across runs (waiting for their dependencies, an expert
   * or a retry, or running): a hard bound. `run()` rejects `E_QUEUE_FULL` when it is reached, and
   * a run whose subtasks would pass it fails at `analyzing` with `E_QUEUE_FULL`. @default 1000000
   */
  maxQueuedSubtasks?: number;
  supervision?: SupervisionOptions;
  /** How long an `ask` waits for its answer, ms (`E_ASK_TIMEOUT`). @default 30000 */
  askTimeoutMs?: number;
  /**
   * Called for every `tell` no one took (its handler threw, or its recipient retired first),
   * within a run or not; while its run is active, a `message.failed` run event says it too. (An `ask` that
   * fails rejects its asker instead.)
   */
  onMessageFailed?: (failure: MessageFailure) => void;
  /**
   * How long a cancelled or timed-out subtask may go on before its thread is terminated, ms.
   * A handler that polls `ctx.signal.aborted` or `ctx.throwIfAborted()` stops within it and keeps
   * its thread. @default 100
   */
  cancelGraceMs?: number;
  /**
   * How long an idle thread watches for its next task before it sleeps, ms (0 to 10). Waking a
   * sleeping thread is what a step of a dependent chain pays most on a virtual machine whose idle
   * cores halt; `0` sleeps at once (no CPU spent waiting). @default 0.3
   */
  idleSpinMs?: number;
  /** Bytes a run's blackboard may hold (`ctx.share`; `E_TOO_LARGE` past it). @default 67108864 (64 MiB) */
  maxBlackboardBytes?: number;
  /**
   * What a subtask's input may weigh, bytes (an estimate: 1 a string character, a binary value's
   * byteLength, 8 any other value, plus keys): past it the subtask fails `E_TOO_LARGE`, naming
   * it, before it is sent. `Infinity`: no limit. @default 67108864 (64 MiB)
   */
  maxInputBytes?: number;
  /**
   * What a subtask's output may weigh, bytes (the same estimate, made on its thread): past it
   * the subtask fails `E_TOO_LARGE` and the output is never sent. @default 67108864 (64 MiB)
   */
  maxOutputBytes?: number;
  /** Subtasks one run's `analyze` may return: past it the run fails at analyzing, `E_TOO_LARGE`. @default 1000000 */
  maxSubtasksPerRun?: number;
  /** Limit for loading an expert module on a thread, ms. @default 10000 */
  moduleLoadTimeoutMs?: number;
  /** Per-thread limits; past them a subtask fails `E_WORKER_OOM`. */
  resourceLimits?: ResourceLimits;
  /**
   * Each run as OpenTelemetry spans (`troupe.run`, under the span active when `run()` is called,
   * with its stages as events and a `troupe.attempt` child per attempt), through the tracer
   * provider your service registers. Needs `@opentelemetry/api` (an optional peer, loaded then).
   * @default false
   */
  openTelemetry?: boolean;
  /**
   * Watch the machines live: what XState's `createActor({ inspect })` takes (a function or an
   * observer), or an inspector that has one, such as `createWebSocketInspector()` from
   * `@statelyai/inspect`. It receives XState's inspection events, with snapshots, events and
   * action params summarised (JSON-safe and bounded: a run's context is its stage and counts),
   * and each subtask attempt as a pseudo-actor (`task`) under its expert. See docs/inspect.md.
   */
  inspect?:
    | ((event: InspectionEvent) => void)
    | { next?: (event: InspectionEvent) => void }
    | { inspect: { next?: (event: InspectionEvent) => void } };
  /**
   * Where the experts' work runs: local worker threads (the default), or `troupe worker`
   * processes on any number of machines through BullMQ on Redis (`redisExecutor({ connection })`,
   * see README "Running on several machines"). With one, the local pool's options (`threads`,
   * `resourceLimits`, `maxInputBytes`, ...) are refused: the workers have their own.
   */
  executor?: ExecutorFactory;
  /** Time source for supervision windows and backoff (tests). @default the real clock */
  clock?: Clock;
  /** Random source in [0, 1) for jitter (tests). @default Math.random */
  random?: () => number;
}

/** What `troupe.experts()` shows of one expert. */
export interface ExpertInfo {
  name: string;
  skills: Record<string, Level>;
  state: 'probing' | 'ready' | 'busy' | 'backingOff' | 'retired';
  concurrency: number;
  /**
   * Subtasks it may take now beyond `concurrency`, waiting in the pool or a thread's port to start
   * the moment a thread is done. When `concurrency` ≥ threads (it can then never run more than
   * `concurrency` at once): one per thread, or — while one run alone is under way — a batch per
   * thread (the batch the pool makes of its subtasks once it has measured them, at most ~24 ms
   * of their work). Else 0; 0 for all in a troupe with a heavy receiver, or with
   * `lookahead: false`. It shrinks when a second run starts: `active` may then exceed
   * `concurrency + lookahead` until what was taken ahead has run.
   */
  lookahead: number;
  /** Subtasks handed to it and not yet ended: running, or waiting as its lookahead. */
  active: number;
  restarts: number;
  /** Expert faults, newest last (crash, OOM, timeout, module load, probe). */
  faults: { atMs: number; code: string; message: string }[];
  /** Why it is retired or backing off. */
  reason: string | undefined;
  probe: { ok: boolean; error?: string } | undefined;
}

/** What `troupe.stats()` shows. */
export interface TroupeStats {
  runs: { active: number; done: number; failed: number; cancelled: number };
  /**
   * `queued`: ready, waiting for an expert; `running`: handed to experts (running, or waiting as
   * their lookahead); `outstanding`: admitted and not yet ended, what `maxQueuedSubtasks` bounds.
   */
  subtasks: { queued: number; running: number; outstanding: number };
  /** Messages so far: routed, answered asks, failed (a handler threw, a timeout, no recipient), waiting in mailboxes. */
  messages: { sent: number; answered: number; failed: number; waiting: number };
  experts: ExpertInfo[];
}
