/**
 * The checks every entry shares — the runtime's options, expert definitions, subtasks and the
 * plan schema alike: bounds of numeric options (set by what holds them: a value past one is
 * refused with `E_INVALID_OPTION` naming the bound, never accepted and then wrapped or
 * clamped), skill levels and names.
 */

/**
 * The longest duration a timer can wait, ms (2³¹ − 1, about 24.8 days): Node fires a timer of
 * more after 1 ms, so a deadline of 3e9 ms would pass at once.
 */
export const MAX_DURATION_MS = 2_147_483_647;

/** Attempts of a subtask: its counter is a 16-bit cell of the run's ledger. */
export const MAX_ATTEMPTS = 65_535;

/** Worker threads of one pool (each is an OS thread with its own V8 heap). */
export const MAX_THREADS = 1_024;

/** Counts held as 32-bit integers (an expert's concurrency, supervision counts). */
export const MAX_INT32 = 2_147_483_647;

/** What a duration option expects, for error messages. */
export const DURATION = `a duration in ms from 0 to ${MAX_DURATION_MS}`;
/** What a duration that must pass expects (a deadline, an ask's timeout). */
export const POSITIVE_DURATION = `a duration in ms above 0, at most ${MAX_DURATION_MS}`;

/** A duration in ms a timer can wait: a finite number from 0 to {@link MAX_DURATION_MS}. */
export function isDuration(value: unknown): value is number {
  return typeof value === 'number' && value >= 0 && value <= MAX_DURATION_MS;
}

/** A duration above 0 a timer can wait. */
export function isPositiveDuration(value: unknown): value is number {
  return isDuration(value) && value > 0;
}

/** An integer from 1 to `max`. */
export function isPositiveInteger(value: unknown, max = Number.MAX_SAFE_INTEGER): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= max;
}

/** Skill levels run from 1 to 5: an expert's, and what a subtask's `complexity` asks. */
export const MIN_LEVEL = 1;
export const MAX_LEVEL = 5;

/** A skill level: an integer from {@link MIN_LEVEL} to {@link MAX_LEVEL}. */
export function isLevel(value: unknown): value is 1 | 2 | 3 | 4 | 5 {
  return (
    typeof value === 'number' && Number.isInteger(value) && value >= MIN_LEVEL && value <= MAX_LEVEL
  );
}

/** What a level expects, for error messages. */
export const LEVEL = `a level from ${MIN_LEVEL} to ${MAX_LEVEL}`;

/** An expert's name: letters, digits, "_", "-" or "." starting with a letter. */
export const NAME_PATTERN = /^[A-Za-z][\w.-]*$/;

/** What a name expects, for error messages. */
export const NAME = 'a name of letters, digits, "_", "-" or "." starting with a letter';

/**
 * Whether a value would be adopted by `await`: an object or function with a callable `then`.
 * (Reading `then` runs a getter: only for values troupe awaits anyway.)
 */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
