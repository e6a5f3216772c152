/**
 * One run's data and its end. Everything of a run that is not control flow lives here: its
 * ledger, its blackboard, the messages sent within it, its progress, its elapsed time, its
 * deadline and signal, and `end`, the one way a run ends. The run machine sequences the stages
 * and calls these; the dispatcher (dispatch.ts) and the router call them too, with no event.
 */
import type { AnyActorRef } from 'xstate';
import { notify, TroupeError } from '../errors.js';
import type { Clock, Outcome, Plan, RunEvent, RunMetrics, RunOptions, Stage } from '../types.js';
import type { Ledger } from './ledger.js';
import { MessageLog } from './messages.js';
import { type MetricsSource, runMetrics } from './metrics.js';

/** What a run needs of the runtime around it: its clock, what its metrics read, and leaving. */
export interface RunHost extends MetricsSource {
  readonly clock: Pick<Clock, 'now' | 'setTimeout' | 'clearTimeout'>;
  /** The run ended: it leaves the runtime's tables (its queues, the counts). */
  released(run: Run, outcome: Outcome): void;
}

export interface RunSetup {
  runId: string;
  /** The plan's fields, read once when the run was admitted. */
  plan: Plan;
  /** The caller's plan object: `this` of its functions. */
  self: unknown;
  input: unknown;
  options: RunOptions;
  controller: AbortController;
  maxBlackboardBytes: number;
  host: RunHost;
  /** Asks the coordinator to cancel the run (its deadline passed, or its signal aborted). */
  cancel: (error: TroupeError) => void;
  /** The caller's promise. */
  resolve: (outcome: Outcome) => void;
}

/** How a run ends: what its outcome says beyond its records. */
export type Ending =
  | { status: 'done'; result: unknown; quality: unknown; contributions?: Outcome['contributions'] }
  | {
      status: 'failed' | 'cancelled';
      error: TroupeError | undefined;
      stage: Stage;
      contributions?: Outcome['contributions'];
    };

export class Run {
  readonly runId: string;
  readonly plan: Plan;
  readonly self: unknown;
  readonly input: unknown;
  readonly options: RunOptions;
  /** Aborts everything still running for the run once it fails or is cancelled. */
  readonly controller: AbortController;
  readonly startedAt: number;
  readonly restartsAtStart: number;
  /** Its subtasks, once analysis has found them. */
  ledger: Ledger | undefined;
  /** Its actor, once the coordinator has spawned it. */
  ref: AnyActorRef | undefined;

  readonly #host: RunHost;
  readonly #resolve: (outcome: Outcome) => void;
  readonly #maxBlackboardBytes: number;
  #finished = false;
  /** `end` has begun: a second call, even from a listener it calls, does nothing. */
  #ending = false;
  /** The first subtask failure, which fails the run. */
  #failure: TroupeError | undefined;
  #messages = 0;
  /** Every message sent within the run: `outcome.messageLog`, and the trace's flows. */
  readonly messageLog = new MessageLog();
  /** Messages per sender → receiver pair (`from\u0000to`). */
  readonly #pairs = new Map<string, number>();
  /** The blackboard: values serialized by the thread that shared them. */
  readonly #board = new Map<string, Uint8Array>();
  #boardBytes = 0;
  #deadline: unknown;
  /** The stages it entered, and when. */
  readonly #stages: Outcome['stages'] = [];
  #onAbort: (() => void) | undefined;

  constructor(setup: RunSetup) {
    const { host, options } = setup;
    this.runId = setup.runId;
    this.plan = setup.plan;
    this.self = setup.self;
    this.input = setup.input;
    this.options = options;
    this.controller = setup.controller;
    this.#host = host;
    this.#resolve = setup.resolve;
    this.#maxBlackboardBytes = setup.maxBlackboardBytes;
    this.startedAt = host.clock.now();
    this.restartsAtStart = host.restarts;
    const { deadlineMs, signal } = options;
    if (deadlineMs !== undefined) {
      this.#deadline = host.clock.setTimeout(() => {
        setup.cancel(
          new TroupeError('E_TIMEOUT', `the run passed its deadline of ${deadlineMs} ms`, {
            details: { deadlineMs },
          }),
        );
      }, deadlineMs);
    }
    if (signal !== undefined) {
      const onAbort = () => {
        setup.cancel(
          new TroupeError('E_CANCELLED', 'the run was cancelled by its signal', {
            cause: signal.reason,
          }),
        );
      };
      this.#onAbort = onAbort;
      signal.addEventListener('abort', onAbort, { once: true });
    }
  }

  /** It has ended: its outcome is given, and nothing more is written to it or told of it. */
  get finished(): boolean {
    return this.#finished;
  }

  /** `end` has begun (the run may still be writing its last records). */
  get ending(): boolean {
    return this.#ending;
  }

  /** The first subtask failure, which ends the run failed. */
  get failure(): TroupeError | undefined {
    return this.#failure;
  }

  /** The run's machine entered a stage (or a final state). */
  entered(stage: Outcome['stages'][number]['stage']): void {
    this.#stages.push({ stage, atMs: this.elapsed() });
  }

  /** Milliseconds since admission, on the troupe's clock: the time every record is stamped with. */
  elapsed(): number {
    return this.#host.clock.now() - this.startedAt;
  }

  /** Tells the caller's `onEvent`, while the run has not ended; a throwing listener never hurts it. */
  emit(event: RunEvent): void {
    const onEvent = this.options.onEvent;
    if (onEvent !== undefined && !this.#finished) notify(onEvent, event);
  }

  /** A subtask's attempt succeeded: its record is written; returns the dependents it released. */
  complete(
    index: number,
    output: unknown,
    runMs: number,
    expert: string,
    thread = -1,
  ): readonly number[] {
    const ledger = this.ledger as Ledger;
    const ready = ledger.complete(index, output, runMs, this.elapsed(), thread);
    if (this.options.onEvent !== undefined)
      this.emit({
        type: 'subtask.end',
        runId: this.runId,
        id: ledger.graph.ids[index] as string,
        status: 'done',
        expert,
      });
    return ready;
  }

  /**
   * A subtask failed for good (out of attempts, or not worth another): its record is written,
   * and the rest of the run is stopped with a cause that names it.
   */
  failSubtask(index: number, failure: TroupeError, expert: string): void {
    const ledger = this.ledger as Ledger;
    const id = ledger.graph.ids[index] as string;
    ledger.fail(index, failure, this.elapsed());
    this.emit({
      type: 'subtask.end',
      runId: this.runId,
      id,
      status: 'failed',
      expert,
      error: failure,
    });
    this.#failure ??= failure;
    this.stop(
      new TroupeError('E_CANCELLED', `cancelled: subtask "${id}" failed (${failure.code})`, {
        cause: failure,
      }),
    );
  }

  /** Cancels every subtask not yet ended, and aborts whatever still runs for the run. */
  stop(error: TroupeError): void {
    this.cancelRest(error);
    this.controller.abort(error);
  }

  /**
   * Cancels every subtask of the run not yet ended, and ends the `subtask.start` of each that had
   * started with a `subtask.end` (cancelled), so that a log pairs every start with an end.
   */
  cancelRest(error: TroupeError): void {
    const ledger = this.ledger;
    if (ledger === undefined) return;
    const started = ledger.cancelRest(error, this.elapsed());
    if (started.length === 0 || this.options.onEvent === undefined) return;
    for (const i of started)
      this.emit({
        type: 'subtask.end',
        runId: this.runId,
        id: ledger.graph.ids[i] as string,
        status: 'cancelled',
        expert: ledger.expert[i],
        error,
      });
  }

  /**
   * One message sent from within the run (`index` ≥ 0: by that subtask, counted on it too):
   * returns its entry in the run's message log.
   */
  countMessage(from: string, to: string, index: number, kind: 'tell' | 'ask'): number {
    this.#messages++;
    const key = `${from}\u0000${to}`;
    this.#pairs.set(key, (this.#pairs.get(key) ?? 0) + 1);
    const ledger = this.ledger;
    if (index >= 0 && ledger !== undefined) {
      const sent = ledger.messages;
      sent[index] = (sent[index] as number) + 1;
    }
    return this.messageLog.sent(from, index, to, kind, this.elapsed());
  }

  get messages(): number {
    return this.#messages;
  }

  get pairs(): ReadonlyMap<string, number> {
    return this.#pairs;
  }

  /**
   * A subtask reported progress (checked by the caller: a fraction from 0 to 1): its listeners
   * hear of it when it is higher than the subtask reported before.
   */
  progress(index: number, fraction: number, note: string | undefined): void {
    const ledger = this.ledger;
    if (this.#finished || ledger === undefined) return;
    if (!ledger.reportProgress(index, fraction)) return;
    const id = ledger.graph.ids[index] as string;
    const overall = ledger.overallProgress;
    this.emit({ type: 'subtask.progress', runId: this.runId, id, fraction, note, overall });
    const onProgress = this.options.onProgress;
    if (onProgress === undefined) return;
    notify(onProgress, {
      runId: this.runId,
      id,
      fraction,
      note,
      done: ledger.terminal,
      total: ledger.size,
      overall,
    });
  }

  /** Puts a serialized value on the blackboard, within `maxBlackboardBytes` for the whole run. */
  share(key: string, bytes: Uint8Array): void {
    const limit = this.#maxBlackboardBytes;
    const before = this.#board.get(key)?.byteLength ?? 0;
    const total = this.#boardBytes - before + bytes.byteLength;
    if (total > limit) {
      throw new TroupeError(
        'E_TOO_LARGE',
        `ctx.share("${key}"): ${bytes.byteLength} bytes would bring the run's blackboard to ${total} bytes, past its limit of ${limit} (maxBlackboardBytes)`,
        { details: { key, bytes: bytes.byteLength, used: this.#boardBytes, limit } },
      );
    }
    this.#board.set(key, bytes);
    this.#boardBytes = total;
  }

  /** A value shared on the blackboard, as the thread serialized it. */
  lookup(key: string): Uint8Array | undefined {
    return this.#board.get(key);
  }

  metrics(): RunMetrics {
    return runMetrics(this.#host, this, this.ledger);
  }

  /**
   * Ends the run, once: its retry timers are cleared; a run that did not end done has every
   * subtask not yet ended cancelled (one terminal record each) and its work aborted; it leaves
   * the runtime and its caller gets the outcome, which is returned. Undefined if it had ended.
   */
  end(ending: Ending): Outcome | undefined {
    // Set first: ending calls the caller's listeners (cancelRest), which may cancel the run.
    if (this.#ending) return undefined;
    this.#ending = true;
    const ledger = this.ledger;
    if (ledger !== undefined) {
      for (const timer of ledger.timers.values()) this.#host.clock.clearTimeout(timer);
      ledger.timers.clear();
    }
    if (ending.status !== 'done') {
      // A run that ends before its work did (identification failed, integration threw after a
      // cancel, the runtime abandoned it...) still writes one terminal record per subtask.
      const cause =
        ending.error ?? new TroupeError('E_CANCELLED', `the run ended (${ending.status})`);
      this.cancelRest(cause);
      if (!this.controller.signal.aborted) this.controller.abort(cause);
    }
    this.#finished = true;
    const base = {
      runId: this.runId,
      plan: this.plan.name ?? 'run',
      // Made on first read, as `attempts`: the caller waits for none of the lists it may not read.
      records: [] as Outcome['records'],
      contributions: ending.contributions ?? ledger?.contributions() ?? [],
      metrics: this.metrics(),
      // Made on first read: most callers never look (see attemptsOf).
      attempts: [] as Outcome['attempts'],
      messageLog: [] as Outcome['messageLog'],
      stages: [...this.#stages],
    };
    const outcome: Outcome =
      ending.status === 'done'
        ? { ...base, status: 'done', result: ending.result, quality: ending.quality }
        : {
            ...base,
            status: ending.status,
            error:
              ending.error ??
              new TroupeError('E_INTERNAL', `the run ended ${ending.status} without a cause`),
            stage: ending.stage,
          };
    // (On the outcome itself: a spread would read the getter, and make the list at once.)
    lazily(outcome, 'records', () => ledger?.records() ?? []);
    attemptsOf(outcome, ledger);
    const messageLog = this.messageLog;
    lazily(outcome, 'messageLog', () => messageLog.records(ledger?.graph.ids ?? []));
    if (this.#deadline !== undefined) this.#host.clock.clearTimeout(this.#deadline);
    if (this.#onAbort !== undefined)
      this.options.signal?.removeEventListener('abort', this.#onAbort);
    this.#host.released(this, outcome);
    this.#resolve(outcome);
    return outcome;
  }
}

/**
 * An outcome's `attempts`, made from the ledger's log the first time they are read (then kept):
 * a run of many subtasks does not pay for a list its caller may never read.
 */
function attemptsOf(outcome: { attempts: Outcome['attempts'] }, ledger: Ledger | undefined): void {
  lazily(outcome, 'attempts', () =>
    ledger === undefined ? [] : ledger.log.records(ledger.graph.ids),
  );
}

/** `outcome[key]`, made by `make` the first time it is read, then kept. */
function lazily<K extends 'records' | 'attempts' | 'messageLog'>(
  outcome: Pick<Outcome, K>,
  key: K,
  make: () => Outcome[K],
): void {
  let made: Outcome[K] | undefined;
  let kept = false;
  Object.defineProperty(outcome, key, {
    enumerable: true,
    configurable: true,
    get() {
      if (!kept) {
        made = make();
        kept = true;
      }
      return made;
    },
    // The caller's outcome is theirs to change, as a plain field would be (undefined too).
    set(value: Outcome[K]) {
      made = value;
      kept = true;
    },
  });
}
