// How long V8 goes on compiling troupe's code: README's folder audit (2 000 files, 6 000
// subtasks, 2 threads) run N times on one troupe in one process, with V8 tracing its optimising
// compiler. For each audit: the milliseconds TurboFan spent compiling (the sum of the times it
// reports, on every thread: main and workers), how many functions it compiled (and how many of
// those it had compiled before: again after a deoptimisation, or whole after a loop of it was
// compiled on the stack), and how many optimised functions it threw away (deoptimisations).
// Compiles run on V8's helper threads, which on a machine whose cores the workers fill take a
// core from them; the audit suite's "cold", "warm" and "steady" cases are its first, second and
// seventh audit.
//
//   npm run build && node bench/ab/jit.mjs [audits, default 8]
//
// Compilation runs on the thread that asked for it here (--no-concurrent-recompilation), so
// that the trace says when it happened; the times are V8's own and vary with the machine.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const audits = Number(process.argv[2] ?? 8);
if (!Number.isInteger(audits) || audits < 1) {
  process.stderr.write(`jit: expected a number of audits ≥ 1, got "${process.argv[2]}"\n`);
  process.exit(2);
}
const MARK = '=== troupe audit ';

if (process.env.TROUPE_JIT_CHILD === undefined) {
  const child = spawnSync(
    process.execPath,
    [
      '--trace-opt',
      '--trace-deopt',
      '--no-concurrent-recompilation',
      fileURLToPath(import.meta.url),
      String(audits),
    ],
    { env: { ...process.env, TROUPE_JIT_CHILD: '1' }, maxBuffer: 1 << 28, encoding: 'utf8' },
  );
  if (child.error !== undefined) {
    process.stderr.write(`jit: the traced audits could not run: ${child.error.message}\n`);
    process.exit(1);
  }
  if (child.status !== 0) {
    process.stderr.write(child.stderr ?? '');
    process.exit(child.status ?? 1);
  }
  const per = new Map();
  // Functions compiled before, by V8's shared function info (an address: one the collector
  // moved counts as new, so "again" is a lower bound).
  const compiled = new Set();
  let at = 'before the first audit';
  for (const line of child.stdout.split('\n')) {
    if (line.startsWith(MARK)) {
      at = line.slice(MARK.length);
      continue;
    }
    const row = per.get(at) ?? { ms: 0, compiles: 0, again: 0, deopts: 0 };
    per.set(at, row);
    const took =
      /completed compiling .*\(sfi = (\w+)\).* took ([\d.]+), ([\d.]+), ([\d.]+) ms/.exec(line);
    if (took !== null) {
      row.ms += Number(took[2]) + Number(took[3]) + Number(took[4]);
      row.compiles++;
      if (compiled.has(took[1])) row.again++;
      compiled.add(took[1]);
    } else if (line.startsWith('[bailout (kind: deopt')) row.deopts++;
  }
  for (const [label, { ms, compiles, again, deopts }] of per)
    console.log(
      `${label.padEnd(22)} TurboFan ${ms.toFixed(1).padStart(6)} ms, ${String(compiles).padStart(3)} compiles (${String(again).padStart(2)} of functions compiled before), ${String(deopts).padStart(2)} deopts`,
    );
} else {
  const dist = new URL('../../dist/', import.meta.url);
  const examples = new URL('../../examples/folder-audit/', import.meta.url);
  const audit = await import(new URL('plan.mjs', examples).href);
  const dir = fileURLToPath(new URL('../../node_modules/', import.meta.url));
  const files = audit.listFiles(dir, { maxFiles: 2000 });
  for (const { path } of files) readFileSync(path);
  const { createTroupe } = await import(new URL('src/index.js', dist).href);
  const troupe = createTroupe({ experts: audit.experts, threads: 2 });
  for (let i = 1; i <= audits; i++) {
    console.log(`${MARK}audit ${i}`);
    const outcome = await troupe.run(audit.plan, { dir, files });
    if (outcome.status !== 'done') throw new Error(`jit: audit ${i} ended ${outcome.status}`);
  }
  console.log(`${MARK}after the last audit`);
  await troupe.close();
}
