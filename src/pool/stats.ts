import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

/** A summary of a histogram of durations, in ms. */
export interface DurationSummary {
  count: number;
  mean: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Durations recorded at microsecond resolution, summarised in ms. */
export class DurationHistogram {
  readonly #histogram: RecordableHistogram = createHistogram();

  record(ms: number): void {
    this.#histogram.record(Math.max(1, Math.round(ms * 1000)));
  }

  summary(): DurationSummary {
    const h = this.#histogram;
    if (h.count === 0) return { count: 0, mean: 0, min: 0, p50: 0, p90: 0, p99: 0, max: 0 };
    const ms = (us: number): number => us / 1000;
    return {
      count: h.count,
      mean: ms(h.mean),
      min: ms(h.min),
      p50: ms(h.percentile(50)),
      p90: ms(h.percentile(90)),
      p99: ms(h.percentile(99)),
      max: ms(h.max),
    };
  }
}

/** One live thread's record. */
export interface ThreadStats {
  threadId: number;
  /** Items run on it. */
  tasks: number;
  /** Time spent running items, in ms. */
  busyMs: number;
  /** Time since it started, in ms. */
  aliveMs: number;
  /** busyMs ÷ aliveMs. */
  utilization: number;
}

/** Per-module counters. */
export interface ModuleStats {
  completed: number;
  failed: number;
  /** Typical run time of an item (moving geometric mean), in ms (0 until one has run). */
  avgRunMs: number;
  /** Batch size used for the next hand-off when enough work waits. */
  batch: number;
}

/** A snapshot of the pool. */
export interface PoolStats {
  /** Threads configured. */
  threads: number;
  /** Threads alive now (a replacement may be booting). */
  liveThreads: number;
  /** Tasks waiting in the pool's queue. */
  queued: number;
  /** Tasks handed to threads and not yet settled. */
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  /** Tasks handed to another thread because theirs died before or after running them. */
  requeued: number;
  /**
   * Hand-offs taken back from a busy thread's port, before it began them, for a thread that
   * went idle (their tasks ran there instead).
   */
  stolen: number;
  /**
   * Tasks taken back from a batch a busy thread was running, before it began them, for a thread
   * that went idle (they ran there instead).
   */
  trimmed: number;
  /** Threads replaced after a crash, a timeout, a cancel or a stray error. */
  threadsReplaced: number;
  /** Errors thrown on threads outside the task that caused them. */
  strayErrors: number;
  perThread: ThreadStats[];
  /** Run time of items, on their thread. */
  runMs: DurationSummary;
  /** Time from `run()` to the hand-off to a thread. */
  waitMs: DurationSummary;
  modules: Record<string, ModuleStats>;
}
