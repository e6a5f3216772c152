/**
 * The hand-written ceiling: T plain worker threads that share a task counter in memory and run
 * a workload until the counter passes n. No message per task, no queue, no pool: what T threads
 * can do at best on this machine.
 */
import { Worker } from 'node:worker_threads';
import { workload } from './paths.js';
import type { Report } from './workloads/ceiling.js';

export class Ceiling {
  readonly threads: number;
  readonly #workers: Worker[];

  constructor(threads: number) {
    this.threads = threads;
    this.#workers = Array.from({ length: threads }, () => new Worker(workload('ceiling')));
    for (const worker of this.#workers) worker.unref();
  }

  /**
   * Runs `n` tasks of `units` each of the workload at `href` across the threads; unless `report`
   * is `'silent'`, the threads post every result to the main thread (each as it ends, or in
   * bulk), and they are all received.
   */
  run(href: string, units: number, n: number, report: Report = 'silent'): Promise<number> {
    const counter = new SharedArrayBuffer(4);
    let received = 0;
    return Promise.all(
      this.#workers.map(
        (worker) =>
          new Promise<number>((resolve, reject) => {
            const onError = (error: Error) => reject(error);
            const onMessage = (message: { done?: number; results?: unknown[] }) => {
              if (message.done === undefined) {
                received += message.results?.length ?? 0;
                return;
              }
              worker.off('error', onError);
              worker.off('message', onMessage);
              resolve(message.done);
            };
            worker.once('error', onError);
            worker.on('message', onMessage);
            worker.postMessage({ href, units, n, counter, report });
          }),
      ),
    ).then((done) => {
      const total = done.reduce((a, b) => a + b, 0);
      if (report !== 'silent' && received !== total)
        throw new Error(`bench: the ceiling reported ${received} of ${total} results`);
      return total;
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}
