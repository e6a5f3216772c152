/**
 * Deadlock among asks, as a pure function of who waits on whom: the router calls it with the
 * frames that hold a thread while they wait, and gives up the ask it names.
 *
 * When every thread of a pool is held by a frame waiting on asks, the asks that can never be
 * answered are those that wait for a thread of a pool whose threads the stuck frames all hold
 * (a heavy handler not started, an expert not ready), or for a handler that itself waits on such
 * an ask. Failing the newest ask that waits for a thread breaks the cycle it closed: its asker's
 * handler gets the error and can end, freeing its thread. Pools count apart: an expert with
 * threads of its own (`resourceLimits`) holds or waits for those.
 */
import type { Ask, Frame } from './types.js';

/** A pool as the check sees it: compared by identity, with its number of threads. */
export interface ThreadPool {
  readonly threads: number;
}

export interface Deadlock {
  /** The ask to fail: the newest of those that wait for a thread. */
  victim: Ask;
  /** Threads of the pool the victim waits for. */
  threads: number;
  /** Who asks whom among the stuck frames, for the error's message. */
  chain: string;
}

/**
 * The deadlock the held frames are in, if any. `held`: the frames on threads with asks pending;
 * `poolOf`: the pool an expert's work and heavy messages run on.
 */
export function findDeadlock(
  held: ReadonlySet<Frame>,
  poolOf: (expert: string) => ThreadPool,
): Deadlock | undefined {
  const fullAmong = (frames: Iterable<Frame>): Set<ThreadPool> => {
    const byPool = new Map<ThreadPool, Frame[]>();
    for (const f of frames) {
      const pool = poolOf(f.expert);
      const list = byPool.get(pool);
      if (list === undefined) byPool.set(pool, [f]);
      else list.push(f);
    }
    const full = new Set<ThreadPool>();
    for (const [pool, list] of byPool) if (threadsOf(list) >= pool.threads) full.add(pool);
    return full;
  };
  let full = fullAmong(held);
  if (full.size === 0) return undefined;
  const frames = new Set<Frame>();
  const asks = new Set<Ask>();
  const visit = (f: Frame): void => {
    if (frames.has(f)) return;
    frames.add(f);
    for (const a of f.asks) {
      asks.add(a);
      if (a.handler !== undefined) visit(a.handler);
    }
  };
  for (const f of held) visit(f);
  // A heavy handler not holding a thread has not started: it waits for one, like a mailbox.
  const waitsOnHandler = (a: Ask): boolean =>
    a.state === 'inline' || (a.state === 'heavy' && a.handler !== undefined && held.has(a.handler));
  // Greatest fixpoint: everything is stuck until shown able to move. An ask that waits for a
  // thread moves if its recipient's pool has one the stuck frames do not hold.
  for (let changed = true; changed; ) {
    changed = false;
    for (const a of asks) {
      const moves = waitsOnHandler(a) ? !frames.has(a.handler as Frame) : !full.has(poolOf(a.to));
      if (moves) {
        asks.delete(a);
        changed = true;
      }
    }
    for (const f of frames) {
      let stuck = false;
      for (const a of f.asks) if (asks.has(a)) stuck = true;
      if (!stuck) {
        frames.delete(f);
        changed = true;
      }
    }
    if (changed) full = fullAmong([...held].filter((f) => frames.has(f)));
  }
  let victim: Ask | undefined;
  for (const a of asks)
    if (!waitsOnHandler(a) && (victim === undefined || a.seq > victim.seq)) victim = a;
  if (victim === undefined) return undefined;
  const chain = [...held]
    .filter((f) => frames.has(f))
    .map((f) => `${f.expert} asks ${[...f.asks].map((a) => a.to).join(', ')}`)
    .join('; ');
  return { victim, threads: poolOf(victim.to).threads, chain };
}

/** Distinct threads the frames hold (a frame not yet seen on a thread counts as one). */
export function threadsOf(frames: Iterable<Frame>): number {
  const seen = new Set<number>();
  let unknown = 0;
  for (const f of frames) {
    if (f.thread < 0) unknown++;
    else seen.add(f.thread);
  }
  return seen.size + unknown;
}
