/**
 * `troupe bench` (and `npm run bench`): runs the suites, prints a table (progress on stderr), and
 * writes JSON with every sample and the machine. Every result carries the machine and its load.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { type CommandIO, EXIT } from '../src/cli/registry.js';
import { type BenchDocument, compareDocuments } from './compare.js';
import { describeEnvironment, environmentBefore } from './env.js';
import { fmtSpread } from './harness.js';
import type { CaseResult, SuiteOptions } from './types.js';
import { BENCH_USAGE } from './usage.js';

type Suite = (options: SuiteOptions) => Promise<CaseResult[]>;

/** Suites by scope, loaded when chosen (each pulls in what it measures against). */
const SUITES: Record<string, () => Promise<Suite>> = {
  speedup: async () => (await import('./suites/speedup.js')).speedupSuite,
  scaling: async () => (await import('./suites/scaling.js')).scalingSuite,
  audit: async () => (await import('./suites/audit.js')).auditSuite,
  dag: async () => (await import('./suites/dag.js')).dagSuite,
  pool: async () => (await import('./suites/pool.js')).poolSuite,
  runtime: async () => (await import('./suites/runtime.js')).runtimeSuite,
  messaging: async () => (await import('./suites/messaging.js')).messagingSuite,
  user: async () => (await import('./suites/user.js')).userSuite,
  distributed: async () => (await import('./suites/distributed.js')).distributedSuite,
};
/** What `--scope all` runs (`user` needs `--suite`; `distributed`, redis-server and bullmq). */
const ALL = ['speedup', 'scaling', 'audit', 'dag', 'pool', 'runtime', 'messaging'];

class UsageError extends Error {}

const USAGE_TEXT = BENCH_USAGE;

function list(raw: string, flag: string): number[] {
  const values = raw.split(',').map((part) => Number(part.trim()));
  if (values.length === 0 || values.some((n) => !Number.isInteger(n) || n < 1))
    throw new UsageError(`--${flag}: expected positive integers separated by commas, got "${raw}"`);
  return values;
}

export async function runBench(argv: string[], io: CommandIO): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        scope: { type: 'string' },
        quick: { type: 'boolean', default: false },
        rounds: { type: 'string' },
        threads: { type: 'string' },
        suite: { type: 'string' },
        json: { type: 'boolean', default: false },
        out: { type: 'string' },
        chart: { type: 'string' },
        compare: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    }));
    if (values.help === true) {
      io.stdout(`${USAGE_TEXT}\n`);
      return EXIT.ok;
    }
    if (values.compare === true) {
      if (positionals.length !== 2)
        throw new UsageError(
          `--compare: expected two files (old.json new.json), got ${positionals.length}`,
        );
      const [before, after] = await Promise.all(positionals.map(readDocument));
      const report = compareDocuments(before as BenchDocument, after as BenchDocument);
      io.stdout(values.json === true ? `${JSON.stringify(report)}\n` : `${report.text}\n`);
      return EXIT.ok;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`troupe bench: ${message}\n\n${USAGE_TEXT}\n`);
    return EXIT.usage;
  }
  const cores = availableParallelism();
  let options: SuiteOptions;
  let scopes: string[];
  try {
    const scope =
      (values.scope as string | undefined) ?? (values.suite === undefined ? 'all' : 'user');
    scopes = scope === 'all' ? ALL : scope.split(',').map((s) => s.trim());
    for (const s of scopes) {
      if (!Object.hasOwn(SUITES, s))
        throw new UsageError(
          `--scope: expected one of ${Object.keys(SUITES).join(', ')}, all; got "${s}"`,
        );
    }
    if (scopes.includes('user') && values.suite === undefined)
      throw new UsageError('--scope user needs --suite <file>');
    const quick = values.quick === true;
    const threadList =
      values.threads === undefined ? [cores] : list(values.threads as string, 'threads');
    const rounds =
      values.rounds === undefined
        ? quick
          ? 3
          : 9
        : (list(values.rounds as string, 'rounds')[0] as number);
    options = {
      quick,
      rounds,
      threadList,
      threads: Math.max(...threadList.filter((t) => t <= cores), Math.min(...threadList)),
      cores,
      suite: values.suite as string | undefined,
    };
  } catch (error) {
    io.stderr(
      `troupe bench: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE_TEXT}\n`,
    );
    return EXIT.usage;
  }

  const { env, finish } = environmentBefore();
  process.stderr.write(
    `${describeEnvironment(env)}\nrounds: ${options.rounds}, threads: ${options.threadList.join(',')}${options.quick ? ', quick' : ''}\n`,
  );
  const results: Record<string, CaseResult[]> = {};
  for (const scope of scopes) {
    process.stderr.write(`suite ${scope} `);
    const suite = await (SUITES[scope] as () => Promise<Suite>)();
    results[scope] = await suite(options);
    process.stderr.write('\n');
  }
  const environment = finish();
  const document: BenchDocument = { environment, options, results };

  // Print first: a file that cannot be written must not lose a long run.
  if (values.json === true) {
    io.stdout(`${JSON.stringify(document)}\n`);
    return writeOutputs(document, values, io);
  }
  const lines = [
    describeEnvironment(environment),
    `rounds: ${options.rounds}; ratios are medians of per-round ratios [min–max]`,
    '',
  ];
  for (const [scope, cases] of Object.entries(results)) {
    lines.push(`== ${scope} ==`);
    for (const result of cases) lines.push(...describeResult(result), '');
  }
  io.stdout(`${lines.join('\n')}\n`);
  return writeOutputs(document, values, io);
}

/** --out and --chart; a failure is reported and makes the exit code 1, after the results. */
async function writeOutputs(
  document: BenchDocument,
  values: Record<string, string | boolean | undefined>,
  io: CommandIO,
): Promise<number> {
  let code: number = EXIT.ok;
  if (values.out !== undefined) {
    try {
      await writeFile(values.out as string, `${JSON.stringify(document, null, 2)}\n`);
    } catch (error) {
      io.stderr(`troupe bench: --out: cannot write ${values.out}: ${(error as Error).message}\n`);
      code = EXIT.failed;
    }
  }
  if (values.chart !== undefined) {
    const { factorChart } = await import('./chart.js');
    const svg = factorChart(document);
    if (svg === undefined) {
      io.stderr(
        'troupe bench: --chart: no speedup or scaling results to draw (add --scope scaling)\n',
      );
      code = EXIT.failed;
    } else {
      try {
        await writeFile(values.chart as string, svg);
      } catch (error) {
        io.stderr(
          `troupe bench: --chart: cannot write ${values.chart}: ${(error as Error).message}\n`,
        );
        code = EXIT.failed;
      }
    }
  }
  return code;
}

export function describeResult(result: CaseResult): string[] {
  const lines = [result.name];
  const width = Math.max(24, ...Object.keys(result.medians).map((k) => k.length));
  for (const [k, v] of Object.entries(result.medians)) {
    lines.push(
      `  ${k.padEnd(width)}  ${v.toLocaleString('en-US', { maximumFractionDigits: 2, minimumFractionDigits: 2 }).padStart(14)}`,
    );
  }
  for (const note of result.notes ?? []) lines.push(`  ${note}`);
  for (const c of result.comparisons) {
    const verdict =
      c.target === undefined ? '' : `  target ${c.target}: ${c.pass ? 'met' : 'NOT MET'}`;
    lines.push(`  → ${c.label}: ${fmtSpread(c.spread, c.digits ?? 2)}${verdict}`);
  }
  return lines;
}

async function readDocument(path: string): Promise<BenchDocument> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--compare: cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    const doc = JSON.parse(text) as BenchDocument;
    if (doc === null || typeof doc !== 'object' || typeof doc.results !== 'object')
      throw new Error('no "results" object');
    return doc;
  } catch (error) {
    throw new UsageError(
      `--compare: ${path} is not a troupe bench JSON document: ${(error as Error).message}`,
    );
  }
}
