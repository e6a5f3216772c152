/**
 * `createTroupe`: the library's front door. It checks the options, starts the shared pool and
 * the coordinator actor, admits runs, and settles every pending run when it closes.
 */
import { setMaxListeners } from 'node:events';
import { availableParallelism } from 'node:os';
import { type Actor, createActor } from 'xstate';
import { resolveExpert } from './actors/experts.js';
import { SUPERVISION_DEFAULTS } from './actors/supervision.js';
import { invalidOption, TroupeError } from './errors.js';
import { coordinatorMachine } from './machines/coordinator.js';
import { Core, type ResolvedTroupe, type RunEntry } from './machines/core.js';
import { isDuration, isPositiveInteger } from './pool/options.js';
import { createPool } from './pool/pool.js';
import type {
  AskOptions,
  Clock,
  ExpertInfo,
  Outcome,
  Plan,
  Recipient,
  RunOptions,
  TroupeOptions,
  TroupeStats,
} from './types.js';

/** A troupe: a team of experts on one pool, ready to take runs. See {@link createTroupe}. */
export interface Troupe {
  /**
   * Runs a plan on an input. Resolves to an {@link Outcome} (`done`, `failed` or `cancelled`);
   * rejects only before the run is admitted (bad input, `E_QUEUE_FULL`, `E_CLOSED`).
   */
  run<In, Result>(
    plan: Plan<In, Result>,
    input: In,
    options?: RunOptions,
  ): Promise<Outcome<Result>>;
  /** Every expert: its state, load and fault history. */
  experts(): ExpertInfo[];
  /** Runs, queues and experts now. */
  stats(): TroupeStats;
  /**
   * Resolves, with every expert, once each has been probed at least once (its probe passed or
   * failed): what `troupe validate` waits for. Resolves at once if they all have, or on close.
   */
  probed(): Promise<ExpertInfo[]>;
  /** Brings a retired expert back: it probes again. */
  revive(name: string): void;
  /**
   * Sends a message to an expert (by name, or `{ skill, level? }`) from the main thread: fire
   * and forget, in order. Throws `E_NO_RECIPIENT` for an unknown, retired or deaf expert.
   */
  tell(to: Recipient, msg: unknown): void;
  /** Asks an expert and resolves to its answer (`E_ASK_TIMEOUT`, `E_NO_RECIPIENT`, …). */
  ask<T = unknown>(to: Recipient, msg: unknown, options?: AskOptions): Promise<T>;
  /**
   * Stops taking runs, lets the running ones finish for up to `timeoutMs`, then cancels the
   * rest (`E_CLOSED`). Every pending run has settled when it resolves.
   */
  close(options?: { force?: boolean; timeoutMs?: number }): Promise<void>;
}

/** One controller per run; every subtask of the run listens to it, so no listener limit. */
function runController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

function resolveOptions(options: TroupeOptions): ResolvedTroupe {
  const threads = options.threads ?? availableParallelism();
  if (!isPositiveInteger(threads))
    throw invalidOption('options.threads', 'a positive integer', threads);
  const timeoutMs = options.timeoutMs ?? 0;
  if (!isDuration(timeoutMs))
    throw invalidOption('options.timeoutMs', 'a duration in ms (a number >= 0)', timeoutMs);
  const attempts = options.attempts ?? 3;
  if (!isPositiveInteger(attempts))
    throw invalidOption('options.attempts', 'a positive integer', attempts);
  const retryBackoffMs = options.retryBackoffMs ?? 50;
  if (!isDuration(retryBackoffMs))
    throw invalidOption(
      'options.retryBackoffMs',
      'a duration in ms (a number >= 0)',
      retryBackoffMs,
    );
  const maxRetryBackoffMs = options.maxRetryBackoffMs ?? 2_000;
  if (!isDuration(maxRetryBackoffMs)) {
    throw invalidOption(
      'options.maxRetryBackoffMs',
      'a duration in ms (a number >= 0)',
      maxRetryBackoffMs,
    );
  }
  const askTimeoutMs = options.askTimeoutMs ?? 30_000;
  if (!(isDuration(askTimeoutMs) && askTimeoutMs > 0))
    throw invalidOption('options.askTimeoutMs', 'a duration in ms above 0', askTimeoutMs);
  const maxBlackboardBytes = options.maxBlackboardBytes ?? 64 * 1024 * 1024;
  if (!isPositiveInteger(maxBlackboardBytes))
    throw invalidOption(
      'options.maxBlackboardBytes',
      'a positive integer (bytes)',
      maxBlackboardBytes,
    );
  if (options.cancelGraceMs !== undefined && !isDuration(options.cancelGraceMs))
    throw invalidOption(
      'options.cancelGraceMs',
      'a duration in ms (a number >= 0)',
      options.cancelGraceMs,
    );
  const maxQueuedSubtasks = options.maxQueuedSubtasks ?? 100_000;
  if (!isPositiveInteger(maxQueuedSubtasks))
    throw invalidOption('options.maxQueuedSubtasks', 'a positive integer', maxQueuedSubtasks);
  const s = options.supervision ?? {};
  if (s === null || typeof s !== 'object')
    throw invalidOption('options.supervision', 'an object', s);
  const supervision = {
    ...SUPERVISION_DEFAULTS,
    ...Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)),
  };
  for (const key of ['intensity', 'maxProbeFailures'] as const) {
    if (!isPositiveInteger(supervision[key]))
      throw invalidOption(`options.supervision.${key}`, 'a positive integer', supervision[key]);
  }
  for (const key of ['windowMs', 'restartBackoffMs', 'maxRestartBackoffMs'] as const) {
    if (!isDuration(supervision[key]))
      throw invalidOption(
        `options.supervision.${key}`,
        'a duration in ms (a number >= 0)',
        supervision[key],
      );
  }
  return {
    threads,
    timeoutMs,
    attempts,
    retryBackoffMs,
    maxRetryBackoffMs,
    maxQueuedSubtasks,
    askTimeoutMs,
    maxBlackboardBytes,
    supervision,
  };
}

function checkPlan(plan: unknown): asserts plan is Plan {
  if (plan === null || typeof plan !== 'object')
    throw invalidOption('plan', 'an object { analyze, integrate?, validate? }', plan);
  const p = plan as Plan;
  if (typeof p.analyze !== 'function')
    throw invalidOption('plan.analyze', 'a function (input) => subtasks', p.analyze);
  if (p.integrate !== undefined && typeof p.integrate !== 'function')
    throw invalidOption('plan.integrate', 'a function', p.integrate);
  if (p.validate !== undefined && typeof p.validate !== 'function')
    throw invalidOption('plan.validate', 'a function', p.validate);
  if (p.name !== undefined && typeof p.name !== 'string')
    throw invalidOption('plan.name', 'a string', p.name);
}

function checkRunOptions(options: unknown): asserts options is RunOptions {
  if (options === null || typeof options !== 'object')
    throw invalidOption('run(options)', 'an object', options);
  const o = options as RunOptions;
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw invalidOption('run(options).signal', 'an AbortSignal', o.signal);
  if (o.deadlineMs !== undefined && !(isDuration(o.deadlineMs) && o.deadlineMs > 0)) {
    throw invalidOption('run(options).deadlineMs', 'a duration in ms above 0', o.deadlineMs);
  }
  if (o.onEvent !== undefined && typeof o.onEvent !== 'function')
    throw invalidOption('run(options).onEvent', 'a function', o.onEvent);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function')
    throw invalidOption('run(options).onProgress', 'a function', o.onProgress);
}

/**
 * Creates a troupe: a team of experts (XState actors) whose work runs on one shared pool of
 * worker threads, under a supervising coordinator.
 * @example
 * const troupe = createTroupe({ experts: [hasher], threads: 2 });
 * const outcome = await troupe.run({ analyze: (files) => files.map(...) }, files);
 * if (outcome.status === 'done') console.log(outcome.result, outcome.metrics.parallelism);
 * await troupe.close();
 */
export function createTroupe(options: TroupeOptions): Troupe {
  if (options === null || typeof options !== 'object')
    throw invalidOption('options', 'an object', options);
  const resolved = resolveOptions(options);
  if (!Array.isArray(options.experts) || options.experts.length === 0) {
    throw invalidOption(
      'options.experts',
      'a non-empty array of expert definitions',
      options.experts,
    );
  }
  const experts = options.experts.map((e, i) => resolveExpert(e, `options.experts[${i}]`));
  const seen = new Set<string>();
  for (const e of experts) {
    if (seen.has(e.name))
      throw invalidOption('options.experts', 'unique expert names', `"${e.name}" twice`);
    seen.add(e.name);
  }
  if (options.onMessageFailed !== undefined && typeof options.onMessageFailed !== 'function')
    throw invalidOption('options.onMessageFailed', 'a function', options.onMessageFailed);
  if (options.inspect !== undefined && typeof options.inspect !== 'function') {
    throw invalidOption(
      'options.inspect',
      'a function (inspection event) => void',
      options.inspect,
    );
  }
  const clock = options.clock ?? realClock;
  const random = options.random ?? Math.random;
  // The pool hands the router every ctx call of a task; the router lives in the core, made next.
  let served: Core | undefined;
  const pool = createPool({
    threads: resolved.threads,
    host: {
      call: (origin, module, op, args, thread) =>
        (served as Core).router.call(origin, module, op, args, thread),
    },
    ...(options.cancelGraceMs === undefined ? {} : { cancelGraceMs: options.cancelGraceMs }),
    ...(options.idleSpinMs === undefined ? {} : { idleSpinMs: options.idleSpinMs }),
    modules: Object.fromEntries(experts.map((e) => [e.name, { url: e.href, batch: e.batch }])),
    ...(options.moduleLoadTimeoutMs === undefined
      ? {}
      : { moduleLoadTimeoutMs: options.moduleLoadTimeoutMs }),
    ...(options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits }),
  });
  const core = new Core(resolved, experts, pool, clock, random);
  core.onMessageFailed = options.onMessageFailed;
  served = core;
  const actor: Actor<typeof coordinatorMachine> = createActor(coordinatorMachine, {
    input: { core },
    systemId: 'coordinator',
    ...(options.inspect === undefined ? {} : { inspect: options.inspect as never }),
    ...(options.clock === undefined
      ? {}
      : { clock: { setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout } as never }),
  });
  let closed = false;
  let closing: Promise<void> | undefined;
  let dead: TroupeError | undefined;
  const pending = new Map<string, Promise<Outcome>>();
  let sequence = 0;

  // A root actor whose error nobody observes rethrows it as an uncaught exception: observe it,
  // and settle every pending run if the root ever dies.
  actor.subscribe({
    error: (error) => {
      dead = new TroupeError(
        'E_INTERNAL',
        `troupe: the coordinator failed: ${error instanceof Error ? error.message : String(error)}`,
        {
          cause: error,
        },
      );
      for (const entry of [...core.runs.values()]) core.abandon(entry, dead);
    },
  });
  actor.start();

  function run<In, Result>(
    plan: Plan<In, Result>,
    input: In,
    runOptions: RunOptions = {},
  ): Promise<Outcome<Result>> {
    try {
      checkPlan(plan);
      checkRunOptions(runOptions);
    } catch (error) {
      return Promise.reject(error);
    }
    if (closed || dead !== undefined) {
      return Promise.reject(
        dead ?? new TroupeError('E_CLOSED', 'the troupe is closed: no run is taken after close()'),
      );
    }
    if (core.scheduler.queued >= resolved.maxQueuedSubtasks) {
      return Promise.reject(
        new TroupeError(
          'E_QUEUE_FULL',
          `${core.scheduler.queued} subtasks are waiting, the troupe's limit (maxQueuedSubtasks)`,
          {
            details: { maxQueuedSubtasks: resolved.maxQueuedSubtasks },
          },
        ),
      );
    }
    const { signal, deadlineMs } = runOptions;
    if (signal?.aborted) {
      return Promise.reject(
        new TroupeError('E_CANCELLED', 'the run was cancelled before it started', {
          cause: signal.reason,
        }),
      );
    }
    const runId = `run-${++sequence}`;
    const promise = new Promise<Outcome>((resolve) => {
      let timer: unknown;
      let onAbort: (() => void) | undefined;
      const entry: RunEntry = {
        runId,
        plan: plan as Plan,
        input,
        options: runOptions,
        ledger: undefined,
        controller: runController(),
        startedAt: clock.now(),
        restartsAtStart: core.restarts,
        resolve,
        ref: undefined,
        finished: false,
        messages: 0,
        pairs: new Map(),
        board: new Map(),
        boardBytes: 0,
        close: () => {
          if (timer !== undefined) clock.clearTimeout(timer);
          if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
        },
      };
      core.runs.set(runId, entry);
      if (deadlineMs !== undefined) {
        timer = clock.setTimeout(() => {
          const error = new TroupeError(
            'E_TIMEOUT',
            `the run passed its deadline of ${deadlineMs} ms`,
            { details: { deadlineMs } },
          );
          actor.send({ type: 'run.cancel', runId, error });
        }, deadlineMs);
      }
      if (signal !== undefined) {
        onAbort = () => {
          const error = new TroupeError('E_CANCELLED', 'the run was cancelled by its signal', {
            cause: signal.reason,
          });
          actor.send({ type: 'run.cancel', runId, error });
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      actor.send({ type: 'run.start', runId });
    });
    pending.set(runId, promise);
    void promise.then(() => pending.delete(runId));
    return promise as Promise<Outcome<Result>>;
  }

  async function close(closeOptions: { force?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (closeOptions === null || typeof closeOptions !== 'object')
      throw invalidOption('close(options)', 'an object', closeOptions);
    const force = closeOptions.force ?? false;
    const timeoutMs = closeOptions.timeoutMs ?? 30_000;
    if (typeof force !== 'boolean') throw invalidOption('close(options).force', 'a boolean', force);
    if (!isDuration(timeoutMs))
      throw invalidOption(
        'close(options).timeoutMs',
        'a duration in ms (a number >= 0)',
        timeoutMs,
      );
    closed = true;
    if (closing !== undefined && force) {
      // A forceful close while a gentle one waits: cancel what is left now.
      for (const runId of pending.keys()) {
        actor.send({
          type: 'run.cancel',
          runId,
          error: new TroupeError('E_CLOSED', 'the troupe was closed with force'),
        });
      }
    }
    closing ??= (async () => {
      if (!force && pending.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all(pending.values()),
          new Promise((resolve) => {
            timer = setTimeout(resolve, timeoutMs);
          }),
        ]);
        clearTimeout(timer);
      }
      for (const runId of pending.keys()) {
        const why = force
          ? 'the troupe was closed with force'
          : `the run did not finish within ${timeoutMs} ms of close()`;
        actor.send({ type: 'run.cancel', runId, error: new TroupeError('E_CLOSED', why) });
      }
      await Promise.all(pending.values());
      core.router.close(new TroupeError('E_CLOSED', 'the troupe closed before the answer came'));
      for (const resolve of core.probedWaiters.splice(0)) resolve();
      actor.stop();
      await pool.close({ timeoutMs: 1_000 });
    })();
    return closing;
  }

  return {
    run,
    experts: () => [...core.experts.values()].map((record) => core.info(record)),
    stats: () => ({
      runs: { active: core.runs.size, ...core.counts },
      subtasks: { queued: core.scheduler.queued, running: core.running },
      messages: { ...core.router.counts, waiting: core.router.waiting },
      experts: [...core.experts.values()].map((record) => core.info(record)),
    }),
    revive: (name: string) => {
      if (typeof name !== 'string' || !core.experts.has(name)) {
        throw invalidOption(
          'revive(name)',
          `the name of an expert (${[...core.experts.keys()].join(', ')})`,
          name,
        );
      }
      actor.send({ type: 'expert.revive', name });
    },
    probed: () => {
      const infos = () => [...core.experts.values()].map((record) => core.info(record));
      if (core.probed || closed) return Promise.resolve(infos());
      return new Promise<void>((resolve) => core.probedWaiters.push(resolve)).then(infos);
    },
    tell: (to, msg) => {
      if (closed)
        throw new TroupeError(
          'E_CLOSED',
          'the troupe is closed: no message is taken after close()',
        );
      core.router.tellFromMain(to, msg);
    },
    ask: <T>(to: Recipient, msg: unknown, askOptions?: AskOptions) => {
      if (closed) {
        return Promise.reject(
          new TroupeError('E_CLOSED', 'the troupe is closed: no message is taken after close()'),
        );
      }
      return core.router.askFromMain(to, msg, askOptions) as Promise<T>;
    },
    close,
  };
}
