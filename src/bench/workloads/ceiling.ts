/**
 * The ceiling of the speedup suite: a hand-written worker thread that takes task numbers from a
 * shared counter and runs the workload until none are left — with no message per task, or, when
 * `report` is set, posting each task's result to the main thread as it ends (what any pool that
 * returns results must at least do).
 */
import { parentPort } from 'node:worker_threads';

interface Go {
  href: string;
  units: number;
  n: number;
  counter: SharedArrayBuffer;
  report: boolean;
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
  while (Atomics.add(next, 0, 1) < n) {
    const result = run(units);
    done++;
    if (report) parentPort?.postMessage({ result });
  }
  parentPort?.postMessage({ done });
});
