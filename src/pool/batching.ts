/** How many tasks of one module go to a thread in one message. */
import type { ModuleState } from './jobs.js';

/** `auto` batches only tasks under this many ms... */
export const AUTO_BATCH_BELOW_MS = 12;
/** ...aiming for this much work in one message... */
export const AUTO_BATCH_TARGET_MS = 24;
/** ...and never more than this many tasks. */
export const AUTO_BATCH_MAX = 128;

/**
 * A task of the module's own has run (a probe or a message does not count): its run time has a
 * first estimate, and batching, lookahead and stacking begin.
 */
export const isMeasured = (module: Pick<ModuleState, 'samples'>): boolean => module.samples >= 1;

/**
 * The batch for the module's next hand-off: its fixed `batch`, or for `'auto'` one chosen from
 * the measured run time. Every message costs the main thread its answer, and on a machine whose
 * threads fill every core that time is taken from a thread, so fewer, larger messages go faster
 * (docs/BENCHMARKS.md, the pool and speedup suites). A batch a thread runs gives up what it has
 * not begun to a thread that goes idle (see the pool's trimming), so a large batch does not keep
 * one thread busy while another idles.
 */
export function batchSize(module: Pick<ModuleState, 'reg' | 'samples' | 'meanRunMs'>): number {
  const { batch } = module.reg;
  if (batch !== 'auto') return batch;
  if (!isMeasured(module) || module.meanRunMs >= AUTO_BATCH_BELOW_MS) return 1;
  return Math.min(measuredCap(module.samples), Math.max(1, tasksInTarget(module)));
}

/**
 * The largest batch the module's samples so far vouch for: batching begins with its first
 * measured task (a fresh pool's first run sends its short tasks together from then on, not
 * after three), but a first estimate can be far off (a near-instant warm-up call before items
 * of 5 ms), so the batch may grow from 8 to 32 and only then to AUTO_BATCH_MAX.
 */
function measuredCap(samples: number): number {
  return samples >= 3 ? AUTO_BATCH_MAX : samples === 2 ? 32 : 8;
}

/** How many of the module's tasks hold AUTO_BATCH_TARGET_MS of expected work. */
function tasksInTarget(module: Pick<ModuleState, 'meanRunMs'>): number {
  return Math.floor(AUTO_BATCH_TARGET_MS / Math.max(module.meanRunMs, 0.01));
}

/**
 * Tasks of the module a runtime expert may take ahead per thread (see the runtime's deep
 * lookahead): its batch, but never more than ~AUTO_BATCH_TARGET_MS of expected work (a fixed
 * `batch` of long tasks would otherwise commit far more), and 1 until a task of it has run.
 */
export function aheadBatch(module: Pick<ModuleState, 'reg' | 'samples' | 'meanRunMs'>): number {
  if (!isMeasured(module)) return 1;
  return Math.max(1, Math.min(batchSize(module), tasksInTarget(module)));
}

/**
 * Items for each message of one pass of the pump: what waits, split evenly over the messages it
 * may hand out now (the free slots, and never fewer than the threads, so that one message never
 * takes all that waits while another thread could share it). Taking half of what is left for
 * each message in turn would hand out 127, 64, 32 and 16 where 60 each would do.
 */
export function fairShare(waiting: number, freeSlots: number, threads: number): number {
  return Math.max(1, Math.ceil(waiting / Math.max(threads, freeSlots)));
}
