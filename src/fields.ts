/**
 * Reading what a user passes — options objects, expert definitions, subtasks — without trusting
 * it: each field is read once (a getter runs once, and a value cannot change between check and
 * use), a proxy that throws, a getter that throws, or a key no one knows (a typo such as
 * `concurency`) is refused with an error that names the field, and nothing read becomes a key
 * of an object with a prototype.
 */
import * as types from 'node:util/types';
import { describe, type ErrorCode, messageOf, TroupeError } from './errors.js';
import { closest } from './suggest.js';

/** The fields read, by key; only known keys, each read once. */
export type Fields<K extends string> = { [key in K]?: unknown };

/** Whether `object[key]` is there (own or inherited); never throws. */
function hasField(object: object, key: string): boolean {
  try {
    return key in object;
  } catch {
    return false;
  }
}

/**
 * Reads an options object's known fields, each once (undefined ones are left out). Throws `code` (`E_INVALID_OPTION` by
 * default) when `value` is not an object, cannot be read, or has a key not in `known` — naming
 * the closest known key (`options.thread: unknown key; did you mean "threads"?`). With
 * `others: 'near-miss'` (objects of the user's own, such as a plan, whose other fields are theirs)
 * only a near miss of a known key that is absent is refused.
 */
export function readFields<K extends string>(
  value: unknown,
  field: string,
  known: readonly K[],
  expected = 'an object',
  code: ErrorCode = 'E_INVALID_OPTION',
  others: 'refuse' | 'near-miss' = 'refuse',
): Fields<K> {
  const keys = ownKeys(value, field, expected, code);
  for (const key of keys) {
    if ((known as readonly string[]).includes(key)) continue;
    if (others === 'refuse') throw unknownKey(field, key, known, code);
    // An object of the user's own (a plan, a clock) may hold fields of its own; only a near miss
    // of a known key that is missing is a typo (`intergrate` where `integrate` is not there).
    const near = closest(key, known);
    if (near !== undefined && !hasField(value as object, near))
      throw unknownKey(field, key, known, code);
  }
  // Known keys are read as properties, inherited ones too: a plan or a clock may be an instance
  // whose methods live on its class.
  const out = Object.create(null) as Fields<K>;
  for (const key of known) {
    const read = readField(value as object, field, key, code);
    if (read !== undefined) out[key] = read;
  }
  return out;
}

/**
 * Reads a record whose keys are the user's (module names, skills): every own enumerable field,
 * once, as `[key, value]` pairs. Throws as {@link readFields} does for what cannot be read.
 */
export function readEntries(
  value: unknown,
  field: string,
  expected: string,
  code: ErrorCode = 'E_INVALID_OPTION',
): [string, unknown][] {
  const keys = ownKeys(value, field, expected, code);
  return keys.map((key) => [key, readField(value as object, field, key, code)]);
}

/**
 * Reads an array's items once each, up to its first hole, which reads as `undefined` and ends
 * the reading (its index in `holes`: every caller refuses a hole, and reading on through a
 * sparse array of length 2³² − 1 would take the process's memory). An array-like proxy whose
 * traps throw, or a getter on an index, is answered with an error naming the field, not a
 * TypeError from deep inside.
 */
export function readArray(
  value: unknown,
  field: string,
  expected: string,
  code: ErrorCode = 'E_INVALID_OPTION',
): { items: unknown[]; holes: number[] } {
  let isArray: boolean;
  try {
    isArray = Array.isArray(value);
  } catch (error) {
    // A revoked proxy: Array.isArray throws on it.
    throw unreadable(field, expected, value, error, code);
  }
  if (!isArray) {
    throw new TroupeError(code, `${field}: expected ${expected}, got ${describe(value)}`, {
      details: { field, expected },
    });
  }
  const array = value as unknown[];
  const holes: number[] = [];
  let items: unknown[];
  try {
    const length = array.length;
    items = new Array(length);
    for (let index = 0; index < length; index++) {
      if (!(index in array)) {
        holes.push(index);
        items.length = index + 1;
        items[index] = undefined;
        break;
      }
      items[index] = array[index];
    }
  } catch (error) {
    throw unreadable(field, expected, value, error, code);
  }
  return { items, holes };
}

/** The own enumerable keys of an object that is not an array; refuses anything else. */
function ownKeys(value: unknown, field: string, expected: string, code: ErrorCode): string[] {
  if (!isObject(value, field, expected, code)) {
    throw new TroupeError(code, `${field}: expected ${expected}, got ${describe(value)}`, {
      details: { field, expected },
    });
  }
  try {
    return Object.keys(value);
  } catch (error) {
    throw unreadable(field, expected, value, error, code);
  }
}

/** `value[key]`, once; a getter or trap that throws is refused, naming the field. */
function readField(value: object, field: string, key: string, code: ErrorCode): unknown {
  try {
    return (value as Record<string, unknown>)[key];
  } catch (error) {
    throw new TroupeError(
      code,
      `${path(field, key)}: its value cannot be read (${messageOf(error)})`,
      {
        cause: error,
        details: { field: path(field, key) },
      },
    );
  }
}

/** An object that is not an array (a revoked proxy, which cannot even be asked, throws). */
function isObject(
  value: unknown,
  field: string,
  expected: string,
  code: ErrorCode,
): value is object {
  if (value === null || typeof value !== 'object') return false;
  try {
    return !Array.isArray(value);
  } catch (error) {
    throw unreadable(field, expected, value, error, code);
  }
}

/** `field.key`, or `field["a key"]` for a key that is not an identifier. */
export function path(field: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${field}.${key}` : `${field}[${JSON.stringify(key)}]`;
}

/** The error for a key no one knows, with the closest known one or the list of them. */
export function unknownKey(
  field: string,
  key: string,
  known: readonly string[],
  code: ErrorCode = 'E_INVALID_OPTION',
): TroupeError {
  const match = closest(key, known);
  const hint =
    match === undefined ? ` (known keys: ${known.join(', ')})` : `; did you mean "${match}"?`;
  return new TroupeError(code, `${path(field, key)}: unknown key${hint}`, {
    details: {
      field: path(field, key),
      key,
      ...(match === undefined ? {} : { suggestion: match }),
    },
  });
}

function unreadable(
  field: string,
  expected: string,
  value: unknown,
  error: unknown,
  code: ErrorCode,
): TroupeError {
  return new TroupeError(
    code,
    `${field}: expected ${expected}, got ${describe(value)} that cannot be read (${messageOf(error)})`,
    { cause: error, details: { field, expected } },
  );
}

/**
 * `value instanceof type`, never running a proxy's traps (a revoked proxy would throw): a proxy
 * of a URL or an AbortSignal is not one, nor is an object with a proxy up its prototype chain.
 */
export function isInstance<T>(
  value: unknown,
  type: abstract new (...args: never[]) => T,
): value is T {
  if (types.isProxy(value)) return false;
  try {
    return value instanceof type;
  } catch {
    return false;
  }
}

/**
 * The same fields without those that are undefined, so that an options object built from
 * optional values says only what was given (a reader of it sees no `key: undefined`).
 */
export function defined<T extends object>(fields: T): T {
  const out = {} as Record<string, unknown>;
  for (const [key, value] of Object.entries(fields))
    if (value !== undefined) setOwn(out, key, value);
  return out as T;
}

/**
 * `object[key] = value` as an own field, whatever the key: a subtask may be called `__proto__`,
 * and assigning that would set the object's prototype instead (and lose the field).
 */
export function setOwn(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(object, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  else object[key] = value;
}
