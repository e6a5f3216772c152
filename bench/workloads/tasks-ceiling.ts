/**
 * The ceiling for a job of mixed tasks (the folder audit's): a hand-written worker thread that
 * loads the handler modules it is given, takes task numbers from a shared counter, runs each
 * task's handler and posts the results it holds once at least `BULK_MS` have passed since its
 * last post — what a design that returns every result could do at best, with no queue, no
 * records and no message per task. A later message with a new counter runs the tasks again on
 * the loaded modules (the warm case).
 */
import { parentPort } from 'node:worker_threads';
import { BULK_MS } from './bulk.js';

export interface Task {
  /** Index into the modules of the message. */
  module: number;
  input: unknown;
}

export interface Go {
  modules: string[];
  tasks: Task[];
  counter: SharedArrayBuffer;
}

/** What a thread posts: results it held, or that it found no task left. */
export type Posted =
  | { results: [index: number, output: unknown, runMs: number][] }
  | { done: number };

const loaded = new Map<string, (input: unknown) => unknown>();

async function handler(href: string): Promise<(input: unknown) => unknown> {
  let run = loaded.get(href);
  if (run === undefined) {
    run = ((await import(href)) as { default: (input: unknown) => unknown }).default;
    loaded.set(href, run);
  }
  return run;
}

parentPort?.on('message', async ({ modules, tasks, counter }: Go) => {
  const handlers = await Promise.all(modules.map(handler));
  const next = new Int32Array(counter);
  let done = 0;
  let held: [number, unknown, number][] = [];
  let posted = performance.now();
  for (let i = Atomics.add(next, 0, 1); i < tasks.length; i = Atomics.add(next, 0, 1)) {
    const task = tasks[i] as Task;
    const started = performance.now();
    let output = (handlers[task.module] as (input: unknown) => unknown)(task.input);
    if (output instanceof Promise) output = await output;
    const now = performance.now();
    held.push([i, output, now - started]);
    done++;
    if (now - posted >= BULK_MS) {
      parentPort?.postMessage({ results: held } satisfies Posted);
      held = [];
      posted = now;
    }
  }
  if (held.length > 0) parentPort?.postMessage({ results: held } satisfies Posted);
  parentPort?.postMessage({ done } satisfies Posted);
});
