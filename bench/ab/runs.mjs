// Runs of N no-op subtasks on one troupe, one after another: µs per subtask (median, min, max
// of R runs after one warm-up). Made to compare two builds of troupe, e.g. two worktrees, one
// process each, under a CPU profile:
//
//   node --cpu-prof --cpu-prof-dir=prof/old bench/ab/runs.mjs ../old/dist 1000 300 index.js
//   node --cpu-prof --cpu-prof-dir=prof/new bench/ab/runs.mjs dist 1000 300 src/index.js
//
// (the main thread's profile is the file whose thread id is 0: CPU.<date>.<pid>.0.<n>.cpuprofile).
// Arguments: the build's dist folder, N (default 100000), R (default 7), and where the package's
// entry lies in that folder (src/index.js since the benchmarks moved to bench/; index.js before).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dist = 'dist', n = '100000', r = '7', index = 'src/index.js'] = process.argv.slice(2);
const root = resolve(dist);
const { createTroupe, defineExpert } = await import(pathToFileURL(`${root}/${index}`).href);
const noop = pathToFileURL(`${root}/bench/workloads/noop.js`);
const N = Number(n);
const troupe = createTroupe({
  threads: 2,
  maxQueuedSubtasks: Math.max(N, 10_000),
  maxSubtasksPerRun: Math.max(N, 10_000),
  experts: [defineExpert({ name: 'noop', skills: { noop: 1 }, module: noop, concurrency: 2 })],
});
await troupe.probed();
const plan = {
  analyze: () => Array.from({ length: N }, (_, i) => ({ id: `s${i}`, needs: 'noop', input: i })),
};
const times = [];
for (let i = 0; i <= Number(r); i++) {
  const t0 = performance.now();
  const outcome = await troupe.run(plan, null);
  const ms = performance.now() - t0;
  if (outcome.status !== 'done') throw new Error(`run ${i}: ${outcome.status}`);
  if (i > 0) times.push((ms * 1000) / N);
}
times.sort((a, b) => a - b);
const round = (x) => Math.round(x * 100) / 100;
console.log(
  JSON.stringify({
    dist: root,
    subtasks: N,
    runs: times.length,
    median: round(times[times.length >> 1]),
    min: round(times[0]),
    max: round(times.at(-1)),
  }),
);
await troupe.close();
