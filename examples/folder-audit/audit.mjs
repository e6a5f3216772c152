#!/usr/bin/env node
// The main job: audit the text files of a folder with a troupe of three experts.
//   npm start -- [--dir path] [--max-files N] [--max-mb N] [--threads N] [--compare-sequential] [--warm] [--json]
//   npm start --silent -- --json   (one JSON document on stdout: --silent keeps npm's banner off it)
import { readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTroupe } from 'troupe';
// The troupe command's own flag parser (not part of the package's API): unknown flags are
// refused the same way, with the closest known one.
import { parseFlags } from '../../dist/src/cli/flags.js';
import { experts, listFiles, plan, TEXT } from './plan.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const USAGE = `Usage: npm start -- [--dir path] [--max-files N] [--max-mb N] [--threads N] [--compare-sequential] [--warm] [--json]

Audits the text files of a folder with three experts (hasher, compressor, analyst).

Options:
  --dir <path>          the folder to audit [default: this project's node_modules]
  --max-files <n>       at most this many text files [default: 2000]
  --max-mb <n>          at most this many MiB of them [default: 64]
  --threads <n>         worker threads [default: the cores]
  --compare-sequential  also run the same handlers one by one on the main thread
  --warm                run the audit once untimed first, on both sides
  --json                one JSON document on stdout (run npm with --silent, or npm's banner comes first)
  -h, --help            show this help`;
const fail = (message) => {
  process.stderr.write(`audit: ${message}\n`);
  process.exit(2);
};
let args;
try {
  const { values, positionals } = parseFlags(process.argv.slice(2), {
    dir: { type: 'string' },
    'max-files': { type: 'string' },
    'max-mb': { type: 'string' },
    threads: { type: 'string' },
    'compare-sequential': { type: 'boolean' },
    warm: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new Error(`unexpected argument "${positionals[0]}"`);
  args = {
    dir: resolve(root, 'node_modules'),
    'max-files': '2000',
    'max-mb': '64',
    threads: String(availableParallelism()),
    ...values,
  };
} catch (error) {
  fail(`${error.message}\n\n${USAGE}`);
}
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const number = (name) => {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < 1)
    fail(`--${name}: expected a positive integer, got "${args[name]}"`);
  return n;
};
const dir = resolve(args.dir);
// A folder that is not there would audit nothing: say so, rather than "no file was audited".
const found = statSync(dir, { throwIfNoEntry: false });
if (found === undefined) fail(`--dir: expected a folder, got ${dir}, which does not exist`);
if (!found.isDirectory())
  fail(
    `--dir: expected a folder, got ${dir}, which is ${found.isFile() ? 'a file' : 'not a folder'}`,
  );
if (
  args.json &&
  process.env.npm_lifecycle_event === 'start' &&
  process.env.npm_config_loglevel !== 'silent'
)
  process.stderr.write(
    'audit: npm printed its banner on stdout before the JSON document; `npm start --silent -- --json` leaves the document alone\n',
  );
const threads = number('threads');
const files = listFiles(dir, {
  maxFiles: number('max-files'),
  maxBytes: number('max-mb') * 2 ** 20,
});
if (files.length === 0) {
  process.stderr.write(`audit: ${dir} holds no text file to audit (${[...TEXT].join(' ')})\n`);
  process.exit(1);
}
// Warm the page cache once, untimed, so that neither run below pays the disk.
for (const { path } of files) readFileSync(path);

const troupe = createTroupe({ experts, threads });
// --warm: the same audit once, untimed, on the same troupe first: the timed run then finds its
// threads started and the experts' modules loaded and probed, as a long-lived service would.
let warmMs;
if (args.warm) {
  const warmStarted = performance.now();
  const warmUp = await troupe.run(plan, { dir, files });
  warmMs = performance.now() - warmStarted;
  if (warmUp.status !== 'done') {
    process.stderr.write(`audit: the warm-up run ended ${warmUp.status}\n`);
    process.exit(1);
  }
}
const started = performance.now();
const outcome = await troupe.run(plan, { dir, files });
const wallMs = performance.now() - started;
await troupe.close();

let sequential;
if (args['compare-sequential']) {
  // The same handlers, called one after another on the main thread: the baseline.
  const handlers = Object.fromEntries(
    await Promise.all(experts.map(async (e) => [e.name, (await import(e.module.href)).default])),
  );
  const kinds = { hash: handlers.hasher, compress: handlers.compressor, text: handlers.analyst };
  const subtasks = plan.analyze({ dir, files });
  // --warm: the handlers once untimed here too, so that both sides are measured warm.
  if (args.warm) for (const s of subtasks) kinds[s.id.split(':')[0]](s.input);
  const t0 = performance.now();
  for (const s of subtasks) kinds[s.id.split(':')[0]](s.input);
  const seqMs = performance.now() - t0;
  sequential = { wallMs: seqMs, factor: seqMs / wallMs, threads, warm: args.warm };
}

if (args.json) {
  // No process.exit(): a pipe takes a large write asynchronously, and exiting would cut it.
  process.stdout.write(
    `${JSON.stringify({ status: outcome.status, result: outcome.result, quality: outcome.quality, error: outcome.error, metrics: outcome.metrics, sequential, warmMs })}\n`,
  );
  process.exitCode = outcome.status === 'done' ? 0 : 1;
} else if (outcome.status !== 'done') {
  process.stderr.write(`audit ${outcome.status}: ${outcome.error.code} ${outcome.error.message}\n`);
  process.exitCode = 1;
} else {
  printReport(outcome);
}

function printReport(outcome) {
  const r = outcome.result;
  const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
  const lines = [
    `Folder audit of ${r.dir}`,
    `  ${r.totals.files} text files, ${kb(r.totals.bytes)}, ${r.totals.lines} lines, ${r.totals.words} words`,
    `  gzip ${kb(r.totals.gzip)} (${((r.totals.gzip / r.totals.bytes) * 100).toFixed(1)} %), brotli q5 ${kb(r.totals.brotli)} (${((r.totals.brotli / r.totals.bytes) * 100).toFixed(1)} %)`,
    '',
    'Largest files:',
    ...r.largest.map((f) => `  ${kb(f.bytes).padStart(11)}  ${f.file}`),
    'Least compressible (brotli size ÷ size):',
    ...r.leastCompressible.map((f) => `  ${f.brotliRatio.toFixed(3).padStart(11)}  ${f.file}`),
    `Most frequent terms: ${r.topTerms.map(([t, n]) => `${t} (${n})`).join(', ')}`,
    'Who did what:',
    ...Object.entries(r.whoDidWhat).map(
      ([name, w]) =>
        `  ${name.padEnd(11)} ${String(w.subtasks).padStart(5)} subtasks (${w.did.join(', ')}), ${w.runMs} ms on threads`,
    ),
    '',
    `Quality: ${JSON.stringify(outcome.quality)}`,
    `Run: ${outcome.metrics.subtasks} subtasks in ${outcome.metrics.wallMs.toFixed(0)} ms on ${threads} threads; parallelism ${outcome.metrics.parallelism.toFixed(2)} (Σ run ÷ wall), efficiency ${outcome.metrics.efficiency.toFixed(2)}, retries ${outcome.metrics.retries}, critical path ${outcome.metrics.criticalPathMs.toFixed(1)} ms`,
  ];
  if (warmMs !== undefined)
    lines.push(
      `Warm-up run (untimed above): ${warmMs.toFixed(0)} ms, with the threads' start-up and the experts' module loads and probes`,
    );
  if (sequential) {
    const startUp = sequential.warm
      ? 'both warmed up first'
      : "includes troupe's start-up of its threads";
    lines.push(
      `Sequential on the main thread: ${sequential.wallMs.toFixed(0)} ms → factor ${sequential.factor.toFixed(2)} (sequential ÷ troupe wall, ${threads} threads; ${startUp})`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
