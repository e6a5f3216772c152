/**
 * One run: `analyzing → identifying → coordinating → integrating → validating → done`, or
 * `failed` / `cancelled`. Its data and its end belong to its Run (src/runs/run.ts); this machine
 * sequences the stages, and is stopped by the coordinator as soon as it reaches a final state.
 */
import * as types from 'node:util/types';
import { type AnyActorRef, assign, enqueueActions, sendParent, setup } from 'xstate';
import { backoffMs } from '../actors/supervision.js';
import type { WorkResult } from '../actors/types.js';
import { type Core, queueFull } from '../core.js';
import { describe, messageOf, TroupeError, wrapThrown } from '../errors.js';
import { setOwn } from '../fields.js';
import { checkGraph, type Graph } from '../runs/graph.js';
import { announceExcluded, identify } from '../runs/identify.js';
import { Ledger } from '../runs/ledger.js';
import type { Run } from '../runs/run.js';
import type { Contribution, Plan, Stage } from '../types.js';

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
  run: Run;
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
 * handled itself): queued and handed out at once, as the dispatcher does for the results that come
 * home, with no round trip through the coordinator.
 */
function release(core: Core, run: Run, ledger: Ledger, ready: number[]): void {
  if (ready.length === 0 || run.finished) return;
  core.enqueue(run.runId, ledger, ready);
  core.dispatcher.checkServable();
  core.dispatcher.dispatch();
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
function attemptFailed(core: Core, run: Run, result: WorkResult, self: AnyActorRef): void {
  const ledger = run.ledger as Ledger;
  const { work, runMs, expert } = result;
  const failure = result.error as TroupeError;
  const i = work.index;
  ledger.attemptFailed(i, failure, runMs, run.elapsed(), result.thread);
  // An input isolated as the cause of its faults (see judgeFault) is not tried again.
  if (failure.details?.isolated === true || !core.willRetry(work, core.expert(expert), failure)) {
    // Out of attempts (or not worth another): the subtask fails, and with it the run.
    run.failSubtask(i, failure, expert);
    return;
  }
  const delay = backoffMs(
    core.options.retryBackoffMs,
    core.options.maxRetryBackoffMs,
    work.attempt,
    core.random,
  );
  ledger.retrying(i, expert);
  run.emit({
    type: 'subtask.retry',
    runId: run.runId,
    id: work.id,
    attempt: work.attempt + 1,
    delayMs: delay,
    error: failure,
  });
  const timer = core.clock.setTimeout(() => {
    ledger.timers.delete(i);
    self.send({ type: 'retry', index: i });
  }, delay);
  ledger.timers.set(i, timer);
}

type Final = 'done' | 'failed' | 'cancelled';

export const runMachine = setup({
  types: {
    context: {} as RunContext,
    events: {} as RunMachineEvent,
    input: {} as RunInput,
  },
  actions: {
    /** The run enters a stage: its context says which (a final state is not a stage). */
    enterStage: assign((_, stage: Stage) => ({ stage })),
    /** Its listeners hear of the stage it entered, final ones included. */
    announce: ({ context }, stage: Stage | Final) => {
      const { run } = context;
      // A run the runtime ended already (Core.abandon) is not announced again by its machine.
      if (run.ending) return;
      run.entered(stage);
      const size = run.ledger?.size;
      run.emit({
        type: 'stage',
        runId: run.runId,
        stage,
        ...(size === undefined ? {} : { subtasks: size }),
      });
    },
    analyze: ({ context, self }) => {
      const { run, core } = context;
      step(self, () => analyzeStep(run.plan, run.self, run.input, core.options.maxSubtasksPerRun));
    },
    // Every subtask has ended: who contributed what is made once, and the outcome reuses it.
    // Without an integrate of the plan, the default result is made here and the machine moves
    // on in the same step (guard noIntegrate): no turn of the microtask queue, no event.
    gather: assign(({ context }) => {
      const contributions = (context.run.ledger as Ledger).contributions();
      return context.run.plan.integrate === undefined
        ? { contributions, result: keyed(contributions) }
        : { contributions };
    }),
    integrate: ({ context, self }) => {
      const { run } = context;
      const { integrate } = run.plan;
      // The plan's integrate may sort its list: it gets a copy.
      const contributions = [...(context.contributions ?? [])];
      if (integrate !== undefined)
        step(self, () => integrateStep(run.self, integrate, run.input, contributions));
    },
    validate: ({ context, self }) => {
      const { run, result } = context;
      const { validate } = run.plan;
      // Without one, quality stays undefined and the machine moves on (guard noValidate).
      if (validate !== undefined)
        step(self, () => validateStep(run.self, validate, run.input, result));
    },
    setGraph: ({ context }, graph: Graph) => {
      context.run.ledger = new Ledger(graph);
    },
    refuseFull: assign(({ context }, graph: Graph) => {
      const { core } = context;
      return {
        error: queueFull(core.options.maxQueuedSubtasks, core.outstanding(), graph.ids.length),
      };
    }),
    // A stage's function failed (step.failed), or identification did (identified).
    setError: assign((_, failed: { error: unknown }) => ({
      error: wrapThrown(failed.error, 'E_INTERNAL', 'troupe: a stage failed'),
    })),
    // The first subtask that failed for good is the run's failure.
    takeFailure: assign(({ context }) => ({ error: context.error ?? context.run.failure })),
    // Identified here when no qualified expert is still probing (the usual case): the verdict
    // is raised to the run itself, with no round trip through the coordinator. Otherwise the
    // coordinator holds the run and answers once the probes it waits for have ended.
    identify: enqueueActions(({ context, enqueue }) => {
      const { core, run } = context;
      const verdict = identify(core, run);
      if (verdict.wait) {
        enqueue.sendParent({ type: 'run.identify', runId: run.runId });
        return;
      }
      announceExcluded(core, run.runId);
      enqueue.raise({ type: 'identified', error: verdict.error });
    }),
    startWork: ({ context }) => {
      const { core, run } = context;
      const ledger = run.ledger as Ledger;
      release(core, run, ledger, ledger.start(run.elapsed()));
    },
    settled: ({ context, self }, results: WorkResult[]) => {
      const { core, run } = context;
      const ledger = run.ledger as Ledger;
      const ready: number[] = [];
      for (const result of results) {
        const i = result.work.index;
        // Cancelled or failed meanwhile: its record is written already; nothing more to do.
        if (ledger.isTerminal(i)) continue;
        if (result.ok) {
          for (const j of run.complete(
            i,
            result.output,
            result.runMs,
            result.expert,
            result.thread,
          ))
            ready.push(j);
        } else {
          attemptFailed(core, run, result, self);
        }
      }
      if (!ledger.finished && ledger.failed === 0) release(core, run, ledger, ready);
    },
    retry: ({ context }, index: number) => {
      const { core, run } = context;
      const ledger = run.ledger as Ledger;
      if (ledger.isTerminal(index)) return;
      ledger.ready(index, run.elapsed());
      release(core, run, ledger, [index]);
    },
    keepError: assign((_, error: TroupeError) => ({ error })),
    stopEverything: ({ context }, error: TroupeError) => context.run.stop(error),
    setResult: assign((_, step: { output: unknown }) => ({ result: step.output })),
    setQuality: assign((_, step: { output: unknown }) => ({ quality: step.output })),
    /** The run ends (Run.end: its records, its outcome, its caller), then its parent stops it. */
    finish: ({ context }, status: Final) => {
      const { run } = context;
      if (status === 'done')
        run.end({
          status,
          result: context.result,
          quality: context.quality,
          contributions: context.contributions,
        });
      else
        run.end({
          status,
          error: context.error,
          stage: context.stage,
          contributions: context.contributions,
        });
    },
    finished: sendParent(({ context }) => ({ type: 'run.finished', runId: context.run.runId })),
  },
  guards: {
    identifyFailed: (_, error: TroupeError | undefined) => error !== undefined,
    // The subtasks found would take the troupe past maxQueuedSubtasks: checked and admitted in
    // one step, so that runs analysed at the same time cannot all slip under the bound.
    overBound: ({ context }, graph: Graph) =>
      context.core.outstanding() + graph.ids.length > context.core.options.maxQueuedSubtasks,
    failedSubtask: ({ context }) => (context.run.ledger?.failed ?? 0) > 0,
    // Ended from outside (Core.abandon): the machine only follows it to `failed`.
    abandoned: ({ context }) => context.run.finished,
    allEnded: ({ context }) => context.run.ledger?.finished === true,
    noIntegrate: ({ context }) => context.run.plan.integrate === undefined,
    noValidate: ({ context }) => context.run.plan.validate === undefined,
  },
}).createMachine({
  id: 'run',
  context: ({ input }) => ({
    core: input.core,
    run: input.core.runs.get(input.runId) as Run,
    result: undefined,
    quality: undefined,
    error: undefined,
    stage: 'analyzing',
    contributions: undefined,
  }),
  initial: 'analyzing',
  on: {
    cancel: {
      target: '.cancelled',
      actions: [
        { type: 'keepError', params: ({ event }) => event.error },
        { type: 'stopEverything', params: ({ event }) => event.error },
      ],
    },
    abort: {
      target: '.failed',
      actions: [
        { type: 'keepError', params: ({ event }) => event.error },
        { type: 'stopEverything', params: ({ event }) => event.error },
      ],
    },
  },
  states: {
    analyzing: {
      entry: [
        { type: 'enterStage', params: 'analyzing' },
        { type: 'announce', params: 'analyzing' },
        'analyze',
      ],
      on: {
        'step.done': [
          {
            guard: { type: 'overBound', params: ({ event }) => event.output as Graph },
            actions: { type: 'refuseFull', params: ({ event }) => event.output as Graph },
            target: 'failed',
          },
          {
            actions: { type: 'setGraph', params: ({ event }) => event.output as Graph },
            target: 'identifying',
          },
        ],
        'step.failed': {
          actions: { type: 'setError', params: ({ event }) => ({ error: event.error }) },
          target: 'failed',
        },
      },
    },
    identifying: {
      entry: [
        { type: 'enterStage', params: 'identifying' },
        { type: 'announce', params: 'identifying' },
        'identify',
      ],
      on: {
        identified: [
          {
            guard: { type: 'identifyFailed', params: ({ event }) => event.error },
            actions: { type: 'setError', params: ({ event }) => ({ error: event.error }) },
            target: 'failed',
          },
          { target: 'coordinating' },
        ],
      },
    },
    coordinating: {
      entry: [
        { type: 'enterStage', params: 'coordinating' },
        { type: 'announce', params: 'coordinating' },
        'startWork',
      ],
      always: [
        { guard: 'abandoned', target: 'failed' },
        { guard: 'failedSubtask', actions: 'takeFailure', target: 'failed' },
        { guard: 'allEnded', target: 'integrating' },
      ],
      on: {
        'work.settled': { actions: { type: 'settled', params: ({ event }) => event.results } },
        retry: { actions: { type: 'retry', params: ({ event }) => event.index } },
      },
    },
    integrating: {
      entry: [
        { type: 'enterStage', params: 'integrating' },
        { type: 'announce', params: 'integrating' },
        'gather',
        'integrate',
      ],
      always: { guard: 'noIntegrate', target: 'validating' },
      on: {
        'step.done': {
          actions: { type: 'setResult', params: ({ event }) => ({ output: event.output }) },
          target: 'validating',
        },
        'step.failed': {
          actions: { type: 'setError', params: ({ event }) => ({ error: event.error }) },
          target: 'failed',
        },
      },
    },
    validating: {
      entry: [
        { type: 'enterStage', params: 'validating' },
        { type: 'announce', params: 'validating' },
        'validate',
      ],
      always: { guard: 'noValidate', target: 'done' },
      on: {
        'step.done': {
          actions: { type: 'setQuality', params: ({ event }) => ({ output: event.output }) },
          target: 'done',
        },
        'step.failed': {
          actions: { type: 'setError', params: ({ event }) => ({ error: event.error }) },
          target: 'failed',
        },
      },
    },
    done: {
      type: 'final',
      entry: [{ type: 'announce', params: 'done' }, { type: 'finish', params: 'done' }, 'finished'],
    },
    failed: {
      type: 'final',
      entry: [
        { type: 'announce', params: 'failed' },
        { type: 'finish', params: 'failed' },
        'finished',
      ],
    },
    cancelled: {
      type: 'final',
      entry: [
        { type: 'announce', params: 'cancelled' },
        { type: 'finish', params: 'cancelled' },
        'finished',
      ],
    },
  },
});
