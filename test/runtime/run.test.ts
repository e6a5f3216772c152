// A run's own object (src/runs/run.ts): the one way a run ends, its deadline and signal, its
// blackboard's bound, the messages and events it counts — checked without a troupe around it, on
// a manual clock.
import { describe, expect, it, vi } from 'vitest';
import { type Outcome, type RunEvent, TroupeError } from '../../dist/src/index.js';
import { checkGraph } from '../../dist/src/runs/graph.js';
import { Ledger } from '../../dist/src/runs/ledger.js';
import { Run } from '../../dist/src/runs/run.js';
import { manualClock } from '../helpers.js';

function setup(options: Record<string, unknown> = {}) {
  const clock = manualClock();
  const events: RunEvent[] = [];
  const released: Outcome[] = [];
  const outcomes: Outcome[] = [];
  const cancels: TroupeError[] = [];
  const run = new Run({
    runId: 'run-1',
    plan: { name: 'p', analyze: () => [] } as never,
    self: undefined,
    input: undefined,
    options: { onEvent: (event: RunEvent) => events.push(event), ...options } as never,
    controller: new AbortController(),
    maxBlackboardBytes: 10,
    host: {
      clock,
      allThreads: 2,
      restarts: 0,
      released: (_run: unknown, outcome: Outcome) => released.push(outcome),
    },
    cancel: (error: TroupeError) => cancels.push(error),
    resolve: (outcome: Outcome) => outcomes.push(outcome),
  });
  return { run, clock, events, released, outcomes, cancels };
}

const graph = () =>
  checkGraph([
    { id: 'a', needs: 's' },
    { id: 'b', needs: 's' },
    { id: 'c', needs: 's', after: ['a'] },
  ]);

describe('Run', () => {
  it('ends once: the first end gives the outcome to the runtime and the caller, a second does nothing', () => {
    const { run, released, outcomes } = setup();
    const first = run.end({ status: 'done', result: 42, quality: undefined });
    expect(first).toMatchObject({ status: 'done', result: 42, runId: 'run-1', plan: 'p' });
    expect(run.finished).toBe(true);
    const again = run.end({
      status: 'failed',
      error: new TroupeError('E_INTERNAL', 'x'),
      stage: 'coordinating',
    });
    expect(again).toBeUndefined();
    expect(released).toEqual([first]);
    expect(outcomes).toEqual([first]);
  });

  it('a run that ends failed writes one terminal record per subtask and aborts its work with the cause', () => {
    const { run, clock, events } = setup();
    const ledger = new Ledger(graph());
    run.ledger = ledger;
    ledger.start(run.elapsed());
    clock.advance(5);
    ledger.running(0, 'e', 1, run.elapsed());
    const error = new TroupeError('E_INTERNAL', 'the runtime gave up');
    const outcome = run.end({ status: 'failed', error, stage: 'coordinating' }) as Outcome;
    expect(outcome.status).toBe('failed');
    expect(outcome.records.map((r) => r.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(run.controller.signal.aborted).toBe(true);
    expect(run.controller.signal.reason).toBe(error);
    // The started subtask's start is paired with an end.
    expect(events).toEqual([
      { type: 'subtask.end', runId: 'run-1', id: 'a', status: 'cancelled', expert: 'e', error },
    ]);
    expect(outcome.metrics.wallMs).toBe(5);
  });

  it('a failed subtask stops the rest of its run, and the run remembers the first failure', () => {
    const { run, events } = setup();
    const ledger = new Ledger(graph());
    run.ledger = ledger;
    ledger.start(0);
    ledger.running(0, 'e', 1, 0);
    ledger.running(1, 'e', 1, 0);
    const failure = new TroupeError('E_TASK_FAILED', 'boom');
    run.failSubtask(0, failure, 'e');
    expect(run.failure).toBe(failure);
    expect(ledger.finished).toBe(true);
    expect(ledger.records().map((r) => r.status)).toEqual(['failed', 'cancelled', 'cancelled']);
    expect(run.controller.signal.reason).toMatchObject({ code: 'E_CANCELLED' });
    expect(events.map((e) => (e as { status?: string }).status)).toEqual(['failed', 'cancelled']);
  });

  it('passes its deadline on its clock, and an ended run no longer cancels on it', () => {
    const a = setup({ deadlineMs: 100 });
    a.clock.advance(99);
    expect(a.cancels).toEqual([]);
    a.clock.advance(1);
    expect(a.cancels).toHaveLength(1);
    expect(a.cancels[0]).toMatchObject({ code: 'E_TIMEOUT', details: { deadlineMs: 100 } });

    const b = setup({ deadlineMs: 100 });
    b.run.end({ status: 'done', result: undefined, quality: undefined });
    expect(b.clock.pending).toBe(0);
    b.clock.advance(1000);
    expect(b.cancels).toEqual([]);
  });

  it('is cancelled by its signal, and lets go of the signal once ended', () => {
    const controller = new AbortController();
    const a = setup({ signal: controller.signal });
    controller.abort('stop');
    expect(a.cancels).toHaveLength(1);
    expect(a.cancels[0]).toMatchObject({ code: 'E_CANCELLED', cause: 'stop' });

    const other = new AbortController();
    const remove = vi.spyOn(other.signal, 'removeEventListener');
    const b = setup({ signal: other.signal });
    b.run.end({ status: 'done', result: undefined, quality: undefined });
    expect(remove).toHaveBeenCalledTimes(1);
    other.abort();
    expect(b.cancels).toEqual([]);
  });

  it('keeps its blackboard within its bound, counting a replaced value once', () => {
    const { run } = setup();
    run.share('k', new Uint8Array(6));
    run.share('k', new Uint8Array(8));
    expect(run.lookup('k')?.byteLength).toBe(8);
    let thrown: unknown;
    try {
      run.share('other', new Uint8Array(3));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({
      code: 'E_TOO_LARGE',
      details: { key: 'other', bytes: 3, used: 8, limit: 10 },
    });
    expect(run.lookup('other')).toBeUndefined();
  });

  it('counts messages per pair and per sending subtask; tells nothing once ended', () => {
    const { run, events } = setup();
    run.ledger = new Ledger(graph());
    run.countMessage('x', 'y', 0, 'tell');
    run.countMessage('x', 'y', -1, 'ask');
    run.countMessage('y', 'x', 1, 'tell');
    expect(run.messages).toBe(3);
    expect([...run.pairs]).toEqual([
      ['x\u0000y', 2],
      ['y\u0000x', 1],
    ]);
    expect([...run.ledger.messages]).toEqual([1, 1, 0]);
    run.end({ status: 'done', result: undefined, quality: undefined });
    run.emit({ type: 'stage', runId: 'run-1', stage: 'done' });
    run.progress(0, 0.5, undefined);
    expect(events).toEqual([]);
  });
});
