// The soak's expert: runs on a worker thread. Each subtask does ~1–2 ms of CPU (an xorshift
// loop whose length its input gives) and counts its start in shared memory, so that the soak
// checks what the threads did, not only what the records say. Its input says which fault, if
// any, it injects on which attempts.
import { threadId } from 'node:worker_threads';

// The shared layout (one Int32Array), read the same way by soak.mjs. The header: [0] counts
// thread incarnations (every new thread loads this module afresh and takes the next number;
// threadId would tell them apart too, but this one indexes the tables), [1] counts starts (a
// start's sequence number orders starts across threads). Four tables of MAX_INCARNATIONS ints:
// - KILLED[k] = 1: incarnation k was about to die of an injected fault (crash or hang);
// - BUSY[k] = slot + 1 while incarnation k runs a subtask. A thread that dies mid-subtask (an
//   injected fault, or ended by the pool) never clears it: once the troupe is closed, BUSY
//   tells the threads that died from the ones that were idle;
// - RAN[k]: subtasks incarnation k has started; LAST[k]: the sequence number of its last start.
// Then SLOT ints per subtask.
export const HEADER = 4;
export const MAX_INCARNATIONS = 1 << 16;
export const KILLED = HEADER;
export const BUSY = KILLED + MAX_INCARNATIONS;
export const RAN = BUSY + MAX_INCARNATIONS;
export const LAST = RAN + MAX_INCARNATIONS;
export const SLOTS = LAST + MAX_INCARNATIONS;
export const STARTS = 0; // starts of its handler, on any thread
// Written by the main thread: ENDED at its subtask.end event (done or failed: it never runs
// again), else SETTLED once its run's outcome has resolved (0 before).
export const STATE = 1;
export const SETTLED = 1;
export const ENDED = 2;
export const VIOLATIONS = 2; // starts after ENDED, or after SETTLED with ctx.signal not aborted
export const LATE_ABORTED = 3; // starts after SETTLED with ctx.signal aborted
// Then, for each of its first TRACKED_STARTS starts: [incarnation, RAN then, sequence number].
export const TRACKED = 4;
export const TRACKED_STARTS = 6;
export const SLOT = TRACKED + 3 * TRACKED_STARTS;

let incarnation = 0;

const CHUNK = 16_384; // iterations between two looks at ctx.signal (~27 µs here)

/** An xorshift loop of `n` iterations: CPU, no allocation; polls the signal between chunks. */
function spin(n, seed, ctx) {
  let x = seed | 1;
  for (let done = 0; done < n; done += CHUNK) {
    ctx.throwIfAborted();
    const end = Math.min(n, done + CHUNK);
    for (let i = done; i < end; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
    }
  }
  return x;
}

export default function soak(input, ctx) {
  const shared = new Int32Array(input.sab);
  if (incarnation === 0) incarnation = Atomics.add(shared, 0, 1) + 1;
  // Past the tables (the soak reports it and fails): keep the subtasks' slots intact.
  if (incarnation >= MAX_INCARNATIONS) return run(input, ctx, shared, 0);
  Atomics.store(shared, BUSY + incarnation, input.slot + 1);
  try {
    return run(input, ctx, shared, incarnation);
  } finally {
    // Reached by a return or a throw (the thread lives on), never by process.exit or a
    // terminated thread.
    Atomics.store(shared, BUSY + incarnation, 0);
  }
}

function run(input, ctx, shared, incarnation) {
  const { slot, work, fault, until } = input;
  const base = SLOTS + SLOT * slot;
  const start = Atomics.add(shared, base + STARTS, 1);
  const ran = Atomics.add(shared, RAN + incarnation, 1);
  const seq = Atomics.add(shared, 1, 1) + 1;
  Atomics.store(shared, LAST + incarnation, seq);
  if (start < TRACKED_STARTS) {
    Atomics.store(shared, base + TRACKED + 3 * start, incarnation);
    Atomics.store(shared, base + TRACKED + 3 * start + 1, ran);
    Atomics.store(shared, base + TRACKED + 3 * start + 2, seq);
  }
  const state = Atomics.load(shared, base + STATE);
  if (state === ENDED || (state === SETTLED && !ctx.signal.aborted)) {
    Atomics.add(shared, base + VIOLATIONS, 1);
    // Rare and the point of the soak: what the thread saw, for the report to pair with the records.
    process.stderr.write(
      `soak: slot ${slot} started after it was ${state === ENDED ? 'ended (subtask.end)' : 'settled'}: ` +
        `attempt ${ctx.task.attempt}, signal ${ctx.signal.aborted ? '' : 'not '}aborted, thread ${incarnation} ` +
        `(threadId ${threadId}), its start #${start + 1}, sequence ${seq}\n`,
    );
  } else if (state === SETTLED) Atomics.add(shared, base + LATE_ABORTED, 1);
  if (fault !== undefined && ctx.task.attempt <= until) {
    switch (fault) {
      case 'throw':
        throw new Error(`injected throw (slot ${slot}, attempt ${ctx.task.attempt})`);
      case 'crash':
        // Marked before it dies: the subtasks this thread finished but had not reported yet
        // may run again elsewhere (docs/pool.md, "Batching"), and the soak must tell them from
        // duplicates.
        Atomics.store(shared, KILLED + incarnation, 1);
        process.exit(7);
        break;
      case 'hang':
        // An endless loop that ignores its signal: timed out, then its thread is terminated.
        Atomics.store(shared, KILLED + incarnation, 1);
        for (;;);
      case 'stall':
        // An endless loop that polls its signal: timed out, stops within cancelGraceMs and
        // keeps its thread.
        for (;;) ctx.throwIfAborted();
      default:
        // 'cancel' is done by the main thread (it aborts the run when this subtask starts).
        break;
    }
  }
  return { slot, sum: spin(work, slot + 1, ctx), threadId };
}
