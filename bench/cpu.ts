/**
 * The calling thread's own time on a CPU, in ms: on Linux from /proc/thread-self/schedstat
 * (nanoseconds, this thread alone), so that a main thread's work per subtask is read as what it
 * ran, not as how long its event loop was busy (event-loop utilisation also counts the time the
 * thread waited for a core the other tenants of a virtual machine took). Undefined where the
 * kernel does not say; callers fall back to event-loop utilisation and say so.
 */
import { readFileSync } from 'node:fs';

export function threadCpuMs(): number | undefined {
  try {
    const ns = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
    return Number.isFinite(ns) ? ns / 1e6 : undefined;
  } catch {
    return undefined;
  }
}
