/**
 * One run: `analyzing → identifying → coordinating → integrating → validating → done`, or
 * `failed` / `cancelled`. The ledger holds its subtasks; this machine holds the control flow and
 * is stopped by the coordinator as soon as it reaches a final state.
 */
import { types } from 'node:util';
import { type AnyActorRef, enqueueActions, setup } from 'xstate';
import { checkGraph, type Graph } from '../actors/graph.js';
import { backoffMs, RETRYABLE } from '../actors/supervision.js';
import { describe, messageOf, TroupeError, wrapThrown } from '../errors.js';
import { setOwn } from '../fields.js';
import { runMetrics } from '../metrics/run-metrics.js';
import type { Contribution, Outcome, Plan, Stage } from '../types.js';
import { type Core, queueFull } from './core.js';
import { checkServable, dispatch } from './flow.js';
import { announceExcluded, identify } from './identify.js';
import { Ledger } from './ledger.js';
import type { RunEntry, WorkResult } from './types.js';

export type RunMachineEvent =
  | { type: 'identified'; error: TroupeError | undefined }
  | { type: 'work.settled'; results: WorkResult[] }
  | { type: 'retry'; index: number }
  | { type: 'cancel'; error: TroupeError }
  | { type: 'abort'; error: TroupeError }
  /** A stage's function (analyze, integrate, validate) returned: `output` is what it gave. */
  | { type: 'step.done'; output: unknown }
  | { type: 'step.failed'; error: unknown };

export interface RunInput {
  core: Core;
  runId: string;
}

export interface RunContext {
  core: Core;
  entry: RunEntry;
  result: unknown;
  quality: unknown;
  error: TroupeError | undefined;
  stage: Stage;
  /** Who contributed what, made when integration began (every subtask had ended). */
  contributions: Contribution[] | undefined;
}

/**
 * Runs a stage's function (the plan's analyze, integrate or validate) after the current step of
 * the machine, and reports to the machine: `step.done` with what it returned, or `step.failed`.
 * A plain call, not an invoked actor: each run would otherwise create, start and stop three
 * child actors, a share of a run's fixed cost (the runtime suite measures that cost:
 * docs/BENCHMARKS.md). Nothing is sent to a run that has ended meanwhile (cancelled, failed).
 */
function step(self: AnyActorRef, work: () => unknown): void {
  const report = (event: RunMachineEvent) => {
    if (self.getSnapshot().status === 'active') self.send(event);
  };
  Promise.resolve()
    .then(work)
    .then(
      (output) => report({ type: 'step.done', output }),
      (error: unknown) => report({ type: 'step.failed', error }),
    );
}

async function analyzeStep(
  plan: Plan,
  self: unknown,
  input: unknown,
  maxSubtasks: number,
): Promise<Graph> {
  let returned: unknown;
  try {
    returned = plan.analyze.call(self, input);
  } catch (error) {
    throw wrapThrown(error, 'E_TASK_FAILED', 'analyze() threw');
  }
  // A promise is awaited (its rejection is analyze's throw); a value that cannot even be asked
  // whether it is one (a proxy whose traps throw) is a bad graph, not a throw of analyze.
  let then: unknown;
  try {
    then =
      returned !== null && typeof returned === 'object'
        ? (returned as { then?: unknown }).then
        : undefined;
  } catch (error) {
    throw new TroupeError(
      'E_INVALID_GRAPH',
      `analyze(): expected an array of subtasks, got ${describe(returned)} that cannot be read (${messageOf(error)})`,
      { cause: error },
    );
  }
  let subtasks: unknown = returned;
  // A Promise is awaited; another thenable may never call back (a run would wait for ever):
  // it is refused, as any value that is not an array.
  if (typeof then === 'function') {
    if (!types.isPromise(returned))
      throw new TroupeError(
        'E_INVALID_GRAPH',
        'analyze(): expected an array of subtasks or a Promise of one, got a thenable that is not a Promise',
      );
    try {
      subtasks = await returned;
    } catch (error) {
      throw wrapThrown(error, 'E_TASK_FAILED', 'analyze() threw');
    }
  }
  return checkGraph(subtasks, maxSubtasks);
}

/**
 * Subtasks of the run became ready (its roots, a retry, or dependents of a result the run
 * handled itself): queued and handed out at once, as flow.ts does for the results that come
 * home, with no round trip through the coordinator.
 */
function release(core: Core, entry: RunEntry, ledger: Ledger, ready: number[]): void {
  if (ready.length === 0 || entry.finished) return;
  core.enqueue(entry.runId, ledger, ready);
  checkServable(core);
  dispatch(core);
}

/** A plan's own integrate (called on the plan: its methods may use `this`). */
async function integrateStep(
  self: unknown,
  integrate: NonNullable<Plan['integrate']>,
  input: unknown,
  contributions: Contribution[],
) {
  try {
    return await integrate.call(self, contributions, input);
  } catch (error) {
    throw wrapThrown(error, 'E_TASK_FAILED', 'integrate() threw');
  }
}

/** A plan's own validate (called on the plan, as integrate). */
async function validateStep(
  self: unknown,
  validate: NonNullable<Plan['validate']>,
  input: unknown,
  result: unknown,
) {
  try {
    return await validate.call(self, result, input);
  } catch (error) {
    throw wrapThrown(error, 'E_QUALITY', 'the plan rejected the result');
  }
}

/** Default integration: contributions keyed by subtask id. */
function keyed(contributions: Contribution[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of contributions) setOwn(out, c.subtask, c.output);
  return out;
}

/** One attempt failed: retry after a backoff, or fail the subtask and with it the run. */
function attemptFailed(context: RunContext, result: WorkResult, self: AnyActorRef): void {
  const { core, entry } = context;
  const ledger = entry.ledger as Ledger;
  const { work, runMs, expert } = result;
  const failure = result.error as TroupeError;
  const i = work.index;
  const id = work.id;
  ledger.attemptFailed(i, failure, runMs);
  const attempts =
    ledger.graph.subtasks[i]?.attempts ?? core.expert(expert).def.attempts ?? core.options.attempts;
  // An input isolated as the cause of its faults (see judgeFault) is not tried again.
  const isolated = failure.details?.isolated === true;
  if (
    RETRYABLE.has(failure.code) &&
    !isolated &&
    work.attempt < attempts &&
    !entry.controller.signal.aborted
  ) {
    const delay = backoffMs(
      core.options.retryBackoffMs,
      core.options.maxRetryBackoffMs,
      work.attempt,
      core.random,
    );
    ledger.retrying(i, expert);
    core.emit(entry.runId, {
      type: 'subtask.retry',
      runId: entry.runId,
      id,
      attempt: work.attempt + 1,
      delayMs: delay,
      error: failure,
    });
    const timer = core.clock.setTimeout(() => {
      ledger.timers.delete(i);
      self.send({ type: 'retry', index: i });
    }, delay);
    ledger.timers.set(i, timer);
    return;
  }
  // Out of attempts (or not worth another): the subtask fails, and with it the run.
  const now = core.clock.now() - entry.startedAt;
  ledger.fail(i, failure, now);
  core.emit(entry.runId, {
    type: 'subtask.end',
    runId: entry.runId,
    id,
    status: 'failed',
    expert,
    error: failure,
  });
  context.error = failure;
  const cause = new TroupeError(
    'E_CANCELLED',
    `cancelled: subtask "${id}" failed (${failure.code})`,
    { cause: failure },
  );
  core.cancelRest(entry, cause);
  entry.controller.abort(cause);
}

export const runMachine = setup({
  types: {
    context: {} as RunContext,
    events: {} as RunMachineEvent,
    input: {} as RunInput,
  },
  actions: {
    stage: ({ context }, stage: Stage | 'done' | 'failed' | 'cancelled') => {
      if (stage !== 'done' && stage !== 'failed' && stage !== 'cancelled') context.stage = stage;
      const size = context.entry.ledger?.size;
      context.core.emit(context.entry.runId, {
        type: 'stage',
        runId: context.entry.runId,
        stage,
        ...(size === undefined ? {} : { subtasks: size }),
      });
    },
    analyze: ({ context, self }) => {
      const { plan, input } = context.entry;
      step(self, () =>
        analyzeStep(plan, context.entry.self, input, context.core.options.maxSubtasksPerRun),
      );
    },
    integrate: ({ context, self }) => {
      const { plan, input } = context.entry;
      const contributions = (context.entry.ledger as Ledger).contributions();
      const { integrate } = plan;
      // Every subtask has ended: the outcome reuses this list. Without an integrate of the plan
      // (which may sort it: it gets a copy), the default is made here and the machine moves on
      // in the same step (guard noIntegrate): no turn of the microtask queue, no event.
      if (integrate === undefined) {
        context.contributions = contributions;
        context.result = keyed(contributions);
      } else {
        context.contributions = [...contributions];
        step(self, () => integrateStep(context.entry.self, integrate, input, contributions));
      }
    },
    validate: ({ context, self }) => {
      const { plan, input } = context.entry;
      const result = context.result;
      const { validate } = plan;
      // Without one, quality stays undefined and the machine moves on (guard noValidate).
      if (validate !== undefined)
        step(self, () => validateStep(context.entry.self, validate, input, result));
    },
    setGraph: ({ context, event }) => {
      if (event.type !== 'step.done') return;
      context.entry.ledger = new Ledger(event.output as Graph);
    },
    refuseFull: ({ context, event }) => {
      if (event.type !== 'step.done') return;
      const { core } = context;
      const asked = (event.output as Graph).ids.length;
      context.error = queueFull(core.options.maxQueuedSubtasks, core.outstanding(), asked);
    },
    setError: ({ context, event }) => {
      const e = event as { error?: unknown };
      // A stage's function failed (step.failed), or identification did (identified).
      context.error = wrapThrown(e.error, 'E_INTERNAL', 'troupe: a stage failed');
    },
    // Identified here when no qualified expert is still probing (the usual case): the verdict
    // is raised to the run itself, with no round trip through the coordinator. Otherwise the
    // coordinator holds the run and answers once the probes it waits for have ended.
    identify: enqueueActions(({ context, enqueue }) => {
      const { core, entry } = context;
      const verdict = identify(core, entry);
      if (verdict.wait) {
        enqueue.sendParent({ type: 'run.identify', runId: entry.runId });
        return;
      }
      announceExcluded(core, entry.runId);
      enqueue.raise({ type: 'identified', error: verdict.error });
    }),
    startWork: ({ context }) => {
      const { core, entry } = context;
      const ledger = entry.ledger as Ledger;
      release(core, entry, ledger, ledger.start(core.clock.now() - entry.startedAt));
    },
    settled: ({ context, event, self }) => {
      if (event.type !== 'work.settled') return;
      const { core, entry } = context;
      const ledger = entry.ledger as Ledger;
      const ready: number[] = [];
      for (const result of event.results) {
        const i = result.work.index;
        // Cancelled or failed meanwhile: its record is written already; nothing more to do.
        if (ledger.isTerminal(i)) continue;
        if (result.ok) {
          for (const j of ledger.complete(
            i,
            result.output,
            result.runMs,
            core.clock.now() - entry.startedAt,
          ))
            ready.push(j);
          core.emit(entry.runId, {
            type: 'subtask.end',
            runId: entry.runId,
            id: result.work.id,
            status: 'done',
            expert: result.expert,
          });
        } else {
          attemptFailed(context, result, self);
        }
      }
      if (!ledger.finished && ledger.failed === 0) release(core, entry, ledger, ready);
    },
    retry: ({ context, event }) => {
      if (event.type !== 'retry') return;
      const { core, entry } = context;
      const ledger = entry.ledger as Ledger;
      if (ledger.isTerminal(event.index)) return;
      ledger.ready(event.index, core.clock.now() - entry.startedAt);
      release(core, entry, ledger, [event.index]);
    },
    stopEverything: ({ context, event }) => {
      const { core, entry } = context;
      const error =
        (event as { error?: TroupeError }).error ??
        new TroupeError('E_CANCELLED', 'the run was cancelled');
      context.error = error;
      core.cancelRest(entry, error);
      entry.controller.abort(error);
    },
    setResult: ({ context, event }) => {
      context.result = (event as unknown as { output: unknown }).output;
    },
    setQuality: ({ context, event }) => {
      context.quality = (event as unknown as { output: unknown }).output;
    },
    finish: ({ context, self }, status: 'done' | 'failed' | 'cancelled') => {
      const { core, entry } = context;
      const ledger = entry.ledger;
      if (ledger !== undefined) {
        for (const timer of ledger.timers.values()) core.clock.clearTimeout(timer);
        ledger.timers.clear();
        // A run that ends before its work did (identification failed, integration threw
        // after a cancel...) still writes one terminal record per subtask.
        if (status !== 'done') {
          const cause =
            context.error ?? new TroupeError('E_CANCELLED', `the run ended (${status})`);
          core.cancelRest(entry, cause);
        }
      }
      // Whatever still runs for this run is aborted (a failure elsewhere, a cancel). A run
      // that is done has nothing left: every subtask's task settled before its result came.
      if (status !== 'done' && !entry.controller.signal.aborted)
        entry.controller.abort(new TroupeError('E_CANCELLED', `the run ended (${status})`));
      const base = {
        runId: entry.runId,
        plan: entry.plan.name ?? 'run',
        records: ledger?.records() ?? [],
        contributions: context.contributions ?? ledger?.contributions() ?? [],
        metrics: runMetrics(core, entry, ledger),
      };
      let outcome: Outcome;
      if (status === 'done')
        outcome = { ...base, status, result: context.result, quality: context.quality };
      else {
        const error =
          context.error ?? new TroupeError('E_INTERNAL', `the run ended ${status} without a cause`);
        outcome =
          status === 'failed'
            ? { ...base, status, error, stage: context.stage }
            : { ...base, status, error, stage: context.stage };
      }
      self._parent?.send({ type: 'run.finished', runId: entry.runId, outcome });
    },
  },
  guards: {
    identifyFailed: ({ event }) => event.type === 'identified' && event.error !== undefined,
    // The subtasks found would take the troupe past maxQueuedSubtasks: checked and admitted in
    // one step, so that runs analysed at the same time cannot all slip under the bound.
    overBound: ({ context, event }) =>
      event.type === 'step.done' &&
      context.core.outstanding() + (event.output as Graph).ids.length >
        context.core.options.maxQueuedSubtasks,
    failedSubtask: ({ context }) => (context.entry.ledger?.failed ?? 0) > 0,
    allEnded: ({ context }) => context.entry.ledger?.finished === true,
    noIntegrate: ({ context }) => context.entry.plan.integrate === undefined,
    noValidate: ({ context }) => context.entry.plan.validate === undefined,
  },
}).createMachine({
  id: 'run',
  context: ({ input }) => ({
    core: input.core,
    entry: input.core.runs.get(input.runId) as RunEntry,
    result: undefined,
    quality: undefined,
    error: undefined,
    stage: 'analyzing',
    contributions: undefined,
  }),
  initial: 'analyzing',
  on: {
    cancel: { target: '.cancelled', actions: 'stopEverything' },
    abort: { target: '.failed', actions: 'stopEverything' },
  },
  states: {
    analyzing: {
      entry: [{ type: 'stage', params: 'analyzing' }, 'analyze'],
      on: {
        'step.done': [
          { guard: 'overBound', actions: 'refuseFull', target: 'failed' },
          { actions: 'setGraph', target: 'identifying' },
        ],
        'step.failed': { actions: 'setError', target: 'failed' },
      },
    },
    identifying: {
      entry: [{ type: 'stage', params: 'identifying' }, 'identify'],
      on: {
        identified: [
          { guard: 'identifyFailed', actions: 'setError', target: 'failed' },
          { target: 'coordinating' },
        ],
      },
    },
    coordinating: {
      entry: [{ type: 'stage', params: 'coordinating' }, 'startWork'],
      always: [
        { guard: 'failedSubtask', target: 'failed' },
        { guard: 'allEnded', target: 'integrating' },
      ],
      on: {
        'work.settled': { actions: 'settled' },
        retry: { actions: 'retry' },
      },
    },
    integrating: {
      entry: [{ type: 'stage', params: 'integrating' }, 'integrate'],
      always: { guard: 'noIntegrate', target: 'validating' },
      on: {
        'step.done': { actions: 'setResult', target: 'validating' },
        'step.failed': { actions: 'setError', target: 'failed' },
      },
    },
    validating: {
      entry: [{ type: 'stage', params: 'validating' }, 'validate'],
      always: { guard: 'noValidate', target: 'done' },
      on: {
        'step.done': { actions: 'setQuality', target: 'done' },
        'step.failed': { actions: 'setError', target: 'failed' },
      },
    },
    done: {
      type: 'final',
      entry: [
        { type: 'stage', params: 'done' },
        { type: 'finish', params: 'done' },
      ],
    },
    failed: {
      type: 'final',
      entry: [
        { type: 'stage', params: 'failed' },
        { type: 'finish', params: 'failed' },
      ],
    },
    cancelled: {
      type: 'final',
      entry: [
        { type: 'stage', params: 'cancelled' },
        { type: 'finish', params: 'cancelled' },
      ],
    },
  },
});
