// Bytes the main thread allocates per subtask, by V8's sampling heap profiler: runs of N no-op
// subtasks (one expert of concurrency 2, 2 threads), 5 runs sampled after 3 warm-ups, with the
// functions that allocate the most. Made to compare two builds, e.g. two worktrees:
//
//   npm run build && node bench/ab/alloc.mjs dist 10000
//   node bench/ab/alloc.mjs ../old/dist 10000
//
// Arguments: the build's dist folder (default dist) and N (default 10000).
import { Session } from 'node:inspector/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dist = 'dist', n = '10000'] = process.argv.slice(2);
const root = pathToFileURL(`${resolve(dist)}/`);
const { createTroupe, defineExpert } = await import(new URL('src/index.js', root).href);
const noop = new URL('bench/workloads/noop.js', root);
const N = Number(n);
const RUNS = 5;
const troupe = createTroupe({
  threads: 2,
  maxQueuedSubtasks: Math.max(N, 10_000),
  maxSubtasksPerRun: Math.max(N, 10_000),
  experts: [defineExpert({ name: 'noop', skills: { noop: 1 }, module: noop, concurrency: 2 })],
});
const plan = {
  analyze: () => Array.from({ length: N }, (_, i) => ({ id: `s${i}`, needs: 'noop', input: i })),
  integrate: () => null,
};
for (let i = 0; i < 3; i++) await troupe.run(plan, null);
const session = new Session();
session.connect();
await session.post('HeapProfiler.enable');
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 512,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
for (let i = 0; i < RUNS; i++) await troupe.run(plan, null);
const { profile } = await session.post('HeapProfiler.stopSampling');
await troupe.close();
const bySite = new Map();
let total = 0;
const walk = (node) => {
  const { functionName, url, lineNumber } = node.callFrame;
  const site = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${lineNumber + 1}`;
  bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
  total += node.selfSize;
  for (const child of node.children) walk(child);
};
walk(profile.head);
const perSubtask = (bytes) => bytes / RUNS / N;
console.log(
  `${perSubtask(total).toFixed(0)} bytes allocated per subtask (${dist}, ${N} subtasks a run)`,
);
for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 12))
  console.log(`${perSubtask(bytes).toFixed(0).padStart(6)}  ${site}`);
