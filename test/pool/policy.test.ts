// The crash and timeout policy as pure functions: every branch, with made-up lane readings.
import { describe, expect, it } from 'vitest';
import { AUTO_BATCH_MAX, aheadBatch, batchSize, fairShare } from '../../dist/src/pool/batching.js';
import { blame } from '../../dist/src/pool/failures.js';
import type { ModuleState } from '../../dist/src/pool/jobs.js';
import type { LaneReading } from '../../dist/src/pool/lanes.js';
import { PoolMeter } from '../../dist/src/pool/meter.js';
import { packContexts, type TaskMessage, unpackContext } from '../../dist/src/pool/protocol.js';
import { expired, LOAD_SLACK_MS } from '../../dist/src/pool/timeouts.js';

const limits = { startGraceMs: 1000, moduleLoadTimeoutMs: 500 };
const running = (item: number, since: number): LaneReading => ({
  state: 'running',
  item,
  since,
  threadId: 7,
});
const handed: LaneReading = { state: 'handed' };

describe('expired()', () => {
  const handoff = (timeouts: number[], waitingSince = 0) => ({
    module: 'm',
    waitingSince,
    items: timeouts.map((timeoutMs) => ({ timeoutMs, settled: false })),
  });

  it('charges a running item from its own start, not from the hand-off', () => {
    expect(expired(handoff([100]), running(0, 900), 999, limits)).toBeUndefined();
    expect(expired(handoff([100]), running(0, 900), 1001, limits)).toMatchObject({
      item: 0,
      error: { code: 'E_TIMEOUT' },
    });
  });

  it('charges the item of a batch that is running, with its own limit', () => {
    expect(expired(handoff([100, 0, 50]), running(1, 0), 10_000, limits)).toBeUndefined();
    expect(expired(handoff([100, 0, 50]), running(2, 0), 51, limits)?.item).toBe(2);
  });

  it('gives a hand-off no thread has started its limit plus the start grace', () => {
    expect(expired(handoff([100]), handed, 1100, limits)).toBeUndefined();
    const verdict = expired(handoff([100]), handed, 1101, limits);
    expect(verdict).toMatchObject({ item: 0, error: { code: 'E_TIMEOUT' } });
    expect(verdict?.error.message).toMatch(/no thread started the task within 1100 ms/);
    expect(expired(handoff([0]), handed, 1e9, limits)).toBeUndefined();
  });

  it('terminates a module load that blocks its thread past the load limit and slack', () => {
    const loading: LaneReading = { state: 'loading', since: 0, threadId: 7 };
    expect(expired(handoff([0]), loading, 500 + LOAD_SLACK_MS, limits)).toBeUndefined();
    expect(expired(handoff([0]), loading, 501 + LOAD_SLACK_MS, limits)).toMatchObject({
      item: 'all',
      error: { code: 'E_MODULE_LOAD' },
    });
  });

  it('ignores an item that already settled (cancelled in its batch)', () => {
    const h = handoff([10]);
    (h.items[0] as { settled: boolean }).settled = true;
    expect(expired(h, running(0, 0), 1000, limits)).toBeUndefined();
  });
});

describe('blame()', () => {
  const report = (lane: LaneReading, error: unknown, extra = {}) => ({
    module: 'm',
    error,
    lane,
    terminatedByPool: false,
    postFailed: false,
    uncloneableInput: () => undefined,
    ...extra,
  });
  const exit = new Error('worker exited with code: 3');

  it('charges the running item only', () => {
    expect(blame(report(running(2, 0), exit))).toMatchObject({
      item: 2,
      error: { code: 'E_WORKER_CRASHED', details: { exitCode: 3 } },
    });
  });

  it('charges nobody when nothing had started, or when the pool was replacing the thread', () => {
    expect(blame(report(handed, exit)).item).toBe('none');
    expect(blame(report(running(0, 0), exit, { terminatedByPool: true })).item).toBe('none');
  });

  it('a death while loading is the module failing to load, for every item', () => {
    expect(blame(report({ state: 'loading', since: 0, threadId: 1 }, exit))).toMatchObject({
      item: 'all',
      error: { code: 'E_MODULE_LOAD' },
    });
  });

  it('out of memory is E_WORKER_OOM', () => {
    const oom = Object.assign(new Error('Worker terminated due to reaching memory limit'), {
      code: 'ERR_WORKER_OUT_OF_MEMORY',
    });
    expect(blame(report(running(0, 0), oom)).error.code).toBe('E_WORKER_OOM');
  });

  it('an input that could not be posted is E_NOT_CLONEABLE for the item that holds it', () => {
    const error = Object.assign(new Error('() => 1 could not be cloned.'), {
      name: 'DataCloneError',
    });
    const found = { item: 3, at: { path: 'input.fn', what: 'a function' } };
    expect(blame(report(handed, error, { uncloneableInput: () => found }))).toMatchObject({
      item: 3,
      error: { code: 'E_NOT_CLONEABLE' },
    });
    expect(blame(report(handed, error)).item).toBe('all');
  });

  it('a post that failed though its thread lives (a getter threw, a value too deep) is the input, not a death', () => {
    const thrown = new Error('getter boom');
    const found = { item: 1, at: { path: 'input.x', what: 'a getter that throws (getter boom)' } };
    const verdict = blame(
      report(handed, thrown, { postFailed: true, uncloneableInput: () => found }),
    );
    expect(verdict).toMatchObject({ item: 1, error: { code: 'E_NOT_CLONEABLE' } });
    expect(verdict.error.message).toBe(
      'm: input.x cannot be sent to a worker thread: it is a getter that throws (getter boom)',
    );
    // Without a thread living to say so, the same error is a death before the start.
    expect(blame(report(handed, thrown)).item).toBe('none');
  });

  it('a finished message whose answer was not read when its thread died runs again', () => {
    expect(blame(report({ state: 'done', threadId: 7 }, exit)).item).toBe('none');
  });
});

describe('batching', () => {
  const module = (batch: number | 'auto', meanRunMs: number, samples = 10) => ({
    reg: { name: 'm', href: 'file:///m.mjs', batch, timeoutMs: 0 },
    meanRunMs,
    samples,
  });

  it("'auto' batches tasks under 12 ms, ~24 ms of work a message, capped", () => {
    expect(batchSize(module('auto', 15))).toBe(1);
    expect(batchSize(module('auto', 5))).toBe(4);
    expect(batchSize(module('auto', 1))).toBe(24);
    expect(batchSize(module('auto', 0.1))).toBe(AUTO_BATCH_MAX);
    expect(batchSize(module(6, 100))).toBe(6);
  });

  it("'auto' batches from the first measured task, the batch growing 8, 32, then to the cap", () => {
    expect(batchSize(module('auto', 0.1, 0))).toBe(1); // nothing measured yet
    expect(batchSize(module('auto', 0.1, 1))).toBe(8);
    expect(batchSize(module('auto', 0.1, 2))).toBe(32);
    expect(batchSize(module('auto', 0.1, 3))).toBe(AUTO_BATCH_MAX);
    // A first estimate is not trusted past what it holds: 5 ms → 4 whatever the samples.
    expect(batchSize(module('auto', 5, 1))).toBe(4);
    expect(batchSize(module('auto', 15, 1))).toBe(1);
    expect(aheadBatch(module('auto', 0.1, 0))).toBe(1);
    expect(aheadBatch(module('auto', 0.1, 1))).toBe(8);
  });

  it('sizes batches by the expected work of an item (arithmetic mean), not by its first one', () => {
    const meter = new PoolMeter();
    const m = {
      reg: { name: 'm', href: 'file:///m.mjs', batch: 'auto', timeoutMs: 0 },
      avgRunMs: 0,
      avgLogMs: 0,
      meanRunMs: 0,
      samples: 0,
    } as unknown as ModuleState;
    // A near-instant first item (a warm-up, a probe-like call), then items of 5 ms.
    for (const ms of [0.005, 5, 5]) meter.ran(m, 1, ms);
    expect(m.meanRunMs).toBeCloseTo(10.005 / 3);
    // The typical item (geometric mean) is far smaller than the work to expect of one.
    expect(m.avgRunMs).toBeLessThan(0.6);
    expect(batchSize(m)).toBe(7);
    // Past 10 samples, a moving mean: the old ones fade.
    for (let i = 0; i < 40; i++) meter.ran(m, 1, 5);
    expect(m.meanRunMs).toBeGreaterThan(4.9);
    expect(batchSize(m)).toBe(4);
  });

  it('holds ahead a batch, at most ~24 ms of expected work, and 1 until a task has run', () => {
    expect(aheadBatch(module('auto', 0.1))).toBe(AUTO_BATCH_MAX);
    expect(aheadBatch(module('auto', 5))).toBe(4);
    expect(aheadBatch(module('auto', 30))).toBe(1);
    expect(aheadBatch(module(8, 1))).toBe(8);
    expect(aheadBatch(module(8, 6))).toBe(4);
    expect(aheadBatch(module(8, 30))).toBe(1);
    expect(aheadBatch(module(8, 1, 0))).toBe(1);
  });

  it('splits what waits evenly over the messages a pass hands out, at least one per thread', () => {
    expect(fairShare(255, 4, 2)).toBe(64);
    expect(fairShare(255, 1, 2)).toBe(128);
    expect(fairShare(10, 3, 2)).toBe(4);
    expect(fairShare(1, 4, 2)).toBe(1);
  });
});

describe('packing contexts', () => {
  const pack = (
    contexts: ({ task?: Record<string, unknown>; deps?: Record<string, unknown> } | undefined)[],
  ) => {
    const message: TaskMessage = { k: 'run', m: 'm', l: 0, g: 0, i: contexts.map(() => 0) };
    packContexts(message, contexts);
    // What crosses to the thread is a structured clone.
    return structuredClone(message);
  };

  it('tasks with the same fields travel as columns: shared values once, the others per item', () => {
    const contexts = [0, 1, 2].map((i) => ({
      task: { id: `t${i}`, needs: 'x', attempt: 1, runId: 'r' },
      ...(i === 1 ? { deps: { a: 1 } } : {}),
    }));
    const message = pack(contexts);
    expect(message.c).toBeUndefined();
    expect(message.t).toEqual({
      id: { v: ['t0', 't1', 't2'] },
      needs: { s: 'x' },
      attempt: { s: 1 },
      runId: { s: 'r' },
    });
    expect(contexts.map((_, i) => unpackContext(message, i))).toEqual(contexts);
  });

  it('tasks whose fields differ, or items without a task, travel as one object each', () => {
    for (const contexts of [
      [{ task: { id: 'a' } }, { task: { id: 'b', more: 1 } }],
      [{ task: { id: 'a', n: 1 } }, { task: { n: 2, id: 'b' } }],
      [{ task: { id: 'a' } }, undefined],
      [{ deps: { a: 1 } }, { task: { id: 'b' } }],
      [{ task: JSON.parse('{"__proto__": 1}') }],
      [{ task: null as never }, { task: null as never }],
      [{ task: ['a', 'b'] as never }, { task: ['c', 'd'] as never }],
      [{ task: new Date(0) as never }, { task: new Date(1) as never }],
      [{ task: 'ab' as never }, { task: 'ab' as never }],
    ]) {
      const message = pack(contexts);
      expect(message.t).toBeUndefined();
      expect(contexts.map((_, i) => unpackContext(message, i))).toEqual(contexts);
    }
  });

  it('0 and -0 stay apart; a getter that throws falls back to one object each', () => {
    const zeros = [{ task: { n: 0 } }, { task: { n: -0 } }];
    const message = pack(zeros);
    expect(Object.is(unpackContext(message, 1)?.task?.n, -0)).toBe(true);
    const throwing = {
      get n(): number {
        throw new Error('no');
      },
    };
    const raw: TaskMessage = { k: 'run', m: 'm', l: 0, g: 0, i: [0, 0] };
    expect(() => packContexts(raw, [{ task: { n: 1 } }, { task: throwing }])).not.toThrow();
    expect(raw.t).toBeUndefined();
    expect(raw.c).toHaveLength(2);
  });

  it('no context at all: nothing is sent', () => {
    const message = pack([undefined, undefined]);
    expect(message.c).toBeUndefined();
    expect(message.t).toBeUndefined();
    expect(unpackContext(message, 1)).toBeUndefined();
  });
});
