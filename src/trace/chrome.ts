/**
 * A run as a Chrome trace (the Trace Event Format's JSON object form), which Perfetto
 * (ui.perfetto.dev) and chrome://tracing open: one lane per worker thread with a complete event
 * (`ph: 'X'`) per attempt that ran there, a lane of the run's stages, and a counter of the
 * attempts handed out and not yet running. Times are integer microseconds since the run
 * started.
 */
import type { Outcome } from '../types.js';
import { startOf, threadLanes, us } from './timeline.js';

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
  for (const lane of threadLanes(outcome.attempts)) {
    const tid = lane.thread ?? NO_THREAD_TID;
    meta(
      tid,
      lane.thread === undefined ? 'no thread reported' : `thread ${tid}`,
      lane.thread === undefined ? 1e6 : tid,
    );
    for (const { attempt: a, startUs, durUs, queuedUs } of lane.slices)
      events.push({
        name: `${a.subtask} · ${a.expert}`,
        ph: 'X',
        ts: startUs,
        dur: durUs,
        pid: PID,
        tid,
        cat: 'attempt',
        args: {
          subtask: a.subtask,
          expert: a.expert,
          attempt: a.attempt,
          outcome: a.status,
          queuedMs: queuedUs / 1000,
          ...(a.code === undefined ? {} : { code: a.code }),
        },
      });
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
