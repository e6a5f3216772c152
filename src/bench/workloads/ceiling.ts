/**
 * The ceiling of the speedup suite: a hand-written worker thread that takes task numbers from a
 * shared counter (no message per task) and runs the workload until none are left.
 */
import { parentPort } from 'node:worker_threads';

interface Go {
  href: string;
  units: number;
  n: number;
  counter: SharedArrayBuffer;
}

const loaded = new Map<string, (units: number) => unknown>();

parentPort?.on('message', async ({ href, units, n, counter }: Go) => {
  let run = loaded.get(href);
  if (run === undefined) {
    run = ((await import(href)) as { default: (units: number) => unknown }).default;
    loaded.set(href, run);
  }
  const next = new Int32Array(counter);
  let done = 0;
  while (Atomics.add(next, 0, 1) < n) {
    run(units);
    done++;
  }
  parentPort?.postMessage(done);
});
