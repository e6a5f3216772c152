/** What the suites hand back and take: shared by the suites, the harness, the report and compare. */
import type { Samples, Spread } from './harness.js';

export interface Comparison {
  label: string;
  spread: Spread;
  digits?: number;
  target?: string;
  pass?: boolean;
}

export interface CaseResult {
  name: string;
  medians: Record<string, number>;
  comparisons: Comparison[];
  samples: Samples;
  /** Lines printed under the medians (e.g. why a fit was not made). */
  notes?: string[];
  /** Factor against threads, for the chart: one point per variant and thread count. */
  points?: FactorPoint[];
}

export interface FactorPoint {
  variant: string;
  threads: number;
  factor: Spread;
}

export interface SuiteOptions {
  rounds: number;
  quick: boolean;
  /** Threads of the suites that compare at one thread count (the largest of `threadList` up to the cores). */
  threads: number;
  /** `--threads 1,2,4`: the thread counts the speedup suite runs (scaling: its own, 1 … cores + 2). */
  threadList: number[];
  cores: number;
  /** `--suite file`: the user's suite module (scope `user`). */
  suite?: string | undefined;
}
