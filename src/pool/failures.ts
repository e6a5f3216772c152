/**
 * The crash policy, in one place: how each way a task can fail on a thread becomes a typed
 * error, and who a dead thread is charged to. Pure functions of what the pool observed.
 */
import { deserializeError, messageOf, TroupeError } from '../errors.js';
import type { UncloneableAt } from './clone.js';
import type { Blame } from './jobs.js';
import type { LaneReading } from './lanes.js';
import type { ItemResult } from './protocol.js';

export { messageOf };

export function cancelledError(signal: AbortSignal): TroupeError {
  return new TroupeError('E_CANCELLED', 'the task was cancelled by its signal', {
    cause: signal.reason,
  });
}

export function timeoutError(module: string, timeoutMs: number): TroupeError {
  return new TroupeError(
    'E_TIMEOUT',
    `${module}: the task ran longer than its ${timeoutMs} ms timeout`,
    {
      details: { module, timeoutMs },
    },
  );
}

export function neverStartedError(module: string, timeoutMs: number, graceMs: number): TroupeError {
  return new TroupeError(
    'E_TIMEOUT',
    `${module}: no thread started the task within ${timeoutMs + graceMs} ms of its hand-off (timeoutMs ${timeoutMs} + startGraceMs ${graceMs})`,
    { details: { module, timeoutMs } },
  );
}

export function loadBlockedError(module: string, limitMs: number): TroupeError {
  return new TroupeError(
    'E_MODULE_LOAD',
    `module "${module}" blocked its thread for more than ${limitMs} ms while loading`,
    {
      details: { module, moduleLoadTimeoutMs: limitMs },
    },
  );
}

/** The thread died while running an item: out of memory, or any other death. */
export function crashError(module: string, error: unknown): TroupeError {
  if ((error as { code?: unknown } | null)?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return new TroupeError(
      'E_WORKER_OOM',
      `${module}: the worker thread ran out of memory (resourceLimits)`,
      {
        cause: error,
        details: { module },
      },
    );
  }
  const exit = /exited with code: (\d+)/.exec(messageOf(error));
  const exitCode = exit === null ? undefined : Number(exit[1]);
  return new TroupeError(
    'E_WORKER_CRASHED',
    `${module}: the worker thread died while running the task (${messageOf(error)})`,
    {
      cause: error,
      details: exitCode === undefined ? { module } : { module, exitCode },
    },
  );
}

/**
 * A task's input refused (or its output failed) for weighing more than its limit, naming the
 * subtask when the task is one.
 */
export function tooLarge(
  module: string,
  what: 'input' | 'output',
  limit: number,
  bytes: number,
  subtask: string | undefined,
): TroupeError {
  const whose = subtask === undefined ? `the ${what}` : `subtask "${subtask}"'s ${what}`;
  const option = what === 'input' ? 'maxInputBytes' : 'maxOutputBytes';
  const unsent = what === 'output' ? '; nothing was sent' : '';
  return new TroupeError(
    'E_TOO_LARGE',
    `${module}: ${whose} weighs more than ${option} (${limit}): at least ${bytes} bytes${unsent}`,
    { details: { module, ...(subtask === undefined ? {} : { subtask }), limit, bytes } },
  );
}

/** An item the thread reported as failed: the handler threw, the module did not load, or the probe failed. */
export function itemError(
  module: string,
  result: Extract<ItemResult, { ok: false }>,
  subtask?: string,
): TroupeError {
  const remote = deserializeError(result.e);
  switch (result.code) {
    case 'E_TOO_LARGE': {
      // The thread weighed the output (see the worker's `weighed`) and sent what it found.
      const details = remote instanceof TroupeError ? remote.details : undefined;
      const limit = typeof details?.limit === 'number' ? details.limit : Number.NaN;
      const bytes = typeof details?.bytes === 'number' ? details.bytes : Number.NaN;
      return tooLarge(module, 'output', limit, bytes, subtask);
    }
    case 'E_MODULE_LOAD':
      return remote instanceof TroupeError && remote.code === 'E_MODULE_LOAD'
        ? new TroupeError('E_MODULE_LOAD', remote.message, {
            cause: remote.cause,
            details: { module },
          })
        : new TroupeError('E_MODULE_LOAD', `module "${module}" failed to load: ${remote.message}`, {
            cause: remote,
            details: { module },
          });
    case 'E_PROBE_FAILED':
      return new TroupeError('E_PROBE_FAILED', `${module}: probe failed: ${remote.message}`, {
        cause: remote,
        details: { module },
      });
    default:
      return new TroupeError('E_TASK_FAILED', `${module}: ${remote.message}`, {
        cause: remote,
        details: { module },
      });
  }
}

/** What the pool knows when Piscina rejects a hand-off it did not kill itself. */
export interface DeathReport {
  module: string;
  /** Piscina's rejection. */
  error: unknown;
  /** What the hand-off's lane said at that moment. */
  lane: LaneReading;
  /** The pool itself ended this thread (a kill, a stray error, an unsendable answer): nothing else on it is to blame. */
  terminatedByPool: boolean;
  /**
   * No thread died: the message could not be posted (cloning an input threw — a getter, a value
   * nested too deep, a proxy). The thread it was for is alive and never saw it.
   */
  postFailed: boolean;
  /** Finds the input (or context) of an item that cannot be cloned, for a failed post. */
  uncloneableInput: () => { item: number; at: UncloneableAt } | undefined;
}

/**
 * Who a dead hand-off is charged to. Only the item that was running when its thread died is
 * blamed; items that had not started, or whose thread the pool was replacing, run elsewhere.
 */
export function blame(report: DeathReport): Blame {
  const { module, error, lane } = report;
  const cloneError = error instanceof Error && error.name === 'DataCloneError';
  if (cloneError || report.postFailed) {
    const found = report.uncloneableInput();
    if (found === undefined) {
      return {
        item: 'all',
        error: new TroupeError(
          'E_NOT_CLONEABLE',
          `${module}: the task cannot be sent to a worker thread: ${messageOf(error)}`,
          { cause: error, details: { module } },
        ),
      };
    }
    return {
      item: found.item,
      error: new TroupeError(
        'E_NOT_CLONEABLE',
        `${module}: ${found.at.path} cannot be sent to a worker thread: it is ${found.at.what}`,
        {
          cause: error,
          details: { module, path: found.at.path },
        },
      ),
    };
  }
  // Not started, or its answer was posted but not read when the thread died (of the next
  // message), or the pool itself ended the thread: it runs again elsewhere.
  if (lane.state === 'handed' || lane.state === 'done' || report.terminatedByPool)
    return { item: 'none', error: crashError(module, error) };
  if (lane.state === 'loading') {
    return {
      item: 'all',
      error: new TroupeError(
        'E_MODULE_LOAD',
        `module "${module}" killed its thread while loading: ${messageOf(error)}`,
        {
          cause: error,
          details: { module },
        },
      ),
    };
  }
  return { item: lane.item, error: crashError(module, error) };
}
