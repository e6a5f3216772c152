/**
 * Where each attempt of a run lies in time, per worker thread: what the Chrome trace
 * (`chrome.ts`) and the report page (`../report/report.ts`) draw. Results of a batch come home
 * together, so an attempt's start is its run time back from when the next one of its thread
 * began (laid out back from the last), never from its own arrival alone.
 */
import type { AttemptRecord } from '../types.js';

/** One attempt on its thread, times in integer microseconds since the run started. */
export interface Slice {
  attempt: AttemptRecord;
  startUs: number;
  durUs: number;
  /** From its hand-out to its start: time spent waiting for a thread. */
  queuedUs: number;
}

/** The attempts one thread ran, in order; `thread` undefined: no thread said it ran them. */
export interface ThreadLane {
  thread: number | undefined;
  slices: Slice[];
}

export const us = (ms: number): number => Math.max(0, Math.round(ms * 1000));

/** The attempts by the thread that ran them, lanes by thread id, the unknown thread last. */
export function threadLanes(attempts: readonly AttemptRecord[]): ThreadLane[] {
  const byThread = new Map<number | undefined, AttemptRecord[]>();
  for (const a of attempts) {
    const lane = byThread.get(a.thread);
    if (lane === undefined) byThread.set(a.thread, [a]);
    else lane.push(a);
  }
  return [...byThread]
    .sort(([a], [b]) => (a ?? Number.POSITIVE_INFINITY) - (b ?? Number.POSITIVE_INFINITY))
    .map(([thread, list]) => ({ thread, slices: laneSlices(list) }));
}

/** When an attempt began on its thread: its run time back from when its result came home. */
export function startOf(a: AttemptRecord): number {
  const ended = us(a.endedAtMs ?? a.dispatchedAtMs);
  return Math.max(us(a.dispatchedAtMs), ended - us(a.runMs));
}

/** A lane's slices, none overlapping, each ending where the next of its thread begins. */
function laneSlices(attempts: AttemptRecord[]): Slice[] {
  const byEnd = [...attempts].sort(
    (a, b) => (b.endedAtMs ?? b.dispatchedAtMs) - (a.endedAtMs ?? a.dispatchedAtMs),
  );
  const out: Slice[] = [];
  let cursor = Number.POSITIVE_INFINITY;
  for (const attempt of byEnd) {
    const ended = Math.min(us(attempt.endedAtMs ?? attempt.dispatchedAtMs), cursor);
    const start = Math.max(0, ended - us(attempt.runMs));
    cursor = start;
    out.push({
      attempt,
      startUs: start,
      durUs: ended - start,
      queuedUs: Math.max(0, start - us(attempt.dispatchedAtMs)),
    });
  }
  return out.reverse();
}
