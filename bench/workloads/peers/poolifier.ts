/** poolifier's worker module for the speedup suite: runs the named workload, synchronously. */
import { ThreadWorker } from 'poolifier';
import { handlers } from './all.js';

interface Task {
  w: string;
  u: number;
}

export default new ThreadWorker((data?: Task) => {
  const task = data as Task;
  return (handlers[task.w] as (units: number) => unknown)(task.u);
});
