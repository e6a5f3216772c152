/**
 * A troupe's options once `createTroupe` has checked them and filled in the defaults: what the
 * runtime's parts read. Types only.
 */
import type { ResolvedSupervision } from './actors/supervision.js';

export interface ResolvedTroupe {
  threads: number;
  timeoutMs: number;
  attempts: number;
  retryBackoffMs: number;
  maxRetryBackoffMs: number;
  maxQueuedSubtasks: number;
  /** Subtasks one run's analysis may return (`E_TOO_LARGE` past it). */
  maxSubtasksPerRun: number;
  askTimeoutMs: number;
  maxBlackboardBytes: number;
  supervision: ResolvedSupervision;
}
