/**
 * A run as a Chrome trace (the Trace Event Format's JSON object form), which Perfetto
 * (ui.perfetto.dev) and chrome://tracing open: one lane per worker thread with a complete event
 * (`ph: 'X'`) per attempt that ran there, a lane of the run's stages, and a counter of the
 * attempts handed out and not yet running. Times are integer microseconds since the run
 * started.
 */
import type { AttemptRecord, Outcome } from '../types.js';

/** One trace event, as the format names its fields. */
export interface TraceEvent {
  name: string;
  ph: 'X' | 'C' | 'M' | 'i';
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  cat?: string;
  s?: 't' | 'p' | 'g';
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms';
  otherData: Record<string, unknown>;
}

const PID = 1;
/** The lane of the run's stages. */
const STAGES_TID = 0;
/** The lane of attempts that no thread said it ran (cancelled before one took them, …). */
const NO_THREAD_TID = 999_999;

const us = (ms: number): number => Math.max(0, Math.round(ms * 1000));

/** The trace of a run from its outcome (`troupe run --trace file.json` writes this). */
export function toChromeTrace(outcome: Outcome): ChromeTrace {
  const events: TraceEvent[] = [];
  const end = us(outcome.metrics.wallMs);
  const meta = (tid: number, name: string, sort: number) => {
    events.push({ name: 'thread_name', ph: 'M', ts: 0, pid: PID, tid, args: { name } });
    events.push({
      name: 'thread_sort_index',
      ph: 'M',
      ts: 0,
      pid: PID,
      tid,
      args: { sort_index: sort },
    });
  };
  events.push({
    name: 'process_name',
    ph: 'M',
    ts: 0,
    pid: PID,
    tid: STAGES_TID,
    args: { name: `troupe ${outcome.plan} (${outcome.runId})` },
  });
  meta(STAGES_TID, 'stages', 0);
  // Stages: each lasts until the next begins; a final state is an instant.
  outcome.stages.forEach((entry, k) => {
    const ts = us(entry.atMs);
    const next = outcome.stages[k + 1];
    if (entry.stage === 'done' || entry.stage === 'failed' || entry.stage === 'cancelled') {
      events.push({
        name: entry.stage,
        ph: 'i',
        s: 't',
        ts,
        pid: PID,
        tid: STAGES_TID,
        cat: 'stage',
      });
      return;
    }
    const until = next === undefined ? end : us(next.atMs);
    events.push({
      name: entry.stage,
      ph: 'X',
      ts,
      dur: Math.max(0, until - ts),
      pid: PID,
      tid: STAGES_TID,
      cat: 'stage',
    });
  });
  // Attempts, by the thread that ran them.
  const lanes = new Map<number, AttemptRecord[]>();
  for (const a of outcome.attempts) {
    const tid = a.thread ?? NO_THREAD_TID;
    const lane = lanes.get(tid);
    if (lane === undefined) lanes.set(tid, [a]);
    else lane.push(a);
  }
  for (const [tid, attempts] of [...lanes].sort((a, b) => a[0] - b[0])) {
    meta(
      tid,
      tid === NO_THREAD_TID ? 'no thread reported' : `thread ${tid}`,
      tid === NO_THREAD_TID ? 1e6 : tid,
    );
    for (const slice of laneSlices(attempts)) events.push({ ...slice, pid: PID, tid });
  }
  // Handed out and not yet running: +1 at each hand-out, −1 when it starts on its thread.
  const steps: [number, number][] = [];
  for (const a of outcome.attempts) {
    const started = startOf(a);
    steps.push([us(a.dispatchedAtMs), 1], [started, -1]);
  }
  steps.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let depth = 0;
  for (const [ts, delta] of steps) {
    depth += delta;
    events.push({
      name: 'waiting for a thread',
      ph: 'C',
      ts,
      pid: PID,
      tid: STAGES_TID,
      args: { attempts: depth },
    });
  }
  return {
    traceEvents: events,
    displayTimeUnit: 'ms',
    otherData: {
      runId: outcome.runId,
      plan: outcome.plan,
      status: outcome.status,
      threads: outcome.metrics.threads,
    },
  };
}

/** When an attempt began on its thread: its run time back from when its result came home. */
function startOf(a: AttemptRecord): number {
  const ended = us(a.endedAtMs ?? a.dispatchedAtMs);
  return Math.max(us(a.dispatchedAtMs), ended - us(a.runMs));
}

/**
 * A lane's slices, one per attempt, none overlapping: results of a batch come home together, so
 * each slice ends where the next one of its thread begins (laid out back from the last), with
 * the run time the thread measured.
 */
function laneSlices(attempts: AttemptRecord[]): Omit<TraceEvent, 'pid' | 'tid'>[] {
  const byEnd = [...attempts].sort(
    (a, b) => (b.endedAtMs ?? b.dispatchedAtMs) - (a.endedAtMs ?? a.dispatchedAtMs),
  );
  const out: Omit<TraceEvent, 'pid' | 'tid'>[] = [];
  let cursor = Number.POSITIVE_INFINITY;
  for (const a of byEnd) {
    const ended = Math.min(us(a.endedAtMs ?? a.dispatchedAtMs), cursor);
    const start = Math.max(0, ended - us(a.runMs));
    cursor = start;
    out.push({
      name: `${a.subtask} · ${a.expert}`,
      ph: 'X',
      ts: start,
      dur: ended - start,
      cat: 'attempt',
      args: {
        subtask: a.subtask,
        expert: a.expert,
        attempt: a.attempt,
        outcome: a.status,
        queuedMs: Math.max(0, (start - us(a.dispatchedAtMs)) / 1000),
        ...(a.code === undefined ? {} : { code: a.code }),
      },
    });
  }
  return out.reverse();
}
