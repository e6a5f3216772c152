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

/**
 * Expert faults that one input can cause on its own (its thread died, ran out of memory or ran
 * past its time limit): one of them may be the input's, not the expert's (see judgeFault).
 */
export const INPUT_FAULTS: ReadonlySet<string> = new Set<ErrorCode>([
  'E_WORKER_CRASHED',
  'E_WORKER_OOM',
  'E_TIMEOUT',
]);

/** A subtask whose attempt faulted once, not yet charged to its expert (see judgeFault). */
export interface Suspicion {
  /** The expert it faulted, and the fault, to charge if it turns out to be the expert's. */
  expert: string;
  fault: Fault;
  /** That expert's successes when it faulted. */
  successes: number;
}

/**
 * Whose fault a subtask's failed attempt is — supervision counts faults of the expert, never of
 * its input, or one poisonous input would restart an expert again and again for everyone:
 * - a failure that is not an input fault, or one no retry will follow: the expert's (charge);
 * - the subtask's first input fault, with a retry to come: not charged yet (suspect); if the
 *   retry succeeds, it is charged then (the input was fine: the expert faulted);
 * - its second: the input is isolated (the subtask fails, not retried). If the expert it first
 *   faulted has finished other subtasks since, it works: neither fault is charged (isolate).
 *   Else nothing says yet whose they are (several poisonous inputs in a burst look like a broken
 *   expert): they are held on the expert (hold) — the expert's next success drops them, and more
 *   than its intensity held with no success between charges them all (a broken expert still
 *   restarts after as many faults as before).
 * Pure: what it needs is passed in.
 */
export function judgeFault(input: {
  code: string;
  suspicion: Suspicion | undefined;
  /** Successes so far of the expert the suspicion names (0 without one). */
  successesOfSuspect: number;
  /** Another attempt of the subtask may follow. */
  retried: boolean;
}): 'charge' | 'suspect' | 'isolate' | 'hold' {
  if (!INPUT_FAULTS.has(input.code)) return 'charge';
  if (input.suspicion === undefined) return input.retried ? 'suspect' : 'charge';
  return input.successesOfSuspect > input.suspicion.successes ? 'isolate' : 'hold';
}

/** Failures that use up an attempt and may be retried (on another qualified expert if any). */
export const RETRYABLE: ReadonlySet<string> = new Set<ErrorCode>([
  'E_TASK_FAILED',
  'E_TIMEOUT',
  'E_WORKER_CRASHED',
  'E_WORKER_OOM',
  'E_QUALITY',
  'E_MODULE_LOAD',
  'E_UNAVAILABLE',
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
