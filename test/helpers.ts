import { createPool, type Pool, type PoolOptions } from '../dist/src/index.js';

export const fixture = (name: string): URL => new URL(`./fixtures/${name}.mjs`, import.meta.url);

/** The zoo, registered under short names. */
export const zoo = {
  behave: fixture('behave'),
  echo: fixture('echo'),
  broken: fixture('broken-on-load'),
  noDefault: fixture('no-default'),
  hangsOnLoad: fixture('hangs-on-load'),
  blocksOnLoad: fixture('blocks-on-load'),
  exitsOnLoad: fixture('exits-on-load'),
  slowLoad: fixture('slow-load'),
  probeFails: fixture('probe-fails'),
  countsLoads: fixture('counts-loads'),
};

const open: Pool[] = [];

/** A pool over the zoo; closed (destroyed) by `closeAll()` after each test. */
export function testPool(options: Partial<PoolOptions> = {}): Pool {
  const pool = createPool({ threads: 1, modules: zoo, ...options });
  open.push(pool);
  return pool;
}

export async function closeAll(): Promise<void> {
  await Promise.all(open.splice(0).map((pool) => pool.destroy()));
}

// Node 20 has Atomics.waitAsync; the ES2023 lib does not declare it.
const waitAsync = (
  Atomics as unknown as {
    waitAsync: (
      array: Int32Array,
      index: number,
      value: number,
      timeoutMs: number,
    ) => { async: boolean; value: Promise<string> | string };
  }
).waitAsync;

/**
 * A handshake with the `block` op: the task counts up slot 0 when it starts and waits until
 * slot 1 is set. No sleeps: the test waits on the shared memory itself.
 */
export function blocker() {
  const sab = new SharedArrayBuffer(8);
  const flags = new Int32Array(sab);
  return {
    sab,
    input: (value?: unknown) => ({ op: 'block', sab, value }),
    async started(count = 1): Promise<void> {
      for (;;) {
        const seen = Atomics.load(flags, 0);
        if (seen >= count) return;
        const wait = waitAsync(flags, 0, seen, 1000);
        if (wait.async) await wait.value;
      }
    },
    release(): void {
      Atomics.store(flags, 1, 1);
      Atomics.notify(flags, 1);
    },
  };
}

/**
 * Start counters on the threads, for the fixture's `watched` op: slot k counts task k's starts;
 * `settled(k)` says on the main thread that task k has settled, after which a start whose
 * `ctx.signal` does not read aborted counts as a violation (work outliving its settlement).
 */
export function watchStarts(tasks: number) {
  const sab = new SharedArrayBuffer(tasks * 3 * 4);
  const flags = new Int32Array(sab);
  return {
    input: (slot: number, extra: Record<string, unknown> = {}) => ({
      op: 'watched',
      sab,
      slot,
      value: slot,
      ...extra,
    }),
    of: (slot: number) => Atomics.load(flags, 3 * slot),
    /** Starts of every task so far. */
    total(): number {
      let sum = 0;
      for (let slot = 0; slot < tasks; slot++) sum += Atomics.load(flags, 3 * slot);
      return sum;
    },
    /** Resolves once task `slot` has started (a handshake on the shared counter). */
    async started(slot: number): Promise<void> {
      while (Atomics.load(flags, 3 * slot) === 0) {
        const wait = waitAsync(flags, 3 * slot, 0, 1000);
        if (wait.async) await wait.value;
      }
    },
    settled: (slot: number) => Atomics.store(flags, 3 * slot + 1, 1),
    violations(): number {
      let sum = 0;
      for (let slot = 0; slot < tasks; slot++) sum += Atomics.load(flags, 3 * slot + 2);
      return sum;
    },
  };
}

/**
 * Makes both of a 2-thread pool's threads ready: two tasks of `module` (the zoo's `behave`, or a
 * module on it) run at once, each on its own thread, held until both have started.
 */
export async function readyThreads(pool: Pool, module = 'behave'): Promise<unknown[]> {
  const gates = [blocker(), blocker()];
  const running = gates.map((gate, i) => pool.run(module, gate.input(i)));
  for (const gate of gates) await gate.started();
  for (const gate of gates) gate.release();
  return Promise.all(running);
}

/** Settles a promise into a plain record, for asserting on many at once. */
export async function settle<T>(
  promise: Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; code: string; error: unknown }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, code: (error as { code?: string }).code ?? 'none', error };
  }
}

/** Polls a condition on the event loop (no fixed sleeps); fails after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A clock the test moves by hand: timers fire only on `advance`. */
export function manualClock() {
  let now = 0;
  let ids = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout(fn: () => void, ms: number): unknown {
      const id = ++ids;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(id: unknown): void {
      timers.delete(id as number);
    },
    /** Moves time on and fires what fell due, oldest first. */
    advance(ms: number): void {
      now += ms;
      const due = [...timers].filter(([, t]) => t.at <= now).sort((a, b) => a[1].at - b[1].at);
      for (const [id, t] of due) {
        if (!timers.delete(id)) continue;
        t.fn();
      }
    },
    get pending(): number {
      return timers.size;
    },
  };
}
