/**
 * The error catalogue: one class, stable string codes, and the one place where errors are
 * serialised across the thread boundary (structured clone drops subclasses and own fields).
 */

/** Stable error codes. Codes are only ever added; the meaning of one never changes. */
export const ERROR_CODES = {
  E_INVALID_OPTION: 'an option has the wrong type or is out of range',
  E_INVALID_GRAPH: 'the subtask graph has a duplicate id or an unknown dependency',
  E_CYCLE: 'the subtask graph has a cycle',
  E_NO_EXPERT: 'no expert has the skill a subtask needs',
  E_MODULE_LOAD: 'an expert module failed to load (or took too long) on a worker thread',
  E_PROBE_FAILED: "an expert's probe failed",
  E_EXPERT_RETIRED: 'the expert was retired after repeated failures',
  E_TASK_FAILED: 'the task threw an error',
  E_WORKER_CRASHED: 'the worker thread running the task exited or crashed',
  E_WORKER_OOM: 'the worker thread ran out of memory (resourceLimits)',
  E_TIMEOUT: 'the task ran longer than its timeout',
  E_CANCELLED: 'the task was cancelled',
  E_QUALITY: 'the result failed validation',
  E_QUEUE_FULL: 'the queue bound was reached',
  E_CLOSED: 'the pool or troupe is closed',
  E_NOT_CLONEABLE: 'a value cannot be sent to or from a worker thread (structured clone)',
  E_TOO_LARGE: 'a value is larger than its limit',
  E_ASK_TIMEOUT: 'an ask got no answer in time',
  E_NO_RECIPIENT: 'no expert matches the recipient of a message',
  E_ASK_DEADLOCK: 'a cycle of asks holds every thread',
  E_PLAN_INVALID: 'a plan file does not match the schema',
  E_OUTSIDE_PLAN: 'a plan refers to a module outside its folder',
  E_INTERNAL: 'a bug in troupe',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Options of a {@link TroupeError}. */
export interface TroupeErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** Structured facts about the failure (field names, paths, limits), kept in `toJSON()`. */
  details?: Record<string, unknown>;
}

/** Every error that crosses troupe's public API. Switch on `code`, never on `message`. */
export class TroupeError extends Error {
  /** The stable code: see {@link ERROR_CODES}. */
  readonly code: ErrorCode;
  /** Structured facts about the failure. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: TroupeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }

  override get name(): string {
    return 'TroupeError';
  }

  toJSON(): TroupeErrorJSON {
    const json: TroupeErrorJSON = { name: this.name, code: this.code, message: this.message };
    if (this.details !== undefined) json.details = this.details;
    if (this.cause !== undefined) json.cause = errorToJSON(this.cause);
    return json;
  }
}

/** The JSON form of a {@link TroupeError}. */
export interface TroupeErrorJSON {
  name: string;
  code: string;
  message: string;
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** True when `error` is a {@link TroupeError}, with the given code if one is passed. */
export function isTroupeError(error: unknown, code?: ErrorCode): error is TroupeError {
  return error instanceof TroupeError && (code === undefined || error.code === code);
}

function errorToJSON(error: unknown): unknown {
  if (error instanceof TroupeError) return error.toJSON();
  if (error instanceof Error) {
    const json: Record<string, unknown> = { name: error.name, message: error.message };
    const code = (error as { code?: unknown }).code;
    if (code !== undefined) json.code = code;
    if (error.cause !== undefined) json.cause = errorToJSON(error.cause);
    return json;
  }
  return error;
}

/** Describes a received value for an error message: its type and a short rendering. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${typeof value} ${String(value)}`;
  }
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`;
  if (typeof value === 'symbol') return `a symbol (${value.description ?? ''})`;
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  const ctor = (value as object).constructor;
  return ctor && ctor !== Object ? `an instance of ${ctor.name}` : 'an object';
}

/** The error for a bad option: names the field, the expectation and what was given. */
export function invalidOption(field: string, expected: string, received: unknown): TroupeError {
  return new TroupeError(
    'E_INVALID_OPTION',
    `${field}: expected ${expected}, got ${describe(received)}`,
    {
      details: { field, expected },
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Serialisation across the thread boundary.

/** An error as it crosses a MessagePort: plain data only. */
export interface WireError {
  name: string;
  message: string;
  stack?: string | undefined;
  code?: string | undefined;
  details?: Record<string, unknown> | undefined;
  cause?: WireError | undefined;
}

/** Turns anything thrown into plain, cloneable data. Never throws. */
export function serializeError(error: unknown, depth = 0): WireError {
  if (error instanceof Error) {
    const wire: WireError = { name: error.name, message: error.message, stack: error.stack };
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') wire.code = code;
    const details = (error as { details?: unknown }).details;
    if (details !== null && typeof details === 'object') {
      try {
        wire.details = structuredClone(details) as Record<string, unknown>;
      } catch {
        // details that cannot cross are dropped rather than losing the error itself
      }
    }
    if (error.cause !== undefined && depth < 8) wire.cause = serializeError(error.cause, depth + 1);
    return wire;
  }
  let message: string;
  try {
    message = typeof error === 'string' ? error : `non-error value thrown: ${String(error)}`;
  } catch {
    message = 'non-error value thrown';
  }
  return { name: 'Error', message };
}

/** Rebuilds a remote error: a {@link TroupeError} when it carried one of our codes, else an Error. */
export function deserializeError(wire: WireError): Error {
  const cause = wire.cause === undefined ? undefined : deserializeError(wire.cause);
  let error: Error;
  if (wire.name === 'TroupeError' && wire.code !== undefined && wire.code in ERROR_CODES) {
    const options: TroupeErrorOptions = {};
    if (cause !== undefined) options.cause = cause;
    if (wire.details !== undefined) options.details = wire.details;
    error = new TroupeError(wire.code as ErrorCode, wire.message, options);
  } else {
    error = new Error(wire.message, cause === undefined ? undefined : { cause });
    if (wire.name !== 'Error') {
      Object.defineProperty(error, 'name', {
        value: wire.name,
        configurable: true,
        writable: true,
      });
    }
    if (wire.code !== undefined) (error as Error & { code?: string }).code = wire.code;
  }
  if (wire.stack !== undefined) error.stack = wire.stack;
  return error;
}
