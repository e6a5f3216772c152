/**
 * Pending work keeps the process alive, and an idle pool does not: the watchdog timer is ref'd
 * from the first task queued until nothing is queued or in flight, when `idle()`'s waiters are
 * told.
 */
export class KeepAlive {
  readonly #timer: NodeJS.Timeout;
  #holding = false;
  #waiters: (() => void)[] = [];

  constructor(timer: NodeJS.Timeout) {
    this.#timer = timer;
  }

  /** A task was queued. */
  busy(): void {
    if (this.#holding) return;
    this.#holding = true;
    this.#timer.ref();
  }

  /** Nothing is queued or in flight. */
  idle(): void {
    if (this.#holding) {
      this.#holding = false;
      this.#timer.unref();
    }
    if (this.#waiters.length > 0) {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Resolves at the next {@link idle}. */
  whenIdle(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}
