/**
 * `createTroupe`: the library's front door. It checks the options, starts the shared pool and
 * the coordinator actor, admits runs, and settles every pending run when it closes.
 */
import { setMaxListeners } from 'node:events';
import { availableParallelism } from 'node:os';
import type { ResourceLimits } from 'node:worker_threads';
import { type Actor, createActor } from 'xstate';
import { type ResolvedExpert, resolveExpert } from './actors/experts.js';
import { SUPERVISION_DEFAULTS } from './actors/supervision.js';
import { Core, queueFull } from './core.js';
import { invalidOption, messageOf, TroupeError, wrapThrown } from './errors.js';
import type { Executor } from './executors/executor.js';
import { executorStart } from './executors/redis/options.js';
import { type Fields, isInstance, readArray, readFields } from './fields.js';
import { Inspection, readInspect } from './inspect/inspect.js';
import { coordinatorMachine } from './machines/coordinator.js';
import type { ResolvedTroupe } from './options.js';
import { type ContextHost, resolveResourceLimits } from './pool/options.js';
import { DEFAULT_PAYLOAD_BYTES } from './pool/payload.js';
import { createPool } from './pool/pool.js';
import { Run } from './runs/run.js';
import { didYouMean } from './suggest.js';
import { loadTelemetry } from './trace/otel.js';
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
import {
  DURATION,
  isDuration,
  isPositiveDuration,
  isPositiveInteger,
  MAX_ATTEMPTS,
  MAX_INT32,
  MAX_THREADS,
  POSITIVE_DURATION,
} from './validate.js';

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

/** Options of the local threads, which a troupe with an `executor` does not have. */
export const LOCAL_POOL_KEYS = [
  'threads',
  'resourceLimits',
  'cancelGraceMs',
  'idleSpinMs',
  'moduleLoadTimeoutMs',
  'maxInputBytes',
  'maxOutputBytes',
] as const;

/** Every key of {@link TroupeOptions}. */
const TROUPE_KEYS = [
  'experts',
  'threads',
  'timeoutMs',
  'attempts',
  'retryBackoffMs',
  'maxRetryBackoffMs',
  'maxQueuedSubtasks',
  'supervision',
  'askTimeoutMs',
  'onMessageFailed',
  'cancelGraceMs',
  'idleSpinMs',
  'maxBlackboardBytes',
  'maxInputBytes',
  'maxOutputBytes',
  'maxSubtasksPerRun',
  'moduleLoadTimeoutMs',
  'resourceLimits',
  'inspect',
  'openTelemetry',
  'executor',
  'clock',
  'random',
] as const;

const SUPERVISION_KEYS = [
  'intensity',
  'windowMs',
  'restartBackoffMs',
  'maxRestartBackoffMs',
  'maxProbeFailures',
] as const;

type TroupeFields = Fields<(typeof TROUPE_KEYS)[number]>;

function duration(value: unknown, field: string, fallback: number): number {
  const ms = value ?? fallback;
  if (!isDuration(ms)) throw invalidOption(field, DURATION, ms);
  return ms;
}

function resolveOptions(o: TroupeFields): ResolvedTroupe {
  const threads = o.threads ?? Math.min(availableParallelism(), MAX_THREADS);
  if (!isPositiveInteger(threads, MAX_THREADS))
    throw invalidOption('options.threads', `an integer from 1 to ${MAX_THREADS}`, threads);
  const attempts = o.attempts ?? 3;
  if (!isPositiveInteger(attempts, MAX_ATTEMPTS))
    throw invalidOption('options.attempts', `an integer from 1 to ${MAX_ATTEMPTS}`, attempts);
  const askTimeoutMs = o.askTimeoutMs ?? 30_000;
  if (!isPositiveDuration(askTimeoutMs))
    throw invalidOption('options.askTimeoutMs', POSITIVE_DURATION, askTimeoutMs);
  const maxBlackboardBytes = o.maxBlackboardBytes ?? 64 * 1024 * 1024;
  if (!isPositiveInteger(maxBlackboardBytes))
    throw invalidOption(
      'options.maxBlackboardBytes',
      'a positive integer (bytes)',
      maxBlackboardBytes,
    );
  const maxQueuedSubtasks = o.maxQueuedSubtasks ?? 1_000_000;
  if (!isPositiveInteger(maxQueuedSubtasks))
    throw invalidOption('options.maxQueuedSubtasks', 'a positive integer', maxQueuedSubtasks);
  const maxSubtasksPerRun = o.maxSubtasksPerRun ?? 1_000_000;
  if (!isPositiveInteger(maxSubtasksPerRun))
    throw invalidOption('options.maxSubtasksPerRun', 'a positive integer', maxSubtasksPerRun);
  for (const key of ['maxInputBytes', 'maxOutputBytes'] as const) {
    const bytes = o[key];
    if (!(bytes === undefined || bytes === Number.POSITIVE_INFINITY || isPositiveInteger(bytes)))
      throw invalidOption(`options.${key}`, 'a positive integer (bytes) or Infinity', bytes);
  }
  const s =
    o.supervision === undefined
      ? {}
      : readFields(o.supervision, 'options.supervision', SUPERVISION_KEYS);
  const supervision = { ...SUPERVISION_DEFAULTS };
  for (const key of ['intensity', 'maxProbeFailures'] as const) {
    const value = s[key] ?? SUPERVISION_DEFAULTS[key];
    if (!isPositiveInteger(value, MAX_INT32))
      throw invalidOption(`options.supervision.${key}`, `an integer from 1 to ${MAX_INT32}`, value);
    supervision[key] = value;
  }
  for (const key of ['windowMs', 'restartBackoffMs', 'maxRestartBackoffMs'] as const)
    supervision[key] = duration(s[key], `options.supervision.${key}`, SUPERVISION_DEFAULTS[key]);
  return {
    threads,
    timeoutMs: duration(o.timeoutMs, 'options.timeoutMs', 0),
    attempts,
    retryBackoffMs: duration(o.retryBackoffMs, 'options.retryBackoffMs', 50),
    maxRetryBackoffMs: duration(o.maxRetryBackoffMs, 'options.maxRetryBackoffMs', 2_000),
    maxQueuedSubtasks,
    maxSubtasksPerRun,
    askTimeoutMs,
    maxBlackboardBytes,
    supervision,
  };
}

/** The troupe's clock: the real one, or the caller's, checked to have what troupe calls. */
function resolveClock(value: unknown): Clock {
  if (value === undefined) return realClock;
  const clock = readFields(
    value,
    'options.clock',
    ['now', 'setTimeout', 'clearTimeout'],
    'an object { now, setTimeout, clearTimeout }',
    'E_INVALID_OPTION',
    'near-miss',
  );
  for (const key of ['now', 'setTimeout', 'clearTimeout'] as const) {
    if (typeof clock[key] !== 'function')
      throw invalidOption(`options.clock.${key}`, 'a function', clock[key]);
  }
  const { now, setTimeout: set, clearTimeout: clear } = clock as unknown as Clock;
  // Called on the caller's object (a clock may be an instance whose methods use `this`).
  const bound: Clock = {
    now: () => now.call(value),
    setTimeout: (callback, ms) => set.call(value, callback, ms),
    clearTimeout: (handle) => clear.call(value, handle),
  };
  let first: unknown;
  try {
    first = bound.now();
  } catch (error) {
    throw wrapThrown(error, 'E_INVALID_OPTION', 'options.clock.now() threw');
  }
  if (!(typeof first === 'number' && Number.isFinite(first)))
    throw invalidOption('options.clock.now()', 'to return a finite number of ms', first);
  return bound;
}

/**
 * The troupe's random source, in [0, 1): the caller's is checked when given, and each draw too (a
 * draw outside [0, 1) would make a backoff NaN or negative: that is the caller's bug, named).
 */
function resolveRandom(value: unknown): () => number {
  if (value === undefined) return Math.random;
  if (typeof value !== 'function')
    throw invalidOption('options.random', 'a function () => number in [0, 1)', value);
  const random = value as () => unknown;
  return () => {
    let draw: unknown;
    try {
      draw = random();
    } catch (error) {
      throw wrapThrown(error, 'E_INVALID_OPTION', 'options.random() threw');
    }
    if (!(typeof draw === 'number' && draw >= 0 && draw < 1))
      throw invalidOption('options.random()', 'to return a number in [0, 1)', draw);
    return draw;
  };
}

const PLAN_KEYS = ['name', 'analyze', 'integrate', 'validate'] as const;
const RUN_KEYS = ['signal', 'deadlineMs', 'onEvent', 'onProgress'] as const;

/** A plan's functions, read once (the plan stays `this` when they are called). */
function readPlan(plan: unknown): Plan {
  const p = readFields(
    plan,
    'plan',
    PLAN_KEYS,
    'an object { analyze, integrate?, validate? }',
    'E_INVALID_OPTION',
    'near-miss',
  );
  if (typeof p.analyze !== 'function')
    throw invalidOption('plan.analyze', 'a function (input) => subtasks', p.analyze);
  if (p.integrate !== undefined && typeof p.integrate !== 'function')
    throw invalidOption('plan.integrate', 'a function', p.integrate);
  if (p.validate !== undefined && typeof p.validate !== 'function')
    throw invalidOption('plan.validate', 'a function', p.validate);
  if (p.name !== undefined && typeof p.name !== 'string')
    throw invalidOption('plan.name', 'a string', p.name);
  return p as unknown as Plan;
}

function readRunOptions(options: unknown): RunOptions {
  const o = readFields(options, 'run(options)', RUN_KEYS);
  if (o.signal !== undefined && !isInstance(o.signal, AbortSignal))
    throw invalidOption('run(options).signal', 'an AbortSignal', o.signal);
  if (o.deadlineMs !== undefined && !isPositiveDuration(o.deadlineMs))
    throw invalidOption('run(options).deadlineMs', POSITIVE_DURATION, o.deadlineMs);
  if (o.onEvent !== undefined && typeof o.onEvent !== 'function')
    throw invalidOption('run(options).onEvent', 'a function', o.onEvent);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function')
    throw invalidOption('run(options).onProgress', 'a function', o.onProgress);
  return o as RunOptions;
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
  return openTroupe(options).troupe;
}

/**
 * createTroupe, with the runtime it made: for troupe's own tests of paths no public input
 * reaches (a run the runtime abandons).
 * @internal
 */
export function openTroupe(options: TroupeOptions): { troupe: Troupe; core: Core } {
  const o = readFields(options, 'options', TROUPE_KEYS);
  const resolved = resolveOptions(o);
  const list = readArray(o.experts, 'options.experts', 'a non-empty array of expert definitions');
  if (list.items.length === 0)
    throw invalidOption('options.experts', 'a non-empty array of expert definitions', o.experts);
  const experts = list.items.map((e, i) => resolveExpert(e, `options.experts[${i}]`));
  const seen = new Set<string>();
  for (const e of experts) {
    if (seen.has(e.name))
      throw invalidOption('options.experts', 'unique expert names', `"${e.name}" twice`);
    seen.add(e.name);
  }
  if (o.onMessageFailed !== undefined && typeof o.onMessageFailed !== 'function')
    throw invalidOption('options.onMessageFailed', 'a function', o.onMessageFailed);
  const inspect = readInspect(o.inspect, 'options.inspect');
  const inspection = inspect === undefined ? undefined : new Inspection(inspect);
  if (o.openTelemetry !== undefined && typeof o.openTelemetry !== 'boolean')
    throw invalidOption('options.openTelemetry', 'a boolean', o.openTelemetry);
  // Loaded now, when asked for: an optional peer, and a missing one is said at once.
  const telemetry = o.openTelemetry === true ? loadTelemetry('options.openTelemetry') : undefined;
  const clock = resolveClock(o.clock);
  const random = resolveRandom(o.random);
  const resourceLimits = resolveResourceLimits(o.resourceLimits, 'options.resourceLimits');
  // (A pool leaves out the options given as undefined: its defaults hold for them.)
  const startPool = (
    threads: number,
    of: ResolvedExpert[],
    limits: ResourceLimits | undefined,
    host: ContextHost,
  ) =>
    createPool({
      threads,
      host,
      cancelGraceMs: o.cancelGraceMs as number | undefined,
      idleSpinMs: o.idleSpinMs as number | undefined,
      modules: Object.fromEntries(of.map((e) => [e.name, { url: e.href, batch: e.batch }])),
      moduleLoadTimeoutMs: o.moduleLoadTimeoutMs as number | undefined,
      resourceLimits: limits,
      maxInputBytes: (o.maxInputBytes as number | undefined) ?? DEFAULT_PAYLOAD_BYTES,
      maxOutputBytes: (o.maxOutputBytes as number | undefined) ?? DEFAULT_PAYLOAD_BYTES,
    });
  // An expert with limits of its own runs on threads of its own, started with them; a heap
  // limit is a thread's, so no thread can hold two experts' limits.
  const startExecutor = executorStart(o.executor, 'options.executor');
  if (startExecutor !== undefined)
    for (const key of LOCAL_POOL_KEYS)
      if (o[key] !== undefined)
        throw invalidOption(
          `options.${key}`,
          'nothing with options.executor (it sets the local threads; troupe worker takes its own)',
          o[key],
        );
  const startPools = (host: ContextHost) => {
    // Elsewhere: one executor for every expert (each worker gives its experts threads of their own).
    if (startExecutor !== undefined)
      return {
        pool: startExecutor({ experts: experts.map((e) => e.name), host }),
        ownPools: new Map<string, Executor>(),
      };
    const own = experts.filter((e) => e.resourceLimits !== undefined);
    const onShared = experts.filter((e) => e.resourceLimits === undefined);
    // No shared threads when every expert has threads of its own: they would idle.
    const pool =
      onShared.length === 0
        ? undefined
        : startPool(resolved.threads, onShared, resourceLimits, host);
    const ownPools = new Map<string, Executor>();
    try {
      for (const e of own)
        ownPools.set(
          e.name,
          startPool(
            Math.min(e.concurrency, resolved.threads),
            [e],
            { ...resourceLimits, ...e.resourceLimits },
            host,
          ),
        );
    } catch (error) {
      // A pool that could not start: the ones started before it must not keep threads alive.
      for (const started of [pool, ...ownPools.values()]) void started?.close({ force: true });
      throw error;
    }
    return { pool, ownPools };
  };
  const core = new Core({
    options: resolved,
    experts,
    clock,
    random,
    onMessageFailed: o.onMessageFailed as Core['onMessageFailed'],
    inspection,
    startPools,
  });
  const actor: Actor<typeof coordinatorMachine> = createActor(coordinatorMachine, {
    input: { core },
    systemId: 'coordinator',
    // Summarised and bounded (src/inspect/); an observer that throws never stops the machines.
    ...(inspection === undefined ? {} : { inspect: inspection.observer }),
    ...(o.clock === undefined
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
      dead = new TroupeError('E_INTERNAL', `troupe: the coordinator failed: ${messageOf(error)}`, {
        cause: error,
      });
      for (const run of [...core.runs.values()]) core.abandon(run, dead);
    },
  });
  actor.start();

  function run<In, Result>(
    plan: Plan<In, Result>,
    input: In,
    runOptions: RunOptions = {},
  ): Promise<Outcome<Result>> {
    let checked: Plan;
    let options: RunOptions;
    try {
      checked = readPlan(plan);
      options = readRunOptions(runOptions);
    } catch (error) {
      return Promise.reject(error);
    }
    if (closed || dead !== undefined) {
      return Promise.reject(
        dead ?? new TroupeError('E_CLOSED', 'the troupe is closed: no run is taken after close()'),
      );
    }
    // Full already: refused before anything runs (a run that would pass the bound once analysed
    // is refused then, failed at 'analyzing': see the run machine's guard overBound).
    const waiting = core.outstanding();
    if (waiting >= resolved.maxQueuedSubtasks)
      return Promise.reject(queueFull(resolved.maxQueuedSubtasks, waiting, undefined));
    const { signal } = options;
    if (signal?.aborted) {
      return Promise.reject(
        new TroupeError('E_CANCELLED', 'the run was cancelled before it started', {
          cause: signal.reason,
        }),
      );
    }
    const runId = `run-${++sequence}`;
    // The run's span starts at admission, under the span active in the caller now.
    const span = telemetry?.start(runId, checked.name ?? 'run');
    const promise = new Promise<Outcome>((resolve) => {
      const run = new Run({
        runId,
        plan: checked,
        self: plan,
        input,
        options,
        controller: runController(),
        maxBlackboardBytes: resolved.maxBlackboardBytes,
        host: core,
        cancel: (error) => actor.send({ type: 'run.cancel', runId, error }),
        resolve:
          span === undefined
            ? resolve
            : (outcome) => {
                // A tracer that throws must not keep the caller from its outcome.
                try {
                  span.end(outcome);
                } catch {}
                resolve(outcome);
              },
      });
      core.runs.set(runId, run);
      actor.send({ type: 'run.start', runId });
    });
    pending.set(runId, promise);
    void promise.then(() => pending.delete(runId));
    return promise as Promise<Outcome<Result>>;
  }

  async function close(closeOptions: { force?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const given = readFields(closeOptions, 'close(options)', ['force', 'timeoutMs']);
    const force = given.force ?? false;
    if (typeof force !== 'boolean') throw invalidOption('close(options).force', 'a boolean', force);
    const timeoutMs = duration(given.timeoutMs, 'close(options).timeoutMs', 30_000);
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
      await Promise.all(core.pools().map((each) => each.close({ timeoutMs: 1_000 })));
    })();
    return closing;
  }

  const troupe: Troupe = {
    run,
    experts: () => [...core.experts.values()].map((record) => core.info(record)),
    stats: () => ({
      runs: { active: core.runs.size, ...core.counts },
      subtasks: {
        queued: core.scheduler.queued,
        running: core.dispatcher.running,
        outstanding: core.outstanding(),
      },
      messages: { ...core.router.counts, waiting: core.router.waiting },
      experts: [...core.experts.values()].map((record) => core.info(record)),
    }),
    revive: (name: string) => {
      if (typeof name !== 'string' || !core.experts.has(name)) {
        const names = [...core.experts.keys()];
        const hint = typeof name === 'string' ? didYouMean(name, names) : '';
        throw invalidOption(
          'revive(name)',
          `the name of an expert (${names.join(', ')})`,
          name,
          hint,
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
  return { troupe, core };
}
