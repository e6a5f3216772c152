/** How many tasks of one module go to a thread in one message. */
import type { ModuleState } from './jobs.js';

/** `auto` batches only tasks under this many ms... */
export const AUTO_BATCH_BELOW_MS = 2;
/** ...aiming for this much work in one message... */
export const AUTO_BATCH_TARGET_MS = 4;
/** ...and never more than this many tasks. */
export const AUTO_BATCH_MAX = 32;

/**
 * The batch for the module's next hand-off: its fixed `batch`, or for `'auto'` one chosen from
 * the measured run time (DESIGN.md: ~1 ms tasks gained most at 2–4, ~0.1 ms tasks at 16+).
 */
export function batchSize(module: Pick<ModuleState, 'reg' | 'samples' | 'avgRunMs'>): number {
  const { batch } = module.reg;
  if (batch !== 'auto') return batch;
  if (module.samples < 3 || module.avgRunMs >= AUTO_BATCH_BELOW_MS) return 1;
  return Math.min(
    AUTO_BATCH_MAX,
    Math.max(1, Math.floor(AUTO_BATCH_TARGET_MS / Math.max(module.avgRunMs, 0.01))),
  );
}

/** Never give one thread all that waits: split it evenly over the threads. */
export function fairShare(batch: number, waiting: number, threads: number): number {
  return Math.max(1, Math.min(batch, Math.ceil(waiting / threads)));
}
