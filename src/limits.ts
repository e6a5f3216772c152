/**
 * Bounds of numeric options, set by what holds them: a value past one is refused with
 * `E_INVALID_OPTION` (naming the bound), never accepted and then wrapped or clamped.
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
