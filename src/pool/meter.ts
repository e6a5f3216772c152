/** What the pool measures: its clock, run and wait histograms, per-thread busy time, counters. */

import { batchSize } from './batching.js';
import type { ModuleState } from './jobs.js';
import { DurationHistogram, type ModuleStats, type PoolStats } from './stats.js';

interface ThreadRecord {
  startedAt: number;
  busyMs: number;
  tasks: number;
}

export class PoolMeter {
  readonly #startedAt = performance.now();
  /** The pool's epoch on the shared clock (`performance.timeOrigin + performance.now()`). */
  readonly epoch = performance.timeOrigin + this.#startedAt;
  readonly #threads = new Map<number, ThreadRecord>();
  readonly #run = new DurationHistogram();
  readonly #wait = new DurationHistogram();
  readonly counts = {
    completed: 0,
    failed: 0,
    cancelled: 0,
    requeued: 0,
    stolen: 0,
    trimmed: 0,
    threadsReplaced: 0,
    strayErrors: 0,
  };

  /** ms since the pool started; threads stamp their lanes on the same clock. */
  now(): number {
    return performance.now() - this.#startedAt;
  }

  waited(ms: number): void {
    this.#wait.record(ms);
  }

  /**
   * An item ran `ms` on `threadId`: histogram, the thread's busy time, and unless it was not a
   * task of the module's default export (a probe, a message: `measures` false), the module's
   * average, which batches are sized by.
   */
  ran(module: ModuleState, threadId: number, ms: number, measures = true): void {
    this.#run.record(ms);
    const thread = this.#thread(threadId);
    thread.busyMs += ms;
    thread.tasks++;
    if (!measures) return;
    module.samples++;
    // A moving geometric mean (the typical item: a few large inputs among many small ones do
    // not make a module look slow), and an arithmetic one (the work to expect of an item).
    // Each sample weighs 1/n until n = 10 (a plain mean: the first item, often unlike the rest
    // — a probe-like call, a warm-up — does not stand for the module for long), then 1/10.
    const weight = Math.max(0.1, 1 / module.samples);
    const log = Math.log(Math.max(ms, 0.001));
    module.avgLogMs += (log - module.avgLogMs) * weight;
    module.avgRunMs = Math.exp(module.avgLogMs);
    module.meanRunMs += (ms - module.meanRunMs) * weight;
  }

  threadStarted(threadId: number): void {
    this.#threads.set(threadId, { startedAt: this.now(), busyMs: 0, tasks: 0 });
  }

  /** A thread was destroyed: its id already reads -1, so drop every record not among the live ones. */
  threadGone(liveIds: number[], replaced: boolean): void {
    if (replaced) this.counts.threadsReplaced++;
    this.#prune(liveIds);
  }

  snapshot(pool: {
    threads: number;
    liveThreadIds: number[];
    queued: number;
    running: number;
    modules: Iterable<ModuleState>;
  }): PoolStats {
    this.#prune(pool.liveThreadIds);
    const now = this.now();
    const perThread = [...this.#threads].map(([threadId, t]) => {
      const aliveMs = Math.max(0, now - t.startedAt);
      const utilization = aliveMs > 0 ? Math.min(1, t.busyMs / aliveMs) : 0;
      return { threadId, tasks: t.tasks, busyMs: t.busyMs, aliveMs, utilization };
    });
    const modules: Record<string, ModuleStats> = {};
    for (const m of pool.modules) {
      modules[m.reg.name] = {
        completed: m.completed,
        failed: m.failed,
        avgRunMs: m.avgRunMs,
        batch: batchSize(m),
      };
    }
    return {
      threads: pool.threads,
      liveThreads: pool.liveThreadIds.length,
      queued: pool.queued,
      running: pool.running,
      ...this.counts,
      perThread,
      runMs: this.#run.summary(),
      waitMs: this.#wait.summary(),
      modules,
    };
  }

  #thread(threadId: number): ThreadRecord {
    let record = this.#threads.get(threadId);
    if (record === undefined) {
      record = { startedAt: this.now(), busyMs: 0, tasks: 0 };
      this.#threads.set(threadId, record);
    }
    return record;
  }

  #prune(liveIds: number[]): void {
    const live = new Set(liveIds);
    for (const threadId of this.#threads.keys())
      if (!live.has(threadId)) this.#threads.delete(threadId);
  }
}
