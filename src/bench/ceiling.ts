/**
 * The hand-written ceiling: T plain worker threads that share a task counter in memory and run
 * a workload until the counter passes n. No message per task, no queue, no pool: what T threads
 * can do at best on this machine.
 */
import { Worker } from 'node:worker_threads';
import { workload } from './paths.js';

export class Ceiling {
  readonly threads: number;
  readonly #workers: Worker[];

  constructor(threads: number) {
    this.threads = threads;
    this.#workers = Array.from({ length: threads }, () => new Worker(workload('ceiling')));
    for (const worker of this.#workers) worker.unref();
  }

  /** Runs `n` tasks of `units` each of the workload at `href` across the threads. */
  run(href: string, units: number, n: number): Promise<number> {
    const counter = new SharedArrayBuffer(4);
    return Promise.all(
      this.#workers.map(
        (worker) =>
          new Promise<number>((resolve, reject) => {
            const onError = (error: Error) => reject(error);
            worker.once('error', onError);
            worker.once('message', (done: number) => {
              worker.off('error', onError);
              resolve(done);
            });
            worker.postMessage({ href, units, n, counter });
          }),
      ),
    ).then((done) => done.reduce((a, b) => a + b, 0));
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}
