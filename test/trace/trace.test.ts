// A run as a Chrome trace (src/trace/chrome.ts): the keys the format needs, integer
// microseconds, one complete event per attempt in the outcome on its thread's lane, no two
// slices of a lane overlapping, the stages in order, and a counter that returns to zero. The
// outcome's attempts match its records; troupe run --trace writes it, and --json records carry
// their start and end.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ChromeTrace,
  createTroupe,
  defineExpert,
  type Outcome,
  type Troupe,
  toChromeTrace,
} from '../../dist/src/index.js';
import { fixture } from '../helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const open: Troupe[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close({ force: true })));
});

/** What any viewer needs of the trace; returns the attempt slices by lane. */
function checkTrace(
  trace: ChromeTrace,
  outcome: Outcome,
): Map<number, { ts: number; dur: number }[]> {
  expect(trace.displayTimeUnit).toBe('ms');
  const lanes = new Map<number, { ts: number; dur: number }[]>();
  const named = new Set<number>();
  for (const e of trace.traceEvents) {
    expect(typeof e.name).toBe('string');
    expect(['X', 'C', 'M', 'i', 's', 'f']).toContain(e.ph);
    expect(Number.isInteger(e.ts) && e.ts >= 0, `ts of ${e.name}`).toBe(true);
    expect(Number.isInteger(e.pid)).toBe(true);
    expect(Number.isInteger(e.tid)).toBe(true);
    if (e.ph === 'X') expect(Number.isInteger(e.dur) && (e.dur as number) >= 0).toBe(true);
    if (e.ph === 'M' && e.name === 'thread_name') named.add(e.tid);
    if (e.ph === 'X' && e.cat === 'attempt') {
      const lane = lanes.get(e.tid) ?? [];
      lane.push({ ts: e.ts, dur: e.dur as number });
      lanes.set(e.tid, lane);
    }
  }
  // Every lane's slices nest or follow one another: none overlaps another in part.
  const byLane = new Map<number, { ts: number; end: number }[]>();
  for (const e of trace.traceEvents)
    if (e.ph === 'X') {
      const lane = byLane.get(e.tid) ?? [];
      lane.push({ ts: e.ts, end: e.ts + (e.dur as number) });
      byLane.set(e.tid, lane);
    }
  for (const [tid, slices] of byLane) {
    expect(named, `lane ${tid} is named`).toContain(tid);
    const open: number[] = [];
    for (const s of slices.sort((a, b) => a.ts - b.ts || b.end - a.end)) {
      while (open.length > 0 && (open.at(-1) as number) <= s.ts) open.pop();
      if (open.length > 0)
        expect(s.end, `lane ${tid}: a slice overlaps its parent`).toBeLessThanOrEqual(
          open.at(-1) as number,
        );
      open.push(s.end);
    }
  }
  for (const [tid, slices] of lanes) {
    expect(named, `lane ${tid} is named`).toContain(tid);
    const sorted = [...slices].sort((a, b) => a.ts - b.ts);
    let end = 0;
    for (const slice of sorted) {
      expect(slice.ts, `lane ${tid}`).toBeGreaterThanOrEqual(end);
      end = slice.ts + slice.dur;
    }
  }
  const slices = [...lanes.values()].reduce((n, l) => n + l.length, 0);
  expect(slices).toBe(outcome.records.reduce((n, r) => n + r.attempts, 0));
  const counter = trace.traceEvents
    .filter((e) => e.ph === 'C')
    .map((e) => e.args?.attempts as number);
  expect(Math.min(...counter)).toBeGreaterThanOrEqual(0);
  expect(counter.at(-1)).toBe(0);
  return lanes;
}

describe('a run as a Chrome trace', () => {
  it('one slice per attempt on its thread, retries included; the stages in order', async () => {
    const t = createTroupe({
      threads: 2,
      retryBackoffMs: 1,
      experts: [
        defineExpert({ name: 'w', skills: { s: 1 }, module: fixture('behave'), concurrency: 2 }),
      ],
    });
    open.push(t);
    const outcome = await t.run(
      {
        analyze: () => [
          ...Array.from({ length: 20 }, (_, i) => ({
            id: `spin${i}`,
            needs: 's',
            input: { op: 'spin', ms: 2 },
          })),
          { id: 'flaky', needs: 's', input: { op: 'failUntil', okAt: 3 } },
          { id: 'last', needs: 's', input: { op: 'echo', value: 1 }, after: ['flaky'] },
        ],
      },
      null,
    );
    expect(outcome.status).toBe('done');
    // The attempts match the records: three of `flaky` (two failed), one of each other.
    const flaky = outcome.attempts.filter((a) => a.subtask === 'flaky');
    expect(flaky.map((a) => [a.attempt, a.status])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
      [3, 'done'],
    ]);
    expect(outcome.attempts).toHaveLength(24);
    for (const a of outcome.attempts) {
      expect(a.thread).toBeGreaterThan(0);
      expect(a.endedAtMs).toBeGreaterThanOrEqual(a.dispatchedAtMs);
    }
    const trace = toChromeTrace(outcome);
    const lanes = checkTrace(trace, outcome);
    expect(lanes.size).toBeLessThanOrEqual(2);
    const stages = trace.traceEvents.filter((e) => e.cat === 'stage').map((e) => e.name);
    expect(stages).toEqual([
      'analyzing',
      'identifying',
      'coordinating',
      'integrating',
      'validating',
      'done',
    ]);
    // The trace is JSON, and the outcome's attempts go with the outcome into JSON too.
    expect(JSON.parse(JSON.stringify(trace))).toEqual(trace);
    expect(JSON.parse(JSON.stringify(outcome)).attempts).toHaveLength(24);
  });

  it('a cancelled run: attempts that never ran are on a lane of their own, each still once', async () => {
    const t = createTroupe({
      threads: 1,
      experts: [defineExpert({ name: 'w', skills: { s: 1 }, module: fixture('behave') })],
    });
    open.push(t);
    const controller = new AbortController();
    const pending = t.run(
      {
        analyze: () =>
          Array.from({ length: 5 }, (_, i) => ({
            id: `s${i}`,
            needs: 's',
            input: { op: 'spin', ms: 30 },
          })),
      },
      null,
      {
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'subtask.end') controller.abort();
        },
      },
    );
    const outcome = await pending;
    expect(outcome.status).toBe('cancelled');
    checkTrace(toChromeTrace(outcome), outcome);
  });

  it('messages: a handler slice each, and a flow from the attempt that sent it', async () => {
    const t = createTroupe({
      threads: 2,
      experts: [
        defineExpert({
          name: 'sender',
          skills: { s: 1 },
          module: fixture('talker'),
          concurrency: 2,
        }),
        defineExpert({
          name: 'clerk',
          skills: { c: 1 },
          module: fixture('talker'),
          // Asynchronous: handlers of messages sent without waiting overlap.
          onMessage: async (msg: unknown) => {
            await new Promise((resolve) => setTimeout(resolve, 2));
            return msg;
          },
        }),
        defineExpert({
          name: 'heavy',
          skills: { h: 1 },
          module: fixture('talker'),
          messages: 'heavy',
        }),
      ],
    });
    open.push(t);
    const outcome = await t.run(
      {
        analyze: () => [
          { id: 'tells', needs: 's', input: { op: 'sendNoWait', to: 'clerk', count: 5, msg: {} } },
          { id: 'asks', needs: 's', input: { op: 'asks', to: 'clerk', msgs: [1, 2, 3] } },
          {
            id: 'heavy-ask',
            needs: 's',
            input: { op: 'ask', to: 'heavy', msg: { op: 'echo', value: 1 } },
          },
        ],
      },
      null,
    );
    expect(outcome.status).toBe('done');
    // The log: every message of the run, each handled once, in order of sending.
    const log = outcome.messageLog;
    expect(log).toHaveLength(outcome.metrics.messages);
    expect(log).toHaveLength(9);
    expect(log.filter((m) => m.subtask === 'tells').map((m) => [m.kind, m.to, m.handler])).toEqual(
      Array.from({ length: 5 }, () => ['tell', 'clerk', 'inline']),
    );
    expect(log.filter((m) => m.subtask === 'asks').map((m) => m.kind)).toEqual([
      'ask',
      'ask',
      'ask',
    ]);
    expect(log.find((m) => m.subtask === 'heavy-ask')).toMatchObject({
      to: 'heavy',
      kind: 'ask',
      handler: 'heavy',
    });
    for (const m of log) {
      expect(m.status).toBe('done');
      expect(m.from).toBe('sender');
      expect(m.startedAtMs as number).toBeGreaterThanOrEqual(m.sentAtMs);
      expect(m.endedAtMs as number).toBeGreaterThanOrEqual(m.startedAtMs as number);
    }
    const trace = toChromeTrace(outcome);
    const attempts = checkTrace(trace, outcome);
    const slices = trace.traceEvents.filter((e) => e.ph === 'X' && e.cat === 'message');
    const handlers = slices.filter((e) => !e.name.startsWith('send →'));
    expect(handlers.map((e) => e.name).sort()).toEqual([
      ...Array(8).fill('sender → clerk'),
      'sender → heavy',
    ]);
    const starts = trace.traceEvents.filter((e) => e.ph === 's');
    const ends = trace.traceEvents.filter((e) => e.ph === 'f');
    expect(starts).toHaveLength(9);
    expect(new Set(starts.map((e) => e.id)).size).toBe(9);
    expect(ends.map((e) => e.id).sort()).toEqual(starts.map((e) => e.id).sort());
    // Each end of a flow sits on a slice of its category, lane and time (Chrome DevTools binds
    // them so), and each start inside an attempt of the sending subtask's thread.
    const at = (e: (typeof slices)[number]) =>
      slices.some((x) => x.tid === e.tid && x.ts === e.ts && x.cat === e.cat);
    for (const e of [...starts, ...ends]) expect(at(e), `${e.ph} ${e.id}`).toBe(true);
    for (const e of starts) {
      const lane = attempts.get(e.tid) ?? [];
      expect(
        lane.some((a) => a.ts <= e.ts && e.ts <= a.ts + a.dur),
        `flow ${e.id}`,
      ).toBe(true);
    }
    for (const e of ends) expect(handlers.some((h) => h.tid === e.tid && h.ts === e.ts)).toBe(true);
    expect(JSON.parse(JSON.stringify(trace))).toEqual(trace);
  });

  it('troupe run --trace writes it; --json records carry their start and end', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-trace-'));
    const file = join(dir, 'trace.json');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        join(root, 'dist/src/cli/bin.js'),
        'run',
        'examples/fractal/fractal.plan.yaml',
        '--input',
        'examples/fractal/input.json',
        '--json',
        '--trace',
        file,
      ],
      { cwd: root },
    );
    const report = JSON.parse(stdout);
    for (const r of report.records) {
      expect(r.startedAtMs).toBeGreaterThanOrEqual(0);
      expect(r.endedAtMs).toBeGreaterThanOrEqual(r.startedAtMs);
    }
    const trace = JSON.parse(readFileSync(file, 'utf8')) as ChromeTrace;
    const slices = trace.traceEvents.filter((e) => e.ph === 'X' && e.cat === 'attempt');
    expect(slices).toHaveLength(report.records.length);
  });
});
