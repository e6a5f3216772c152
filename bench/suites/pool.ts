/**
 * The pool suite: troupe's pool against raw Piscina (min = max threads, everything queued),
 * Piscina with its default options, and the same work on the main thread, in one process.
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Piscina } from 'piscina';
import { createPool } from '../../src/pool/pool.js';
import { interleaved, perRound, type Samples, spread } from '../harness.js';
import { workload } from '../paths.js';
import { calibrate, idleRss, range, throughputCase } from '../shared.js';
import type { CaseResult, Comparison, SuiteOptions } from '../types.js';

/**
 * Piscina's defaults reap threads above minThreads as soon as they idle (idleTimeout 0). A thread
 * being torn down burns a core: wait for those exits, untimed, so that they do not land in the
 * next variant's time.
 */
function reaped(pool: Piscina): () => Promise<void> {
  return async () => {
    const seen = pool.threads;
    for (let i = 0; i < 400 && pool.threads.length > pool.options.minThreads; i++) await sleep(5);
    const live = new Set(pool.threads);
    await Promise.all(
      seen.filter((w) => !live.has(w) && w.threadId !== -1).map((w) => once(w, 'exit')),
    );
  };
}

export async function poolSuite(options: SuiteOptions): Promise<CaseResult[]> {
  const { threads, rounds, quick } = options;
  const noop = workload('noop').href;
  const sha = workload('sha256').href;
  const troupe = createPool({
    threads,
    modules: {
      noop: { url: noop, batch: 1 },
      noopAuto: { url: noop, batch: 'auto' },
      sha: { url: sha, batch: 1 },
      shaAuto: { url: sha, batch: 'auto' },
    },
  });
  const piscina = new Piscina({ filename: noop, minThreads: threads, maxThreads: threads });
  const defaults = new Piscina({ filename: noop });
  const { default: sha256 } = (await import(sha)) as { default: (rounds: number) => string };
  const results: CaseResult[] = [];

  try {
    // --- no-op throughput, everything in flight --------------------------------------------------
    {
      const n = quick ? 2_000 : 10_000;
      const samples = await interleaved(
        [
          {
            name: 'troupe (batch 1)',
            run: () => Promise.all(range(n).map((i) => troupe.run('noop', i))),
          },
          {
            name: "troupe (batch 'auto')",
            run: () => Promise.all(range(n).map((i) => troupe.run('noopAuto', i))),
          },
          {
            name: `piscina ${threads}/${threads}`,
            run: () => Promise.all(range(n).map((i) => piscina.run(i))),
          },
          {
            name: 'piscina defaults',
            run: () => Promise.all(range(n).map((i) => defaults.run(i))),
          },
        ],
        rounds,
      );
      const raw = `piscina ${threads}/${threads}`;
      results.push(
        throughputCase({
          name: `no-op tasks, ${n} in flight (tasks/s)`,
          n,
          samples,
          subject: 'troupe (batch 1)',
          baseline: raw,
          label: 'troupe (batch 1) ÷ raw piscina, throughput',
          target: '≥ 1.00',
          pass: (ratio) => ratio.median >= 1,
          more: [
            {
              label: "troupe (batch 'auto') ÷ raw piscina, throughput",
              spread: perRound(
                samples["troupe (batch 'auto')"] as number[],
                samples[raw] as number[],
                (t, p) => p / t,
              ),
            },
          ],
        }),
      );
    }

    // --- latency, one task at a time ------------------------------------------------------------
    // Tasks of the two pools alternate one by one (order flipped every other pair), each timed
    // alone; a round's figure is the difference of the two medians. Drift hits both alike.
    {
      const n = quick ? 300 : 2_000;
      const rawName = `piscina ${threads}/${threads}`;
      const medians: Samples = { troupe: [], [rawName]: [] };
      for (let i = 0; i < 50; i++) await Promise.all([troupe.run('noop', i), piscina.run(i)]);
      for (let round = 0; round < rounds; round++) {
        const t: number[] = [];
        const p: number[] = [];
        for (let i = 0; i < n; i++) {
          const troupeFirst = (i & 1) === 0;
          for (const which of troupeFirst ? [0, 1] : [1, 0]) {
            const started = performance.now();
            if (which === 0) await troupe.run('noop', i);
            else await piscina.run(i);
            (which === 0 ? t : p).push((performance.now() - started) * 1000);
          }
        }
        medians.troupe?.push(spread(t).median);
        medians[rawName]?.push(spread(p).median);
        process.stderr.write('.');
      }
      const added = perRound(
        medians.troupe as number[],
        medians[rawName] as number[],
        (a, b) => a - b,
      );
      results.push({
        name: `latency, ${n} tasks one at a time, alternating pools (median µs per task)`,
        medians: Object.fromEntries(Object.entries(medians).map(([k, v]) => [k, spread(v).median])),
        comparisons: [
          {
            label: 'added latency over raw piscina (µs)',
            spread: added,
            target: '≤ 5.00',
            pass: added.median <= 5,
          },
        ],
        samples: medians,
      });
    }

    // --- CPU-bound SHA-256: factor over sequential -------------------------------------------------
    const cpuCases = quick
      ? [
          { ms: 5, n: 16, batched: false },
          { ms: 1, n: 64, batched: true },
        ]
      : [
          { ms: 5, n: 64, batched: false },
          { ms: 50, n: 64, batched: false },
          { ms: 1, n: 512, batched: true },
        ];
    for (const { ms, n, batched } of cpuCases) {
      const work = await calibrate(ms);
      const all = (run: (i: number) => Promise<unknown>) => () => Promise.all(range(n).map(run));
      const variants = [
        {
          name: 'sequential (main thread)',
          run: async () => {
            for (let i = 0; i < n; i++) sha256(work);
          },
        },
        { name: 'troupe (batch 1)', run: all(() => troupe.run('sha', work)) },
        {
          name: `piscina ${threads}/${threads}`,
          run: all(() => piscina.run(work, { filename: sha })),
        },
        {
          name: 'piscina defaults',
          run: all(() => defaults.run(work, { filename: sha })),
          settle: reaped(defaults),
        },
      ];
      if (batched)
        variants.splice(1, 0, {
          name: "troupe (batch 'auto')",
          run: all(() => troupe.run('shaAuto', work)),
        });
      const samples = await interleaved(variants, rounds);
      const seq = samples['sequential (main thread)'] as number[];
      const factor = (name: string) => perRound(seq, samples[name] as number[], (s, v) => s / v);
      const comparisons: Comparison[] = variants
        .slice(1)
        .map((v) => ({ label: `factor: ${v.name}`, spread: factor(v.name) }));
      const raw = samples[`piscina ${threads}/${threads}`] as number[];
      const vsRaw = perRound(samples['troupe (batch 1)'] as number[], raw, (t, p) => p / t);
      comparisons.push({
        label: 'troupe (batch 1) factor ÷ raw piscina factor',
        spread: vsRaw,
        target: '≥ 1.00',
        pass: vsRaw.median >= 1,
      });
      if (batched) {
        const f = factor("troupe (batch 'auto')");
        comparisons.push({
          label: "factor: troupe (batch 'auto'), target",
          spread: f,
          target: '≥ 1.80',
          pass: f.median >= 1.8,
        });
      }
      results.push({
        name: `${n} × ~${ms} ms SHA-256 tasks, ${threads} threads (ms per round)`,
        medians: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, spread(v).median])),
        comparisons,
        samples,
      });
    }
  } finally {
    await Promise.all([troupe.destroy(), piscina.destroy(), defaults.destroy()]);
  }

  results.push(
    await idleRss(
      'troupe',
      'idle RSS, 2 threads (MiB, each pool in a fresh process)',
      quick ? 3 : 7,
    ),
  );
  return results;
}
