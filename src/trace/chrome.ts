/**
 * A run as a Chrome trace (the Trace Event Format's JSON object form), which Perfetto
 * (ui.perfetto.dev) and chrome://tracing open: one lane per worker thread with a complete event
 * (`ph: 'X'`) per attempt that ran there, a lane of the run's stages, and a counter of the
 * attempts handed out and not yet running, and the run's messages: their handlers on lanes of
 * their own, with a flow from the attempt that sent each. Times are integer microseconds since
 * the run started.
 */
import type { Outcome } from '../types.js';
import { startOf, type ThreadLane, threadLanes, us } from './timeline.js';

/** One trace event, as the format names its fields. */
export interface TraceEvent {
  name: string;
  ph: 'X' | 'C' | 'M' | 'i' | 's' | 'f';
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  cat?: string;
  s?: 't' | 'p' | 'g';
  /** A flow's id (`ph: 's'` and `'f'`). */
  id?: number;
  /** `'e'`: a flow's end binds to the slice that encloses it. */
  bp?: 'e';
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
/** The first lanes of message handlers: inline ones run on the main thread, heavy ones on the pool. */
const INLINE_TID = 1_000_000;
const HEAVY_TID = 2_000_000;

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
  const lanes = threadLanes(outcome.attempts);
  for (const lane of lanes) {
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
  messageEvents(outcome, lanes, events, meta);
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

/**
 * Messages: each handler a slice on its lane, named `<from> → <to>`, and, for a message a
 * subtask sent, a flow from a `send` slice inside the sending attempt to it. Viewers bind a
 * flow's ends to slices of its category at the same time and lane (Chrome DevTools: equal cat,
 * pid, tid and ts; Perfetto: the enclosing slice), so both ends sit at slices of their own.
 */
function messageEvents(
  outcome: Outcome,
  lanes: readonly ThreadLane[],
  events: TraceEvent[],
  meta: (tid: number, name: string, sort: number) => void,
): void {
  // (An outcome made before messages were logged, or by hand, may have none.)
  const log = outcome.messageLog ?? [];
  if (log.length === 0) return;
  // Where each subtask's attempts ran, in time order: a send lies in the one that ran when it left.
  const placed = new Map<string, { tid: number; ts: number; end: number }[]>();
  for (const lane of lanes) {
    if (lane.thread === undefined) continue;
    for (const { attempt, startUs, durUs } of lane.slices) {
      const list = placed.get(attempt.subtask) ?? [];
      list.push({ tid: lane.thread, ts: startUs, end: startUs + durUs });
      placed.set(attempt.subtask, list);
    }
  }
  for (const list of placed.values()) list.sort((x, y) => x.ts - y.ts);
  const end = us(outcome.metrics.wallMs);
  // Handlers overlap (async inline ones, heavy ones of different receivers): each goes on the
  // first lane of its kind free at its start, so that no two slices of a lane overlap.
  const handled = log
    .map((m, k) => ({ m, k }))
    .filter(({ m }) => m.startedAtMs !== undefined && m.handler !== undefined)
    .sort((x, y) => (x.m.startedAtMs as number) - (y.m.startedAtMs as number));
  const free: Record<'inline' | 'heavy', number[]> = { inline: [], heavy: [] };
  for (const { m, k } of handled) {
    const kind = m.handler as 'inline' | 'heavy';
    const ts = us(m.startedAtMs as number);
    const until = Math.max(ts, m.endedAtMs === undefined ? end : us(m.endedAtMs));
    const lanesOfKind = free[kind];
    let row = lanesOfKind.findIndex((busyUntil) => busyUntil <= ts);
    if (row < 0) {
      row = lanesOfKind.length;
      lanesOfKind.push(0);
      const tid = (kind === 'inline' ? INLINE_TID : HEAVY_TID) + row;
      const label =
        kind === 'inline' ? 'message handlers (main thread)' : 'heavy message handlers (pool)';
      meta(tid, row === 0 ? label : `${label} ${row + 1}`, tid);
    }
    lanesOfKind[row] = until;
    const tid = (kind === 'inline' ? INLINE_TID : HEAVY_TID) + row;
    events.push({
      name: `${m.from} → ${m.to}`,
      ph: 'X',
      ts,
      dur: until - ts,
      pid: PID,
      tid,
      cat: 'message',
      args: {
        from: m.from,
        to: m.to,
        kind: m.kind,
        status: m.status,
        waitedMs: Math.max(0, Math.round(((m.startedAtMs as number) - m.sentAtMs) * 1000) / 1000),
        ...(m.subtask === undefined ? {} : { subtask: m.subtask }),
      },
    });
    const sender = m.subtask === undefined ? undefined : placed.get(m.subtask);
    if (sender === undefined) return;
    const sent = us(m.sentAtMs);
    // The attempt that ran when it left (results come home late: else the last one before).
    const attempt =
      sender.find((a) => a.ts <= sent && sent <= a.end) ??
      sender.filter((a) => a.ts <= sent).at(-1) ??
      (sender[0] as { tid: number; ts: number; end: number });
    const at = Math.min(Math.max(sent, attempt.ts), attempt.end);
    const id = k + 1;
    events.push(
      {
        name: `send → ${m.to}`,
        ph: 'X',
        ts: at,
        dur: Math.min(1, attempt.end - at),
        pid: PID,
        tid: attempt.tid,
        cat: 'message',
        args: { to: m.to, kind: m.kind },
      },
      { name: 'message', ph: 's', id, ts: at, pid: PID, tid: attempt.tid, cat: 'message' },
      { name: 'message', ph: 'f', bp: 'e', id, ts, pid: PID, tid, cat: 'message' },
    );
  }
}
