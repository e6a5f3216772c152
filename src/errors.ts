/**
 * The error catalogue: one class, stable string codes, the one place where errors are serialised
 * across the thread boundary (structured clone drops subclasses and own fields), and the one way
 * to read what user code threw or returned: without trusting it (a proxy's traps, a getter, a
 * `toString` may throw; an object may have no prototype), so that describing a value for an
 * error message never throws itself.
 */
import * as types from 'node:util/types';

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
  E_UNAVAILABLE: 'the service work travels through (Redis) cannot be reached',
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
    if (this.cause !== undefined) json.cause = errorToJSON(this.cause, 1);
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

/** True when `error` is a {@link TroupeError}, with the given code if one is passed. Never throws. */
export function isTroupeError(error: unknown, code?: ErrorCode): error is TroupeError {
  // `instanceof` runs a proxy's getPrototypeOf trap (a revoked one throws): no proxy is ours.
  if (types.isProxy(error) || !instanceOf(error, TroupeError)) return false;
  return code === undefined || (error as TroupeError).code === code;
}

/** A thrown value as JSON-safe data: never throws, and stops at a depth (causes may cycle). */
function errorToJSON(error: unknown, depth = 0): unknown {
  if (isTroupeError(error)) {
    const json: TroupeErrorJSON = { name: error.name, code: error.code, message: error.message };
    if (error.details !== undefined) json.details = error.details;
    if (error.cause !== undefined && depth < 8) json.cause = errorToJSON(error.cause, depth + 1);
    return json;
  }
  if (isError(error)) {
    const json: Record<string, unknown> = {
      name: textOf(read(error, 'name'), 'Error'),
      message: messageOf(error),
    };
    const code = read(error, 'code');
    if (typeof code === 'string' || typeof code === 'number') json.code = code;
    const cause = read(error, 'cause');
    if (cause !== undefined && depth < 8) json.cause = errorToJSON(cause, depth + 1);
    return json;
  }
  // Not an error: a primitive as it is, anything else in words (it may not survive JSON).
  if (typeof error === 'string' || typeof error === 'number' || typeof error === 'boolean')
    return error;
  if (error === null || error === undefined) return error;
  return describe(error);
}

/** An Error (not a proxy of one: testing a proxy runs its traps). Never throws. */
function isError(value: unknown): value is Error {
  return !types.isProxy(value) && instanceOf(value, Error);
}

/** `value instanceof type`, false where that throws: a proxy up the prototype chain may. */
function instanceOf(value: unknown, type: abstract new (...args: never[]) => unknown): boolean {
  try {
    return value instanceof type;
  } catch {
    return false;
  }
}

/** `value[key]`, or undefined when reading it throws (a getter, a proxy's trap). */
function read(value: object, key: string): unknown {
  try {
    return (value as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

function textOf(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

/**
 * What user code threw, in words, for an error message: an error's message, a string as it is,
 * anything else described (`an object with no prototype (not an Error)`). Never throws: a
 * message getter that throws, a proxy, a `toString` that throws are described, never called.
 */
export function messageOf(thrown: unknown): string {
  try {
    if (typeof thrown === 'string') return thrown;
    if (isError(thrown)) {
      let message: unknown;
      try {
        message = thrown.message;
      } catch {
        return `an ${textOf(read(thrown, 'name'), 'Error')} whose message cannot be read`;
      }
      return typeof message === 'string'
        ? message
        : `an error whose message is ${describe(message)}`;
    }
    if (typeof thrown === 'number' || typeof thrown === 'boolean' || typeof thrown === 'bigint')
      return String(thrown);
    return `${describe(thrown)} (not an Error)`;
  } catch {
    return 'a value that cannot be read';
  }
}

/**
 * Whatever user code threw, as a {@link TroupeError}: one already (its code kept), or a new one
 * of `code` whose message is `what: <what was thrown>`, with the thrown value as its cause.
 * Never throws. Every callback troupe calls (analyze, integrate, validate, onMessage, …) ends
 * through here.
 */
export function wrapThrown(
  thrown: unknown,
  code: ErrorCode,
  what: string,
  details?: Record<string, unknown>,
): TroupeError {
  if (isTroupeError(thrown)) return thrown;
  const options: TroupeErrorOptions = { cause: thrown };
  if (details !== undefined) options.details = details;
  return new TroupeError(code, `${what}: ${messageOf(thrown)}`, options);
}

/**
 * Calls an observer of the caller's (`onEvent`, `onProgress`, `onMessageFailed`, `inspect`,
 * `onStrayError`) with `arg`: what it throws is ignored, and so is the rejection of a promise it
 * returns (an async logger that fails would otherwise be an unhandled rejection, which ends a
 * Node process). A logger failing is never the run's failure.
 */
export function notify<A>(observer: (arg: A) => unknown, arg: A): void {
  try {
    const returned = observer(arg);
    if (types.isPromise(returned)) Promise.prototype.then.call(returned, undefined, ignore);
  } catch {
    // the caller's observer failing is not troupe's failure
  }
}

function ignore(): void {}

/**
 * Describes a received value for an error message: its type and a short rendering. Never
 * throws, and runs none of the value's own code (no getter, trap or `toString`).
 */
export function describe(value: unknown): string {
  try {
    return describeValue(value);
  } catch {
    return 'a value that cannot be described';
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${typeof value} ${String(value)}`;
  }
  if (typeof value === 'symbol') return `a symbol (${value.description ?? ''})`;
  if (types.isProxy(value))
    return typeof value === 'function' ? 'a proxy of a function' : 'a proxy';
  if (typeof value === 'function') {
    const name: unknown = Object.getOwnPropertyDescriptor(value, 'name')?.value;
    return `a function${typeof name === 'string' && name !== '' ? ` (${name})` : ''}`;
  }
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === null) return 'an object with no prototype';
  if (proto === Object.prototype) return 'an object';
  // The constructor's name, read from data properties only (no getter is called).
  const ctor: unknown = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value;
  const name: unknown =
    typeof ctor === 'function' ? Object.getOwnPropertyDescriptor(ctor, 'name')?.value : undefined;
  return typeof name === 'string' && name !== '' ? `an instance of ${name}` : 'an object';
}

/**
 * The error for a bad option: names the field, the expectation and what was given (then `hint`,
 * e.g. "; did you mean …?").
 */
export function invalidOption(
  field: string,
  expected: string,
  received: unknown,
  hint = '',
): TroupeError {
  return new TroupeError(
    'E_INVALID_OPTION',
    `${field}: expected ${expected}, got ${describe(received)}${hint}`,
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
  if (isError(error)) {
    const wire: WireError = {
      name: textOf(read(error, 'name'), 'Error'),
      message: messageOf(error),
    };
    const stack = read(error, 'stack');
    if (typeof stack === 'string') wire.stack = stack;
    const code = read(error, 'code');
    if (typeof code === 'string') wire.code = code;
    const details = read(error, 'details');
    if (details !== null && typeof details === 'object') {
      try {
        wire.details = structuredClone(details) as Record<string, unknown>;
      } catch {
        // details that cannot cross are dropped rather than losing the error itself
      }
    }
    const cause = read(error, 'cause');
    if (cause !== undefined && depth < 8) wire.cause = serializeError(cause, depth + 1);
    return wire;
  }
  if (typeof error === 'string') return { name: 'Error', message: error };
  return { name: 'Error', message: `non-error value thrown: ${messageOf(error)}` };
}

/** Rebuilds a remote error: a {@link TroupeError} when it carried one of our codes, else an Error. */
export function deserializeError(wire: WireError): Error {
  const cause = wire.cause === undefined ? undefined : deserializeError(wire.cause);
  let error: Error;
  // Own codes only: a code "toString" or "__proto__" is in the catalogue's prototype, not in it.
  if (
    wire.name === 'TroupeError' &&
    typeof wire.code === 'string' &&
    Object.hasOwn(ERROR_CODES, wire.code)
  ) {
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
