/**
 * Interleaved rounds: tinybench times each variant once per round (one iteration, no warm-up
 * inside the round: we warm up before), the order of variants rotates every round, and results
 * are ratios taken within each round, summarised as the median and min–max of those ratios.
 */
import { Bench } from 'tinybench';

export interface Variant {
  name: string;
  /** One full workload (e.g. 64 tasks), awaited. */
  run: () => Promise<unknown>;
  /** Untimed, after each run: wait until the variant left nothing running (threads it reaps). */
  settle?: () => Promise<void>;
}

/** ms per round, per variant, in round order. */
export type Samples = Record<string, number[]>;

export async function interleaved(
  variants: Variant[],
  rounds: number,
  warmups = 1,
): Promise<Samples> {
  for (let i = 0; i < warmups; i++) {
    for (const variant of variants) {
      await variant.run();
      await variant.settle?.();
    }
  }
  const samples: Samples = Object.fromEntries(variants.map((v) => [v.name, [] as number[]]));
  for (let round = 0; round < rounds; round++) {
    const bench = new Bench({
      iterations: 1,
      time: 0,
      warmup: false,
      retainSamples: true,
      throws: true,
    });
    for (let i = 0; i < variants.length; i++) {
      const variant = variants[(round + i) % variants.length] as Variant;
      // async: true, or tinybench calls the function once more to find out whether it is async.
      bench.add(
        variant.name,
        variant.run,
        variant.settle ? { async: true, afterAll: variant.settle } : { async: true },
      );
    }
    await bench.run();
    for (const task of bench.tasks) {
      const result = task.result;
      if (result.state !== 'completed')
        throw new Error(`bench variant ${task.name} did not complete: ${result.state}`);
      const sample = result.latency.samples?.[0];
      if (sample === undefined) throw new Error(`bench variant ${task.name} kept no sample`);
      samples[task.name]?.push(sample);
    }
    process.stderr.write('.');
  }
  return samples;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number };
}

/** Per-round `f(a[i], b[i])`, summarised. */
export function perRound(a: number[], b: number[], f: (x: number, y: number) => number): Spread {
  return spread(a.map((x, i) => f(x, b[i] as number)));
}

export const fmt = (n: number, digits = 2): string =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : String(n);

export const fmtSpread = (s: Spread, digits = 2): string =>
  `${fmt(s.median, digits)} [${fmt(s.min, digits)}–${fmt(s.max, digits)}]`;
