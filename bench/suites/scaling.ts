/**
 * The scaling suite: the factor of one workload (SHA-256, ~5 ms a task) for T = 1 … cores + 2
 * threads — past the cores to show the plateau — for troupe and for the hand-written ceiling,
 * against one sequential baseline in the same rounds. An Amdahl fit (the serial fraction) is
 * made only from ≥ 3 thread counts up to the cores; with fewer, the suite says so.
 */
import { performance as hooks } from 'node:perf_hooks';
import type { Troupe } from '../../src/troupe.js';
import { Ceiling } from '../ceiling.js';
import { threadCpuMs } from '../cpu.js';
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

/**
 * The Universal Scalability Law, factor(T) = T ÷ (1 + σ(T − 1) + κT(T − 1)), fitted by least
 * squares on T ÷ factor − 1 = σ(T − 1) + κT(T − 1). Undefined with fewer than 3 points.
 */
export function uslFit(
  points: { threads: number; factor: number }[],
): { sigma: number; kappa: number } | undefined {
  if (points.length < 3) return undefined;
  let aa = 0;
  let ab = 0;
  let bb = 0;
  let ay = 0;
  let by = 0;
  for (const { threads: t, factor } of points) {
    const a = t - 1;
    const b = t * (t - 1);
    const y = t / factor - 1;
    aa += a * a;
    ab += a * b;
    bb += b * b;
    ay += a * y;
    by += b * y;
  }
  const det = aa * bb - ab * ab;
  if (det === 0) return undefined;
  return {
    sigma: Math.max(0, (ay * bb - by * ab) / det),
    kappa: Math.max(0, (by * aa - ay * ab) / det),
  };
}

/** Amdahl's factor at `threads` for serial fraction `s`. */
export const amdahl = (s: number, threads: number): number => 1 / (s + (1 - s) / threads);

const eventLoop = hooks.eventLoopUtilization.bind(hooks);

/** The thread counts the projections are printed for. */
export const PROJECTED = [4, 8, 16, 32, 64];

export async function scalingSuite(options: SuiteOptions): Promise<CaseResult[]> {
  const results = [await factorCase(options)];
  for (const ms of options.quick ? [1] : [0.1, 1, 5])
    results.push(await coordinatorCase(options, ms));
  return results;
}

/**
 * The coordinator's serial work: the main thread's busy time per subtask (its event-loop
 * utilisation over the run × the run's wall time ÷ subtasks) next to the threads' time per
 * subtask, the serial fraction s = c ÷ (c + w) that makes, and Amdahl's factor for 4 … 64
 * threads from it. Measured on one thread fewer than the cores, so that the main thread has a
 * core of its own; what it still waits for (the machine's other load) counts as busy, so s is an
 * upper bound and the projection a lower one.
 */
async function coordinatorCase(options: SuiteOptions, ms: number): Promise<CaseResult> {
  const { rounds, quick, cores } = options;
  // One core left to the main thread, so that its busy time is its own work, not time it
  // waited for a core; enough subtasks that a run's own fixed cost is spread thin.
  const threads = Math.max(1, cores - 1);
  const n = quick ? taskCount(threads, ms, quick) : Math.max(400, taskCount(threads, ms, quick));
  const units = await calibrateUnits('sha256', ms);
  const troupe = workloadTroupe(threads, ['sha256']);
  const plan = {
    analyze: () => range(n).map((i) => ({ id: `t${i}`, needs: 'sha256', input: units })),
  };
  const perSubtask: number[] = [];
  const busyPerSubtask: number[] = [];
  const work: number[] = [];
  const factors: number[] = [];
  try {
    const samples = await interleaved(
      [
        {
          name: 'troupe',
          run: async () => {
            const before = eventLoop();
            const cpu = threadCpuMs();
            const t0 = performance.now();
            const outcome = await troupe.run(plan, null);
            const wall = performance.now() - t0;
            const cpuAfter = threadCpuMs();
            const elu = eventLoop(before);
            if (outcome.status !== 'done')
              throw new Error(`bench: the run ended ${outcome.status}`);
            const ran = outcome.records.reduce((sum, r) => sum + r.runMs, 0);
            const busy = (elu.utilization * wall) / n;
            busyPerSubtask.push(busy);
            // Its own time on a CPU where the kernel says (see cpu.ts), else its busy time.
            perSubtask.push(
              cpu === undefined || cpuAfter === undefined ? busy : (cpuAfter - cpu) / n,
            );
            work.push(ran / n);
            factors.push(ran / wall);
          },
        },
      ],
      rounds,
    );
    const c = spread(perSubtask);
    const onCpu = threadCpuMs() !== undefined;
    const what = onCpu
      ? "the main thread's own time on a CPU (/proc/thread-self/schedstat)"
      : "the main thread's busy time (event-loop utilisation × wall: this system gives no thread's CPU time)";
    const w = spread(work).median;
    const serial = c.median / (c.median + w);
    const projected = PROJECTED.map((t) => ({ threads: t, factor: amdahl(serial, t) }));
    const points: FactorPoint[] = [
      { variant: `measured, ~${ms} ms`, threads, factor: spread(factors) },
      ...projected.map((p) => ({
        variant: `projected, ~${ms} ms`,
        threads: p.threads,
        factor: { median: p.factor, min: p.factor, max: p.factor },
      })),
    ];
    return {
      name: `coordinator: SHA-256 ~${ms} ms × ${n} subtasks on ${threads} thread${threads === 1 ? '' : 's'}: the main thread's work per subtask (ms)`,
      medians: {
        'main thread per subtask (ms)': c.median,
        'main thread busy per subtask (ms)': spread(busyPerSubtask).median,
        'threads per subtask (ms)': w,
        'serial fraction (%)': serial * 100,
        [`factor at ${threads} thread${threads === 1 ? '' : 's'}, measured`]:
          spread(factors).median,
        ...Object.fromEntries(
          projected.map((p) => [`factor at ${p.threads}, projected`, p.factor]),
        ),
      },
      comparisons: [
        { label: 'main thread per subtask, ms, per round', spread: c, digits: 4 },
        {
          label: 'main thread busy (event-loop utilisation × wall) per subtask, ms, per round',
          spread: spread(busyPerSubtask),
          digits: 4,
        },
        {
          label: `factor at ${threads} thread${threads === 1 ? '' : 's'}, per round`,
          spread: spread(factors),
        },
      ],
      notes: [
        `Amdahl from the measured serial work: s = c ÷ (c + w) = ${(serial * 100).toFixed(2)} %, factor(T) = 1 ÷ (s + (1 − s) ÷ T); c is ${what} on ${threads} thread${threads === 1 ? '' : 's'} (a core left to it)`,
      ],
      samples,
      points,
    };
  } finally {
    await troupe.close();
  }
}

async function factorCase(options: SuiteOptions): Promise<CaseResult> {
  const { rounds, quick, cores } = options;
  const ms = quick ? 1 : 5;
  // One case: the factor against threads.
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
      const usl = uslFit(fit);
      notes.push(
        usl === undefined
          ? `USL fit (${variant}): not made: it needs ≥ 3 thread counts up to the cores, and this machine has ${cores} core${cores === 1 ? '' : 's'}`
          : `USL fit (${variant}): σ ${usl.sigma.toFixed(4)}, κ ${usl.kappa.toFixed(5)}; projected factor ${PROJECTED.map((t) => `${t}: ${(t / (1 + usl.sigma * (t - 1) + usl.kappa * t * (t - 1))).toFixed(1)}`).join(', ')}`,
      );
    }
    return {
      name: `scaling: SHA-256 ~${ms} ms × ${n} tasks, T = 1 … ${cores + 2} (${cores} cores)`,
      medians: Object.fromEntries(
        Object.entries(samples).map(([k, v]) => [`${k} (ms)`, spread(v).median]),
      ),
      comparisons,
      samples,
      notes,
      points,
    };
  } finally {
    await Promise.all([
      ...[...troupes.values()].map((t) => t.close()),
      ...[...ceilings.values()].map((c) => c.close()),
    ]);
  }
}
