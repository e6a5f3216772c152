/**
 * Supervision policy, as pure code: a function of the fault history and a clock, so that tests
 * drive it with an injected clock. OTP's intensity: more than `intensity` expert faults within
 * `windowMs` restarts the expert; probes that keep failing retire it.
 */
import type { ErrorCode } from '../errors.js';

/** Faults of the expert itself, not of its input: they count against its health. */
export const EXPERT_FAULTS: ReadonlySet<string> = new Set<ErrorCode>([
  'E_WORKER_CRASHED',
  'E_WORKER_OOM',
  'E_TIMEOUT',
  'E_MODULE_LOAD',
  'E_PROBE_FAILED',
]);

/** Failures that use up an attempt and may be retried (on another qualified expert if any). */
export const RETRYABLE: ReadonlySet<string> = new Set<ErrorCode>([
  'E_TASK_FAILED',
  'E_TIMEOUT',
  'E_WORKER_CRASHED',
  'E_WORKER_OOM',
  'E_QUALITY',
  'E_MODULE_LOAD',
]);

export interface ResolvedSupervision {
  intensity: number;
  windowMs: number;
  restartBackoffMs: number;
  maxRestartBackoffMs: number;
  maxProbeFailures: number;
}

export const SUPERVISION_DEFAULTS: ResolvedSupervision = {
  intensity: 5,
  windowMs: 10_000,
  restartBackoffMs: 200,
  maxRestartBackoffMs: 5_000,
  maxProbeFailures: 3,
};

export interface Fault {
  atMs: number;
  code: string;
  message: string;
}

/** An expert's fault history and the decision each new fault brings. */
export class FaultHistory {
  /** The last faults, newest last (at most `keep`), for `troupe.experts()`. */
  readonly faults: Fault[] = [];
  #window: number[] = [];
  readonly #keep: number;

  constructor(keep = 20) {
    this.#keep = keep;
  }

  /** Records a fault; true when it takes the expert past its intensity (restart it). */
  record(fault: Fault, policy: ResolvedSupervision): boolean {
    this.faults.push(fault);
    if (this.faults.length > this.#keep) this.faults.shift();
    const since = fault.atMs - policy.windowMs;
    this.#window = this.#window.filter((t) => t > since);
    this.#window.push(fault.atMs);
    return this.#window.length > policy.intensity;
  }

  /** After a restart the window starts afresh. */
  clearWindow(): void {
    this.#window = [];
  }
}

/**
 * Exponential backoff with "equal jitter": half of base × 2^(n−1) (capped) is fixed, the other
 * half random, so that retries spread out yet never come back at once.
 */
export function backoffMs(
  baseMs: number,
  maxMs: number,
  attempt: number,
  random: () => number,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return ceiling / 2 + (ceiling / 2) * random();
}
