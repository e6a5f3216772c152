/**
 * How well the team worked on one run. `parallelism` (Σ run ÷ wall) says how many threads were
 * busy on average; it is not the parallel-over-sequential factor, which needs a sequential
 * baseline: the benchmarks measure that.
 */

import type { ExpertRunMetrics, RunMetrics } from '../types.js';
import { type Ledger, State } from './ledger.js';

/** What a run's metrics read of the runtime: its clock, its threads, its restarts so far. */
export interface MetricsSource {
  readonly clock: { now(): number };
  /** Threads of every pool: the shared one and those of experts with threads of their own. */
  readonly allThreads: number;
  readonly restarts: number;
}

/** What the metrics read of the run: when it began, and the messages sent within it. */
export interface RunFacts {
  readonly startedAt: number;
  readonly restartsAtStart: number;
  readonly messages: number;
  /** Messages per sender → receiver pair (`from\u0000to`). */
  readonly pairs: ReadonlyMap<string, number>;
}

export function runMetrics(
  core: MetricsSource,
  entry: RunFacts,
  ledger: Ledger | undefined,
): RunMetrics {
  const wallMs = Math.max(0, core.clock.now() - entry.startedAt);
  const threads = core.allThreads;
  const perExpert: Record<string, ExpertRunMetrics> = {};
  let runMs = 0;
  let retries = 0;
  const size = ledger?.size ?? 0;
  for (let i = 0; i < size; i++) {
    const l = ledger as Ledger;
    runMs += l.runMs[i] as number;
    const attempts = l.attempts[i] as number;
    if (attempts > 1) retries += attempts - 1;
    const name = l.expert[i];
    if (name === undefined) continue;
    let m = perExpert[name];
    if (m === undefined) {
      m = { subtasks: 0, waitMs: 0, runMs: 0, retries: 0 };
      perExpert[name] = m;
    }
    if (l.state[i] === State.Done) m.subtasks++;
    m.waitMs += l.queuedMs[i] as number;
    m.runMs += l.runMs[i] as number;
    if (attempts > 1) m.retries += attempts - 1;
  }
  const parallelism = wallMs > 0 ? runMs / wallMs : 0;
  const messagePairs = [...entry.pairs]
    .map(([key, count]) => {
      const [from = '', to = ''] = key.split('\u0000');
      return { from, to, count };
    })
    .sort((a, b) => b.count - a.count || a.from.localeCompare(b.from) || a.to.localeCompare(b.to));
  return {
    wallMs,
    runMs,
    parallelism,
    efficiency: parallelism / threads,
    threads,
    subtasks: size,
    retries,
    restarts: core.restarts - entry.restartsAtStart,
    messages: entry.messages,
    messagesPerSubtask: size > 0 ? entry.messages / size : 0,
    messagePairs,
    criticalPathMs: ledger?.criticalPathMs() ?? 0,
    perExpert,
  };
}
