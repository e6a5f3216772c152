/**
 * The dag suite: graphs of dependent subtasks against their critical-path bound. A wide fan-out
 * and fan-in (one root, many leaves, one join) and a deep chain, each subtask ~5 ms of SHA-256.
 * The bound is what T perfect threads could do: Σ ⌈tasks of a level ÷ T⌉ task times over the
 * graph's levels, from the per-task time the sequential run measured in the same round.
 */
import type { Subtask } from '../../src/types.js';
import { interleaved, perRound, spread } from '../harness.js';
import { calibrateUnits, loadWorkload, range, workloadTroupe } from '../shared.js';
import type { CaseResult, SuiteOptions } from '../types.js';

interface Shape {
  name: string;
  subtasks: Subtask[];
  /**
   * Its levels: each waits for every task of the level before. With T threads and equal tasks,
   * the best schedule takes Σ ⌈level ÷ T⌉ task times (the root and the join each run alone).
   */
  levels: number[];
}

export async function dagSuite(options: SuiteOptions): Promise<CaseResult[]> {
  const { rounds, quick, threads } = options;
  const ms = quick ? 1 : 5;
  const units = await calibrateUnits('sha256', ms);
  const run = await loadWorkload('sha256');
  const leaves = quick ? 16 : 64;
  const depth = quick ? 8 : 32;
  const shapes: Shape[] = [
    {
      name: `wide: 1 root → ${leaves} leaves → 1 join`,
      subtasks: [
        { id: 'root', needs: 'sha256', input: units },
        ...range(leaves).map((i) => ({
          id: `leaf${i}`,
          needs: 'sha256',
          input: units,
          after: ['root'],
        })),
        { id: 'join', needs: 'sha256', input: units, after: range(leaves).map((i) => `leaf${i}`) },
      ],
      levels: [1, leaves, 1],
    },
    {
      name: `deep: a chain of ${depth}`,
      subtasks: range(depth).map((i) => ({
        id: `c${i}`,
        needs: 'sha256',
        input: units,
        ...(i === 0 ? {} : { after: [`c${i - 1}`] }),
      })),
      levels: range(depth).map(() => 1),
    },
  ];
  const troupe = workloadTroupe(threads, ['sha256']);
  const results: CaseResult[] = [];
  try {
    for (const shape of shapes) {
      const count = shape.subtasks.length;
      const plan = { analyze: () => shape.subtasks };
      const samples = await interleaved(
        [
          {
            name: 'sequential',
            run: async () => {
              for (let i = 0; i < count; i++) run(units);
            },
          },
          {
            name: 'troupe',
            run: async () => {
              const outcome = await troupe.run(plan, null);
              if (outcome.status !== 'done')
                throw new Error(`bench: the run ended ${outcome.status}`);
            },
          },
        ],
        rounds,
      );
      const seq = samples.sequential as number[];
      // Per round: one task's time from the sequential run, then the best T threads can do.
      const steps = shape.levels.reduce((sum, level) => sum + Math.ceil(level / threads), 0);
      const bounds = seq.map((total) => (total / count) * steps);
      const overBound = perRound(samples.troupe as number[], bounds, (t, b) => t / b);
      const factor = perRound(seq, samples.troupe as number[], (s, t) => s / t);
      const boundFactor = perRound(seq, bounds, (s, b) => s / b);
      results.push({
        name: `dag, ${shape.name} (${count} subtasks of ~${ms} ms), ${threads} threads`,
        medians: {
          'sequential (ms)': spread(seq).median,
          'troupe (ms)': spread(samples.troupe as number[]).median,
          'bound: T perfect threads (ms)': spread(bounds).median,
        },
        comparisons: [
          { label: 'troupe wall ÷ bound (1.00 = as fast as T perfect threads)', spread: overBound },
          { label: 'factor: troupe (sequential ÷ troupe)', spread: factor },
          { label: 'factor: the bound (best possible)', spread: boundFactor },
        ],
        samples,
      });
    }
  } finally {
    await troupe.close();
  }
  return results;
}
