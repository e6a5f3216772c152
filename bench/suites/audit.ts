/**
 * The audit suite: README's main job (the folder audit, `npm start -- --compare-sequential`)
 * cold and warm, each audit in a fresh process (bench/audit/child.js) so that cold means what it
 * does for a CLI user: troupe created inside the timing — threads starting, the experts' modules
 * loaded and probed, nothing measured yet — against hand-written threads that also start inside
 * the timing. Warm: a first audit untimed on the same troupe (or threads) first, as a second
 * audit of a long-lived service runs; steady: after STEADY_AUDITS untimed ones, once V8 has
 * settled on troupe's code. The nine kinds rotate their order every round; ratios are per round.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { auditAvailable, type Measured, STEADY_AUDITS } from '../audit/child.js';
import { perRound, type Samples, spread } from '../harness.js';
import type { CaseResult, SuiteOptions } from '../types.js';

const KINDS = ['troupe', 'ceiling', 'sequential'] as const;
const TEMPERATURES = ['cold', 'warm', 'steady'] as const;

/** The audit's default bound (README's set-up), and a small one for a smoke run. */
export const auditFiles = (quick: boolean): number => (quick ? 300 : 2000);

export async function auditSuite(options: SuiteOptions): Promise<CaseResult[]> {
  const { rounds, quick, threads } = options;
  const files = auditFiles(quick);
  const name = `the folder audit (${files} files of node_modules, 3 subtasks each), ${threads} threads, a fresh process per audit`;
  if (!auditAvailable())
    return [
      {
        name,
        medians: {},
        comparisons: [],
        samples: {},
        notes: [
          'not measured: the folder audit (examples/folder-audit) is in the repository, not in the installed package',
        ],
      },
    ];
  const run = promisify(execFile);
  const child = fileURLToPath(new URL('../audit/child.js', import.meta.url));
  const variants = TEMPERATURES.flatMap((t) => KINDS.map((k) => `${k} ${t}`));
  const samples: Samples = Object.fromEntries(variants.map((v) => [v, []]));
  const warmUps: Samples = { 'troupe first audit': [], 'ceiling first audit': [] };
  const busy: Samples = Object.fromEntries(variants.map((v) => [v, []]));
  const gc: Samples = Object.fromEntries(variants.map((v) => [v, []]));
  // Where the kernel says (Linux): the CPU of the side's threads and of the process's helpers.
  const workers: Samples = Object.fromEntries(variants.map((v) => [v, []]));
  const helpers: Samples = Object.fromEntries(variants.map((v) => [v, []]));
  const parallelism: Samples = {
    'troupe cold': [],
    'ceiling cold': [],
    'troupe warm': [],
    'ceiling warm': [],
    'troupe steady': [],
    'ceiling steady': [],
  };
  let expected: string | undefined;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < variants.length; i++) {
      const variant = variants[(round + i) % variants.length] as string;
      const [kind, temperature] = variant.split(' ') as [string, string];
      const { stdout } = await run(
        process.execPath,
        [child, kind, temperature, String(threads), String(files)],
        { maxBuffer: 1 << 20 },
      );
      const measured = JSON.parse(stdout) as Measured;
      // The sides must have done the same work: the same totals, or the comparison is void.
      if (measured.totals === undefined)
        throw new Error(`bench: the audit's ${variant} reported no totals`);
      const found = JSON.stringify(measured.totals);
      expected ??= found;
      if (found !== expected)
        throw new Error(
          `bench: the audit's ${variant} found other totals (${found}) than the first audit (${expected})`,
        );
      samples[variant]?.push(measured.wallMs);
      busy[variant]?.push(measured.mainMs);
      gc[variant]?.push(measured.gcMs);
      if (measured.workersMs !== undefined) workers[variant]?.push(measured.workersMs);
      if (measured.helpersMs !== undefined) helpers[variant]?.push(measured.helpersMs);
      if (measured.parallelism !== undefined) parallelism[variant]?.push(measured.parallelism);
      // A fresh process's first audit, from the warm children only (the steady ones time theirs
      // the same way; one sample per round keeps the rounds' count).
      if (measured.warmMs !== undefined && temperature === 'warm')
        warmUps[`${kind} first audit`]?.push(measured.warmMs);
    }
    process.stderr.write('.');
  }
  const at = (v: string, from: Samples = samples) => from[v] as number[];
  const factor = (kind: string, t: string) =>
    perRound(at(`sequential ${t}`), at(`${kind} ${t}`), (s, p) => s / p);
  const ofCeiling = (t: string) => perRound(at(`ceiling ${t}`), at(`troupe ${t}`), (c, p) => c / p);
  const cold = ofCeiling('cold');
  const warm = ofCeiling('warm');
  const steady = ofCeiling('steady');
  return [
    {
      name,
      medians: {
        ...Object.fromEntries(variants.map((v) => [`${v} (ms)`, spread(at(v)).median])),
        ...Object.fromEntries(
          Object.entries(warmUps)
            .filter(([, v]) => v.length > 0)
            .map(([k, v]) => [`${k}, before warm (ms)`, spread(v).median]),
        ),
        ...Object.fromEntries(
          variants.map((v) => [`${v}: main thread (ms)`, spread(at(v, busy)).median]),
        ),
        ...Object.fromEntries(
          variants.map((v) => [`${v}: of which GC (ms)`, spread(at(v, gc)).median]),
        ),
        ...Object.fromEntries(
          variants
            .filter((v) => at(v, workers).length > 0)
            .map((v) => [`${v}: its threads' CPU (ms)`, spread(at(v, workers)).median]),
        ),
        ...Object.fromEntries(
          variants
            .filter((v) => at(v, helpers).length > 0)
            .map((v) => [`${v}: V8 and libuv helpers' CPU (ms)`, spread(at(v, helpers)).median]),
        ),
        ...Object.fromEntries(
          Object.entries(parallelism).map(([k, v]) => [
            `${k} parallelism (Σ run ÷ wall)`,
            spread(v).median,
          ]),
        ),
      },
      comparisons: [
        { label: 'factor cold: troupe', spread: factor('troupe', 'cold') },
        { label: 'factor cold: ceiling (hand-written threads)', spread: factor('ceiling', 'cold') },
        { label: 'factor warm: troupe', spread: factor('troupe', 'warm') },
        { label: 'factor warm: ceiling (hand-written threads)', spread: factor('ceiling', 'warm') },
        {
          label: 'troupe ÷ ceiling, cold (factor)',
          spread: cold,
          target: '≥ 0.90',
          pass: cold.median >= 0.9,
        },
        {
          label: 'troupe ÷ ceiling, warm (factor)',
          spread: warm,
          target: '≥ 0.97',
          pass: warm.median >= 0.97,
        },
        { label: 'factor steady: troupe', spread: factor('troupe', 'steady') },
        {
          label: 'factor steady: ceiling (hand-written threads)',
          spread: factor('ceiling', 'steady'),
        },
        { label: `troupe ÷ ceiling, steady (after ${STEADY_AUDITS} audits)`, spread: steady },
      ],
      samples: {
        ...samples,
        ...warmUps,
        ...Object.fromEntries(Object.entries(busy).map(([k, v]) => [`${k}: main thread`, v])),
        ...Object.fromEntries(Object.entries(gc).map(([k, v]) => [`${k}: GC`, v])),
        ...Object.fromEntries(
          Object.entries(workers)
            .filter(([, v]) => v.length > 0)
            .map(([k, v]) => [`${k}: its threads' CPU`, v]),
        ),
        ...Object.fromEntries(
          Object.entries(helpers)
            .filter(([, v]) => v.length > 0)
            .map(([k, v]) => [`${k}: helpers' CPU`, v]),
        ),
        ...Object.fromEntries(
          Object.entries(parallelism).map(([k, v]) => [`${k}: parallelism`, v]),
        ),
      },
    },
  ];
}
