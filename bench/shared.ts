/** Helpers both suites use: work sizes, SHA-256 calibration, and the fresh-process RSS probe. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { defineExpert } from '../src/actors/experts.js';
import { createTroupe, type Troupe } from '../src/troupe.js';
import { perRound, type Samples, type Spread, spread } from './harness.js';
import { workload } from './paths.js';
import type { CaseResult, Comparison } from './types.js';

export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** SHA-256 rounds (64 KiB each) that take ~`ms` on this machine's main thread. */
export async function calibrate(ms: number): Promise<number> {
  const { default: sha256 } = (await import(workload('sha256').href)) as {
    default: (rounds: number) => string;
  };
  sha256(200);
  const started = performance.now();
  sha256(400);
  return Math.max(1, Math.round(ms / ((performance.now() - started) / 400)));
}

/**
 * Idle RSS of troupe (probe kind `kind`) against raw Piscina with 2 threads, each in a fresh
 * process (`rss-probe.js`), the two kinds interleaved.
 */
export async function idleRss(
  kind: 'troupe' | 'troupe-runtime',
  name: string,
  rounds: number,
): Promise<CaseResult> {
  const run = promisify(execFile);
  const probe = fileURLToPath(new URL('./rss-probe.js', import.meta.url));
  const samples: Samples = { troupe: [], piscina: [] };
  for (let round = 0; round < rounds; round++) {
    for (const which of round % 2 === 0 ? [kind, 'piscina'] : ['piscina', kind]) {
      const { stdout } = await run(process.execPath, ['--expose-gc', probe, which]);
      samples[which === 'piscina' ? 'piscina' : 'troupe']?.push(JSON.parse(stdout).rss / 2 ** 20);
    }
    process.stderr.write('.');
  }
  const added = perRound(samples.troupe as number[], samples.piscina as number[], (t, p) => t - p);
  return {
    name,
    medians: {
      troupe: spread(samples.troupe as number[]).median,
      piscina: spread(samples.piscina as number[]).median,
    },
    comparisons: [
      {
        label: 'troupe − raw piscina (MiB)',
        spread: added,
        target: '≤ 8.00',
        pass: added.median <= 8,
      },
    ],
    samples,
  };
}

/** A workload's default export, loaded on the main thread (the sequential baseline). */
export async function loadWorkload(name: string): Promise<(units: number) => unknown> {
  return ((await import(workload(name).href)) as { default: (units: number) => unknown }).default;
}

/**
 * Units of a workload that take ~`ms` on this machine's main thread: doubles the units until a
 * call takes ≥ 20 ms, then scales (at least 1 unit).
 */
export async function calibrateUnits(name: string, ms: number): Promise<number> {
  const run = await loadWorkload(name);
  run(1);
  let units = 1;
  let elapsed = 0;
  for (;;) {
    run(units); // warm (workloads cache their data by size)
    const started = performance.now();
    run(units);
    elapsed = performance.now() - started;
    if (elapsed >= 20 || units >= 1 << 24) break;
    units *= 2;
  }
  return Math.max(1, Math.round(ms / (elapsed / units)));
}

/**
 * A troupe with one expert per named workload (skill = name), with every subtask of a case in
 * flight (`concurrency: 4096`; a case has at most 2 000), so that the pool can batch short ones
 * as it sees fit and keep every thread fed.
 */
export function workloadTroupe(threads: number, names: readonly string[]): Troupe {
  return createTroupe({
    threads,
    experts: names.map((name) =>
      defineExpert({ name, skills: { [name]: 1 }, module: workload(name), concurrency: 4096 }),
    ),
  });
}

/** Items per second of each variant (its median ms per round of `n` items). */
export function perSecond(samples: Samples, n: number): Record<string, number> {
  return Object.fromEntries(
    Object.entries(samples).map(([k, v]) => [k, (n / spread(v).median) * 1000]),
  );
}

/**
 * A throughput case: `n` items per round, `subject` against `baseline`, the ratio taken within
 * each round (baseline ms ÷ subject ms: above 1, the subject is faster).
 */
export function throughputCase(options: {
  name: string;
  n: number;
  samples: Samples;
  subject: string;
  baseline: string;
  label: string;
  target?: string;
  pass?: (ratio: Spread) => boolean;
  more?: Comparison[];
}): CaseResult {
  const { samples, subject, baseline, target, pass } = options;
  const ratio = perRound(
    samples[subject] as number[],
    samples[baseline] as number[],
    (s, b) => b / s,
  );
  const comparison: Comparison = { label: options.label, spread: ratio };
  if (target !== undefined) comparison.target = target;
  if (pass !== undefined) comparison.pass = pass(ratio);
  return {
    name: options.name,
    medians: perSecond(samples, options.n),
    comparisons: [comparison, ...(options.more ?? [])],
    samples,
  };
}
