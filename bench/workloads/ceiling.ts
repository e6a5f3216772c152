/**
 * The ceiling of the speedup suite: a hand-written worker thread that takes task numbers from a
 * shared counter and runs the workload until none are left — with no message per task
 * (`'silent'`), posting each task's result to the main thread as it ends (`'each'`: what a pool
 * that returns each result at once must at least do), or posting the results it holds once at
 * least `BULK_MS` have passed since its last post (`'bulk'`: the least a design that returns
 * results at all could cost).
 */
import { parentPort } from 'node:worker_threads';

export type Report = 'silent' | 'each' | 'bulk';

import { BULK_MS } from './bulk.js';

export { BULK_MS };

interface Go {
  href: string;
  units: number;
  n: number;
  counter: SharedArrayBuffer;
  report: Report;
}

const loaded = new Map<string, (units: number) => unknown>();

parentPort?.on('message', async ({ href, units, n, counter, report }: Go) => {
  let run = loaded.get(href);
  if (run === undefined) {
    run = ((await import(href)) as { default: (units: number) => unknown }).default;
    loaded.set(href, run);
  }
  const next = new Int32Array(counter);
  let done = 0;
  let held: unknown[] = [];
  let posted = performance.now();
  while (Atomics.add(next, 0, 1) < n) {
    const result = run(units);
    done++;
    if (report === 'each') parentPort?.postMessage({ results: [result] });
    else if (report === 'bulk') {
      held.push(result);
      const now = performance.now();
      if (now - posted >= BULK_MS) {
        parentPort?.postMessage({ results: held });
        held = [];
        posted = now;
      }
    }
  }
  if (held.length > 0) parentPort?.postMessage({ results: held });
  parentPort?.postMessage({ done });
});
