/**
 * The calling thread's own time on a CPU, in ms: on Linux from /proc/thread-self/schedstat
 * (nanoseconds, this thread alone), so that a main thread's work per subtask is read as what it
 * ran, not as how long its event loop was busy (event-loop utilisation also counts the time the
 * thread waited for a core the other tenants of a virtual machine took). Undefined where the
 * kernel does not say; callers fall back to event-loop utilisation and say so.
 */
import { readdirSync, readFileSync } from 'node:fs';

export function threadCpuMs(): number | undefined {
  try {
    const ns = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
    return Number.isFinite(ns) ? ns / 1e6 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every thread of this process and its own time on a CPU, in ms, by thread id: on Linux from
 * /proc/self/task/<id>/schedstat. What the audit splits a side's CPU by: its main thread, the
 * threads it started (its workers) and the threads the process had before (V8's compiler and
 * garbage-collector helpers, libuv's pool). Undefined where the kernel does not say; a thread
 * that ends between the listing and its read is left out.
 */
export function processThreadsCpuMs(): Map<number, number> | undefined {
  let ids: string[];
  try {
    ids = readdirSync('/proc/self/task');
  } catch {
    return undefined;
  }
  const cpu = new Map<number, number>();
  for (const id of ids) {
    try {
      const ns = Number(readFileSync(`/proc/self/task/${id}/schedstat`, 'utf8').split(' ')[0]);
      if (Number.isFinite(ns)) cpu.set(Number(id), ns / 1e6);
    } catch {
      // It ended meanwhile.
    }
  }
  return cpu;
}
