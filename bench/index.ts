/**
 * The benchmark entry: `npm run bench -- [--scope pool] [--quick] [--rounds N] [--threads N]
 * [--json] [--out file.json]`. Progress goes to stderr; the table (or with --json, one JSON
 * document) to stdout. Every result carries the machine and its load.
 */
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { describeEnvironment, environmentBefore } from './env.js';
import { fmtSpread } from './harness.js';
import { messagingSuite } from './suites/messaging.js';
import { type CaseResult, describeCase, poolSuite, type SuiteOptions } from './suites/pool.js';
import { runtimeSuite } from './suites/runtime.js';

const suites: Record<string, (options: SuiteOptions) => Promise<CaseResult[]>> = {
  pool: poolSuite,
  runtime: runtimeSuite,
  messaging: messagingSuite,
};

const { values } = parseArgs({
  options: {
    scope: { type: 'string', default: 'all' },
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    threads: { type: 'string' },
    json: { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write(
    `Usage: npm run bench -- [--scope ${Object.keys(suites).join('|')}|all] [--quick] [--rounds N] [--threads N] [--json] [--out file]\n`,
  );
  process.exit(0);
}

const scopes = values.scope === 'all' ? Object.keys(suites) : (values.scope ?? '').split(',');
for (const scope of scopes) {
  if (!(scope in suites)) {
    process.stderr.write(
      `bench: --scope: expected one of ${Object.keys(suites).join(', ')}, all; got "${scope}"\n`,
    );
    process.exit(2);
  }
}
const positive = (name: string, raw: string | undefined, fallback: number): number => {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench: --${name}: expected a positive integer, got "${raw}"\n`);
    process.exit(2);
  }
  return n;
};
const options: SuiteOptions = {
  quick: values.quick === true,
  rounds: positive('rounds', values.rounds, values.quick ? 3 : 9),
  threads: positive('threads', values.threads, Math.min(2, availableParallelism())),
};

const { env, finish } = environmentBefore();
process.stderr.write(
  `${describeEnvironment(env)}\nrounds: ${options.rounds}, threads: ${options.threads}${options.quick ? ', quick' : ''}\n`,
);
const results: Record<string, CaseResult[]> = {};
for (const scope of scopes) {
  process.stderr.write(`suite ${scope} `);
  results[scope] = await (suites[scope] as (o: SuiteOptions) => Promise<CaseResult[]>)(options);
  process.stderr.write('\n');
}
const environment = finish();
const document = { environment, options, results };

if (values.out !== undefined) await writeFile(values.out, `${JSON.stringify(document, null, 2)}\n`);
if (values.json) {
  process.stdout.write(`${JSON.stringify(document)}\n`);
} else {
  const lines = [
    describeEnvironment(environment),
    `rounds: ${options.rounds}; ratios are medians of per-round ratios [min–max]`,
    '',
  ];
  for (const [scope, cases] of Object.entries(results)) {
    lines.push(`== ${scope} ==`);
    for (const result of cases) {
      lines.push(...describeCase(result));
      for (const c of result.comparisons) {
        const verdict =
          c.target === undefined ? '' : `  target ${c.target}: ${c.pass ? 'met' : 'NOT MET'}`;
        lines.push(`  → ${c.label}: ${fmtSpread(c.spread, c.digits ?? 2)}${verdict}`);
      }
      lines.push('');
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
