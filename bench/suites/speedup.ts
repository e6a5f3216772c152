/**
 * The speedup suite: the parallel-over-sequential factor on real CPU-bound workloads (SHA-256,
 * gzip + brotli, a prime sieve, JSON), at ~0.1, ~1, ~5 and ~50 ms per task. Each case runs, in
 * interleaved rounds: the tasks one after another on the main thread (the baseline), a troupe run
 * with T threads, raw Piscina with T threads (min = max, everything queued), the other pools a
 * user would pick (poolifier, tinypool, workerpool: bench/peers.ts), and T hand-written worker
 * threads (the ceiling) — silent, posting each result, and posting results in bulk.
 * Factor = sequential ÷ parallel, per round.
 */
import { Piscina } from 'piscina';
import { Ceiling } from '../ceiling.js';
import { interleaved, perRound, spread } from '../harness.js';
import { workload } from '../paths.js';
import { loadPeerPools, type PeerPool } from '../peers.js';
import { calibrateUnits, loadWorkload, range, workloadTroupe } from '../shared.js';
import type { CaseResult, FactorPoint, SuiteOptions } from '../types.js';
import { BULK_MS } from '../workloads/ceiling.js';

export const WORKLOADS = ['sha256', 'compress', 'sieve', 'json'] as const;
const SIZES_MS = [0.1, 1, 5, 50];
/** The ceiling's threads posting each result to the main thread as it ends. */
const REPORTING = 'ceiling, a message per task';
/** The ceiling's threads posting the results they hold every BULK_MS. */
const BULK = `ceiling, results every ${BULK_MS} ms`;

/** Tasks per case: at least 8 per thread, and enough for ~200 ms of work (50 ms when quick). */
export function taskCount(threads: number, ms: number, quick: boolean): number {
  return Math.max(8 * threads, Math.ceil((quick ? 50 : 200) / ms));
}

export async function speedupSuite(options: SuiteOptions): Promise<CaseResult[]> {
  const { rounds, quick } = options;
  const sizes = quick ? [1] : SIZES_MS;
  const results: CaseResult[] = [];
  const units = new Map<string, number>();
  for (const name of WORKLOADS)
    for (const ms of sizes) units.set(`${name}@${ms}`, await calibrateUnits(name, ms));
  const sequential = new Map<string, (units: number) => unknown>();
  for (const name of WORKLOADS) sequential.set(name, await loadWorkload(name));

  for (const threads of options.threadList) {
    const troupe = workloadTroupe(threads, WORKLOADS);
    const pools = new Map(
      WORKLOADS.map((name) => [
        name,
        new Piscina({ filename: workload(name).href, minThreads: threads, maxThreads: threads }),
      ]),
    );
    const ceiling = new Ceiling(threads);
    const { pools: peers, missing } = await loadPeerPools(threads, WORKLOADS);
    try {
      for (const name of WORKLOADS) {
        for (const ms of sizes) {
          const u = units.get(`${name}@${ms}`) as number;
          const n = taskCount(threads, ms, quick);
          const run = sequential.get(name) as (units: number) => unknown;
          const pool = pools.get(name) as Piscina;
          const plan = {
            analyze: () => range(n).map((i) => ({ id: `t${i}`, needs: name, input: u })),
          };
          const samples = await interleaved(
            [
              {
                name: 'sequential',
                run: async () => {
                  for (let i = 0; i < n; i++) run(u);
                },
              },
              {
                name: 'troupe',
                run: async () => {
                  const outcome = await troupe.run(plan, null);
                  if (outcome.status !== 'done')
                    throw new Error(`bench: the troupe run ended ${outcome.status}`);
                },
              },
              {
                name: 'raw piscina',
                run: () => Promise.all(range(n).map(() => pool.run(u))),
              },
              ...peers.map((peer) => ({ name: peer.name, run: () => peer.run(name, u, n) })),
              {
                name: 'ceiling',
                run: async () => {
                  const done = await ceiling.run(workload(name).href, u, n);
                  if (done !== n) throw new Error(`bench: the ceiling ran ${done} of ${n} tasks`);
                },
              },
              {
                name: REPORTING,
                run: async () => {
                  const done = await ceiling.run(workload(name).href, u, n, 'each');
                  if (done !== n) throw new Error(`bench: the ceiling ran ${done} of ${n} tasks`);
                },
              },
              {
                name: BULK,
                run: async () => {
                  const done = await ceiling.run(workload(name).href, u, n, 'bulk');
                  if (done !== n) throw new Error(`bench: the ceiling ran ${done} of ${n} tasks`);
                },
              },
            ],
            rounds,
          );
          results.push(
            speedupCase(
              `${name}, ~${ms} ms × ${n} tasks, ${threads} threads`,
              threads,
              samples,
              peers,
              missing,
            ),
          );
        }
      }
    } finally {
      await Promise.all([
        troupe.close(),
        ceiling.close(),
        ...[...pools.values()].map((p) => p.destroy()),
        ...peers.map((p) => p.close()),
      ]);
    }
  }
  return results;
}

/** Factors, efficiency and the ratios the targets are about, from one case's samples. */
function speedupCase(
  name: string,
  threads: number,
  samples: Record<string, number[]>,
  peers: readonly PeerPool[],
  missing: readonly string[],
): CaseResult {
  const seq = samples.sequential as number[];
  const factor = (variant: string) => perRound(seq, samples[variant] as number[], (s, p) => s / p);
  const peerNames = peers.map((p) => p.name);
  const points: FactorPoint[] = ['troupe', 'raw piscina', ...peerNames, 'ceiling'].map(
    (variant) => ({
      variant,
      threads,
      factor: factor(variant),
    }),
  );
  const troupeVsRaw = perRound(
    samples['raw piscina'] as number[],
    samples.troupe as number[],
    (r, t) => r / t,
  );
  const troupeVsCeiling = perRound(
    samples.ceiling as number[],
    samples.troupe as number[],
    (c, t) => c / t,
  );
  const troupeVsReporting = perRound(
    samples[REPORTING] as number[],
    samples.troupe as number[],
    (c, t) => c / t,
  );
  const troupeVsBulk = perRound(
    samples[BULK] as number[],
    samples.troupe as number[],
    (c, t) => c / t,
  );
  const troupeFactor = factor('troupe');
  return {
    name,
    medians: Object.fromEntries(
      Object.entries(samples).map(([k, v]) => [`${k} (ms)`, spread(v).median]),
    ),
    comparisons: [
      { label: 'factor: troupe', spread: troupeFactor },
      { label: 'factor: raw piscina', spread: factor('raw piscina') },
      ...peerNames.map((peer) => ({ label: `factor: ${peer}`, spread: factor(peer) })),
      { label: 'factor: ceiling (hand-written threads)', spread: factor('ceiling') },
      { label: 'factor: ceiling, a message per task', spread: factor(REPORTING) },
      { label: `factor: ceiling, results every ${BULK_MS} ms`, spread: factor(BULK) },
      {
        label: 'efficiency: troupe (factor ÷ threads)',
        spread: {
          median: troupeFactor.median / threads,
          min: troupeFactor.min / threads,
          max: troupeFactor.max / threads,
        },
      },
      {
        label: 'troupe ÷ raw piscina (factor)',
        spread: troupeVsRaw,
        target: '≥ 1.00',
        pass: troupeVsRaw.median >= 1,
      },
      ...peerNames.map((peer) => {
        const ratio = perRound(
          samples[peer] as number[],
          samples.troupe as number[],
          (r, t) => r / t,
        );
        return {
          label: `troupe ÷ ${peer} (factor)`,
          spread: ratio,
          target: '≥ 1.00',
          pass: ratio.median >= 1,
        };
      }),
      {
        label: 'troupe ÷ ceiling (factor)',
        spread: troupeVsCeiling,
        target: '≥ 0.98',
        pass: troupeVsCeiling.median >= 0.98,
      },
      { label: 'troupe ÷ ceiling with a message per task (factor)', spread: troupeVsReporting },
      { label: `troupe ÷ ceiling with results every ${BULK_MS} ms (factor)`, spread: troupeVsBulk },
    ],
    samples,
    points,
    // Named in the table and the JSON: a pool that could not be loaded (an installed troupe
    // has no dev dependencies) is left out of the case, not skipped silently.
    ...(missing.length === 0 ? {} : { notes: missing.map((m) => `not measured: ${m}`) }),
  };
}
