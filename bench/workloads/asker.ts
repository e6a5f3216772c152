/**
 * Asks `to` n times, one after another, and returns the median round trip in µs (measured on this
 * thread, so that the main thread's scheduling of the subtask is not in the figure).
 */
import type { TaskContext } from '../../src/pool/context.js';

export default async function asker(
  { n, to }: { n: number; to: string },
  ctx: TaskContext,
): Promise<number> {
  const times = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await ctx.ask(to, i);
    times[i] = performance.now() - start;
  }
  times.sort();
  return (times[n >> 1] as number) * 1000;
}
