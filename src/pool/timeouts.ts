/**
 * Timeouts count run time only. A pure decision per hand-off, from what its lane says: a running
 * item past its own limit; a module load that blocks its thread; a hand-off no thread started
 * within its limit plus a grace while a thread was free (a thread that never picks it up). Queue time never counts, and
 * neither does a thread's boot or a module's load (they happen before the item's start stamp).
 */

import { loadBlockedError, neverStartedError, timeoutError } from './failures.js';
import type { Blame } from './jobs.js';
import type { LaneReading } from './lanes.js';

/** Slack on top of the module load limit (enforced on the thread) before the main thread steps in. */
export const LOAD_SLACK_MS = 1_000;

export interface ExpiryLimits {
  startGraceMs: number;
  moduleLoadTimeoutMs: number;
}

export interface ExpiryInput {
  module: string;
  /** Since when it has waited for a thread while at least one thread was free of troupe's work. */
  waitingSince: number;
  /** Per item: its run-time limit (0 = none), and whether it has settled already. */
  items: readonly { timeoutMs: number; settled: boolean }[];
}

/** The verdict for a hand-off that ran out of time at `now`, or undefined. */
export function expired(
  handoff: ExpiryInput,
  lane: LaneReading,
  now: number,
  limits: ExpiryLimits,
): Blame | undefined {
  if (lane.state === 'handed') {
    const limit = handoff.items[0]?.timeoutMs ?? 0;
    if (limit > 0 && now - handoff.waitingSince > limit + limits.startGraceMs) {
      return { item: 0, error: neverStartedError(handoff.module, limit, limits.startGraceMs) };
    }
    return undefined;
  }
  if (lane.state === 'done') return undefined;
  if (lane.state === 'loading') {
    if (now - lane.since > limits.moduleLoadTimeoutMs + LOAD_SLACK_MS) {
      return { item: 'all', error: loadBlockedError(handoff.module, limits.moduleLoadTimeoutMs) };
    }
    return undefined;
  }
  const item = handoff.items[lane.item];
  if (item === undefined || item.settled || item.timeoutMs === 0) return undefined;
  if (now - lane.since > item.timeoutMs)
    return { item: lane.item, error: timeoutError(handoff.module, item.timeoutMs) };
  return undefined;
}
