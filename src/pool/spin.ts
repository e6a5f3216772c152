/**
 * Spin, then sleep. Between tasks Piscina's worker sleeps in `Atomics.wait` on a two-slot
 * counter of the requests its main thread posts (slot 0). Waking a sleeping thread is costly —
 * on a virtual machine whose idle cores halt, it is among the largest costs of a short task, and
 * a step of a dependent chain pays it every time. So on troupe's threads `Atomics.wait` is
 * wrapped: Piscina's first wait, made right after troupe's dispatcher loaded and before any
 * expert module (the only other code on the thread), identifies its counter; every later wait
 * on that counter first calls `beforeIdle` (which may end the thread: see the worker's
 * `exitIfDoomed`), then watches the counter for up to `ms` and returns as a wait would had the
 * value already changed (`'not-equal'`). Every other wait goes straight to `Atomics.wait`.
 * Should Piscina change how it waits, nothing matches and threads simply sleep at once.
 */

type Wait = (typed: Int32Array, index: number, value: number, timeout?: number) => string;

export function spinningWait(
  wait: unknown,
  ms: number,
  now: () => number = () => performance.now(),
  beforeIdle: () => void = () => {},
): Wait {
  const sleep = wait as Wait;
  let counter: ArrayBufferLike | undefined;
  let identified = false;
  return function spinningWait(typed, index, value, timeout) {
    if (!identified) {
      identified = true;
      if (typed instanceof Int32Array && typed.length === 2 && index === 0 && timeout === undefined)
        counter = typed.buffer;
    }
    if (counter !== undefined && typed.buffer === counter && timeout === undefined) {
      beforeIdle();
      if (ms > 0) {
        const until = now() + ms;
        do {
          if (Atomics.load(typed, index) !== value) return 'not-equal';
        } while (now() < until);
      }
    }
    return sleep.call(Atomics, typed, index, value, timeout);
  };
}
