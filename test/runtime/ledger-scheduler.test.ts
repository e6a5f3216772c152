// The plain data structures under the machines: the run ledger, the scheduler, supervision.
import { describe, expect, it } from 'vitest';
import {
  backoffMs,
  FaultHistory,
  SUPERVISION_DEFAULTS,
} from '../../dist/src/actors/supervision.js';
import { TroupeError } from '../../dist/src/index.js';
import { checkGraph } from '../../dist/src/runs/graph.js';
import { Ledger } from '../../dist/src/runs/ledger.js';
import { type ExpertSlot, lookaheadOf, Scheduler, Slot } from '../../dist/src/runs/scheduler.js';

const graph = () =>
  checkGraph([
    { id: 'a', needs: 's' },
    { id: 'b', needs: 's' },
    { id: 'c', needs: 's', after: ['a', 'b'] },
    { id: 'd', needs: 's', after: ['c'] },
  ]);

describe('Ledger', () => {
  it('releases a subtask when its last dependency is done, and hands it the outputs', () => {
    const l = new Ledger(graph());
    expect(l.start(0)).toEqual([0, 1]);
    l.running(0, 'x', 3, 1);
    expect(l.complete(0, 'A', 5, 6)).toEqual([]);
    l.running(1, 'x', 3, 2);
    expect(l.complete(1, 'B', 5, 7)).toEqual([2]);
    expect(l.depsOf(2)).toEqual({ a: 'A', b: 'B' });
    expect(l.depsOf(0)).toBeUndefined();
    expect(l.finished).toBe(false);
  });

  it('cancels the rest exactly once and reports who was running', () => {
    const l = new Ledger(graph());
    l.start(0);
    l.running(0, 'x', 1, 0);
    const error = new TroupeError('E_CANCELLED', 'stop');
    expect(l.cancelRest(error, 10)).toEqual([0]);
    expect(l.cancelRest(error, 11)).toEqual([]);
    expect(l.finished).toBe(true);
    expect(l.records().map((r) => r.status)).toEqual([
      'cancelled',
      'cancelled',
      'cancelled',
      'cancelled',
    ]);
  });

  it('logs every attempt: when it left, came back, ran where, and how it ended', () => {
    const l = new Ledger(graph());
    l.start(0);
    l.running(0, 'x', 1, 1);
    l.attemptFailed(0, new TroupeError('E_TASK_FAILED', 'one'), 3, 5, 7);
    l.retrying(0, 'x');
    l.ready(0, 6);
    l.running(0, 'y', 1, 8);
    l.complete(0, 'out', 2, 11, 9);
    l.running(1, 'x', 1, 12);
    l.cancelRest(new TroupeError('E_CANCELLED', 'stop'), 13);
    expect(l.log.records(l.graph.ids)).toEqual([
      {
        subtask: 'a',
        attempt: 1,
        expert: 'x',
        status: 'failed',
        dispatchedAtMs: 1,
        endedAtMs: 5,
        runMs: 3,
        thread: 7,
        code: 'E_TASK_FAILED',
      },
      {
        subtask: 'a',
        attempt: 2,
        expert: 'y',
        status: 'done',
        dispatchedAtMs: 8,
        endedAtMs: 11,
        runMs: 2,
        thread: 9,
        code: undefined,
      },
      {
        subtask: 'b',
        attempt: 1,
        expert: 'x',
        status: 'cancelled',
        dispatchedAtMs: 12,
        endedAtMs: 13,
        runMs: 0,
        thread: undefined,
        code: 'E_CANCELLED',
      },
    ]);
  });

  it('keeps every failed attempt, and the critical path by run time', () => {
    const l = new Ledger(graph());
    l.start(0);
    l.running(0, 'x', 1, 0);
    l.attemptFailed(0, new TroupeError('E_TASK_FAILED', 'one'), 3, 3);
    l.retrying(0, 'x');
    l.ready(0, 4);
    l.running(0, 'y', 1, 5);
    l.complete(0, 1, 10, 15);
    l.running(1, 'y', 1, 5);
    l.complete(1, 1, 2, 7);
    l.running(2, 'y', 1, 15);
    l.complete(2, 1, 4, 19);
    l.running(3, 'y', 1, 19);
    l.complete(3, 1, 1, 20);
    const [a] = l.records();
    expect(a).toMatchObject({ attempts: 2, runMs: 13, expert: 'y', status: 'done' });
    expect(a?.errors.map((e) => e.message)).toEqual(['one']);
    expect(l.retries).toBe(1);
    expect(l.criticalPathMs()).toBe(13 + 4 + 1);
    expect(l.contributions()[0]).toMatchObject({ subtask: 'a', attempt: 2, runMs: 10 });
  });
});

describe('Scheduler', () => {
  const slot = (
    name: string,
    skills: Record<string, number>,
    concurrency = 1,
    lookahead = 0,
    ahead = lookahead,
  ): ExpertSlot => ({
    name,
    skills,
    concurrency,
    lookahead,
    ahead,
    active: 0,
    accepting: true,
    retired: false,
  });

  it('qualifies by level and picks the least loaded, ties by higher level then name', () => {
    const a = slot('a', { s: 2 }, 2);
    const b = slot('b', { s: 4 }, 2);
    const c = slot('c', { s: 4 }, 2);
    const s = new Scheduler([a, b, c]);
    expect(s.qualified('s', 3).map((e) => e.name)).toEqual(['b', 'c']);
    s.enqueue('r', 0, 's', 1);
    s.enqueue('r', 1, 's', 1);
    s.enqueue('r', 2, 's', 1);
    expect(s.dispatch().map((x) => x.expert.name)).toEqual(['b', 'c', 'a']);
  });

  it('serves runs round-robin and each run FIFO', () => {
    const s = new Scheduler([slot('x', { s: 1 }, 3)]);
    for (let i = 0; i < 3; i++) s.enqueue('r1', i, 's', 1);
    s.enqueue('r2', 0, 's', 1);
    expect(s.dispatch().map((x) => `${x.item.runId}:${x.item.index}`)).toEqual([
      'r1:0',
      'r2:0',
      'r1:1',
    ]);
    expect(s.queued).toBe(1);
  });

  it('takes lookahead only where no qualified expert has a free slot', () => {
    expect(lookaheadOf(1, 2)).toBe(0);
    expect(lookaheadOf(2, 2)).toBe(2);
    expect(lookaheadOf(8, 2)).toBe(2);
    const a = slot('a', { s: 2 }, 2, 2);
    const b = slot('b', { s: 1 }, 1);
    const s = new Scheduler([a, b]);
    for (let i = 0; i < 8; i++) s.enqueue('r', i, 's', 1);
    // Least loaded first (a by level, then b at 0 ÷ 1 against a's 1 ÷ 2, then a's second
    // slot); then a's lookahead only: b, full, has none.
    expect(s.dispatch().map((x) => x.expert.name)).toEqual(['a', 'b', 'a', 'a', 'a']);
    expect(a.active).toBe(4);
    expect(b.active).toBe(1);
    expect(s.queued).toBe(3);
  });

  it('takes its deep lookahead only while one run alone is under way', () => {
    const alone = slot('a', { s: 1 }, 2, 2, 32);
    const s = new Scheduler([alone]);
    for (let i = 0; i < 100; i++) s.enqueue('r1', i, 's', 1);
    expect(s.lookaheadNow(alone)).toBe(32);
    expect(s.dispatch()).toHaveLength(34);
    expect(alone.active).toBe(34);

    const shared = slot('b', { s: 1 }, 2, 2, 32);
    const t = new Scheduler([shared]);
    for (let i = 0; i < 100; i++) t.enqueue('r1', i, 's', 1);
    for (let i = 0; i < 5; i++) t.enqueue('r2', i, 's', 1);
    // Two runs wait: one subtask per thread ahead, shared round-robin.
    expect(t.lookaheadNow(shared)).toBe(2);
    expect(t.dispatch().map((x) => x.item.runId)).toEqual(['r1', 'r2', 'r1', 'r2']);
    // r2 ends (with subtasks waiting): r1 is alone, and the deep lookahead is back.
    t.removeRun('r2');
    expect(t.lookaheadNow(shared)).toBe(32);
    expect(t.dispatch()).toHaveLength(30);
    // Another run: one per thread again, also once its only subtask is out (it is under way).
    t.enqueue('r3', 0, 's', 1);
    expect(t.lookaheadNow(shared)).toBe(2);
    shared.active = 0;
    expect(t.dispatch().map((x) => x.item.runId)).toEqual(['r1', 'r3', 'r1', 'r1']);
    expect(t.lookaheadNow(shared)).toBe(2);
    t.removeRun('r3');
    expect(t.lookaheadNow(shared)).toBe(32);
  });

  it('avoids the expert that just failed a subtask when another is free', () => {
    const s = new Scheduler([slot('a', { s: 5 }), slot('b', { s: 1 })]);
    s.enqueue('r', 0, 's', 1, 'a');
    expect(s.dispatch()[0]?.expert.name).toBe('b');
  });

  it('never gives work to an expert that does not accept it, and reports what no one can serve', () => {
    const a = slot('a', { s: 1 });
    a.accepting = false;
    const s = new Scheduler([a]);
    s.enqueue('r', 0, 's', 1);
    expect(s.dispatch()).toEqual([]);
    expect(s.unservable('r')).toEqual([]);
    a.retired = true;
    expect(s.unservable('r')).toEqual([{ needs: 's', complexity: 1 }]);
    expect(s.removeRun('r')).toBe(1);
    expect(s.queued).toBe(0);
  });
});

describe('Slot', () => {
  it('takes work and is retired as its state says, with no copy to keep in step', () => {
    const slot = new Slot('w', { s: 1 }, 2, 0);
    const seen = (['probing', 'ready', 'busy', 'backingOff', 'retired'] as const).map((state) => {
      slot.state = state;
      return [state, slot.accepting, slot.retired];
    });
    expect(seen).toEqual([
      ['probing', false, false],
      ['ready', true, false],
      ['busy', true, false],
      ['backingOff', false, false],
      ['retired', false, true],
    ]);
    // The scheduler sees it: a retired slot is never chosen, a ready one is.
    const scheduler = new Scheduler([slot]);
    scheduler.enqueue('r', 0, 's', 1);
    slot.state = 'retired';
    expect(scheduler.dispatch()).toEqual([]);
    slot.state = 'ready';
    expect(scheduler.dispatch().map((x) => x.expert.name)).toEqual(['w']);
  });
});

describe('supervision policy', () => {
  const policy = { ...SUPERVISION_DEFAULTS, intensity: 2, windowMs: 1000 };
  const fault = (atMs: number) => ({ atMs, code: 'E_WORKER_CRASHED', message: 'x' });

  it('restarts past the intensity within the window, not beyond it (OTP)', () => {
    const h = new FaultHistory();
    expect(h.record(fault(0), policy)).toBe(false);
    expect(h.record(fault(500), policy)).toBe(false);
    expect(h.record(fault(900), policy)).toBe(true);
    h.clearWindow();
    expect(h.record(fault(1000), policy)).toBe(false);
    const spread = new FaultHistory();
    expect(spread.record(fault(0), policy)).toBe(false);
    expect(spread.record(fault(600), policy)).toBe(false);
    expect(spread.record(fault(1700), policy)).toBe(false); // the first fell out of the window
  });

  it('backs off exponentially with equal jitter, capped', () => {
    expect(backoffMs(100, 10_000, 1, () => 0)).toBe(50);
    expect(backoffMs(100, 10_000, 1, () => 1)).toBe(100);
    expect(backoffMs(100, 10_000, 4, () => 0)).toBe(400);
    expect(backoffMs(100, 300, 10, () => 0.5)).toBe(225);
  });
});
