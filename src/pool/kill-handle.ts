/**
 * A cheap kill handle: the smallest object Piscina accepts as a task's abort signal (it calls
 * `once('abort', fn)` and `removeListener` (typed as `off`), and reads `aborted` and `reason`). A real
 * AbortController per task cost 14–22 µs (DESIGN.md, "The pool"); this costs an allocation.
 */
export class KillHandle {
  aborted = false;
  reason: unknown = undefined;
  #listener: (() => void) | undefined = undefined;

  once(_event: 'abort', listener: () => void): this {
    this.#listener = listener;
    return this;
  }

  removeListener(_event: 'abort', listener: () => void): this {
    if (this.#listener === listener) this.#listener = undefined;
    return this;
  }

  off(event: 'abort', listener: () => void): this {
    return this.removeListener(event, listener);
  }

  /** Fires `abort` once: Piscina then rejects the task and terminates the thread running it. */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.();
  }
}
