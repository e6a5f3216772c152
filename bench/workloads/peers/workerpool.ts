/** workerpool's worker script for the speedup suite: runs the named workload, synchronously. */
import workerpool from 'workerpool';
import { handlers } from './all.js';

workerpool.worker({
  run: (w: string, u: number) => (handlers[w] as (units: number) => unknown)(u),
});
