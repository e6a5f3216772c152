/**
 * The scaling suite: the factor of one workload (SHA-256, ~5 ms a task) for T = 1 … cores + 2
 * threads — past the cores to show the plateau — for troupe and for the hand-written ceiling,
 * against one sequential baseline in the same rounds. An Amdahl fit (the serial fraction) is
 * made only from ≥ 3 thread counts up to the cores; with fewer, the suite says so.
 */
import type { Troupe } from '../../src/troupe.js';
import { Ceiling } from '../ceiling.js';
import { interleaved, perRound, type Spread, spread, type Variant } from '../harness.js';
import { workload } from '../paths.js';
import { calibrateUnits, loadWorkload, range, workloadTroupe } from '../shared.js';
import type { CaseResult, FactorPoint, SuiteOptions } from '../types.js';
import { taskCount } from './speedup.js';

/**
 * Amdahl's law, factor(T) = 1 ÷ (s + (1 − s) ÷ T), fitted by least squares on
 * 1/factor − 1/T = s × (1 − 1/T). Undefined with fewer than 3 points or no point above T = 1.
 */
export function amdahlSerialFraction(
  points: { threads: number; factor: number }[],
): number | undefined {
  if (points.length < 3) return undefined;
  let xy = 0;
  let xx = 0;
  for (const { threads, factor } of points) {
    const x = 1 - 1 / threads;
    const y = 1 / factor - 1 / threads;
    xy += x * y;
    xx += x * x;
  }
  if (xx === 0) return undefined;
  return Math.min(1, Math.max(0, xy / xx));
}

export async function scalingSuite(options: SuiteOptions): Promise<CaseResult[]> {
  const { rounds, quick, cores } = options;
  const ms = quick ? 1 : 5;
  const counts = range(cores + 2).map((i) => i + 1);
  const n = taskCount(Math.max(...counts), ms, quick);
  const units = await calibrateUnits('sha256', ms);
  const run = await loadWorkload('sha256');
  const href = workload('sha256').href;
  const troupes = new Map<number, Troupe>();
  const ceilings = new Map<number, Ceiling>();
  const plan = {
    analyze: () => range(n).map((i) => ({ id: `t${i}`, needs: 'sha256', input: units })),
  };
  try {
    const variants: Variant[] = [
      {
        name: 'sequential',
        run: async () => {
          for (let i = 0; i < n; i++) run(units);
        },
      },
    ];
    for (const threads of counts) {
      const troupe = workloadTroupe(threads, ['sha256']);
      troupes.set(threads, troupe);
      const ceiling = new Ceiling(threads);
      ceilings.set(threads, ceiling);
      variants.push(
        {
          name: `troupe ${threads}`,
          run: async () => {
            const outcome = await troupe.run(plan, null);
            if (outcome.status !== 'done')
              throw new Error(`bench: the run ended ${outcome.status}`);
          },
        },
        { name: `ceiling ${threads}`, run: () => ceiling.run(href, units, n) },
      );
    }
    const samples = await interleaved(variants, rounds);
    const seq = samples.sequential as number[];
    const factor = (name: string): Spread =>
      perRound(seq, samples[name] as number[], (s, p) => s / p);
    const points: FactorPoint[] = counts.flatMap((threads) => [
      { variant: 'troupe', threads, factor: factor(`troupe ${threads}`) },
      { variant: 'ceiling', threads, factor: factor(`ceiling ${threads}`) },
    ]);
    const notes: string[] = [];
    const comparisons = counts.flatMap((threads) =>
      ['troupe', 'ceiling'].map((variant) => ({
        label: `factor at ${threads} thread${threads === 1 ? '' : 's'}: ${variant}${threads > cores ? ' (beyond the cores)' : ''}`,
        spread: factor(`${variant} ${threads}`),
      })),
    );
    for (const variant of ['troupe', 'ceiling']) {
      const fit = points
        .filter((p) => p.variant === variant && p.threads <= cores)
        .map((p) => ({ threads: p.threads, factor: p.factor.median }));
      const s = amdahlSerialFraction(fit);
      notes.push(
        s === undefined
          ? `Amdahl fit (${variant}): not made: it needs ≥ 3 thread counts up to the cores (T = 1 and at least two more), and this machine has ${cores} core${cores === 1 ? '' : 's'}`
          : `Amdahl fit (${variant}): serial fraction ${(s * 100).toFixed(1)} % (from T = 1 … ${cores})`,
      );
    }
    return [
      {
        name: `scaling: SHA-256 ~${ms} ms × ${n} tasks, T = 1 … ${cores + 2} (${cores} cores)`,
        medians: Object.fromEntries(
          Object.entries(samples).map(([k, v]) => [`${k} (ms)`, spread(v).median]),
        ),
        comparisons,
        samples,
        notes,
        points,
      },
    ];
  } finally {
    await Promise.all([
      ...[...troupes.values()].map((t) => t.close()),
      ...[...ceilings.values()].map((c) => c.close()),
    ]);
  }
}
