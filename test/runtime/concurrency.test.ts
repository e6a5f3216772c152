// Many runs share one troupe fairly; a bound on queued subtasks; a failing run or a throwing
// callback never takes the others down.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defineExpert, type Subtask } from '../../dist/src/index.js';
import { blocker, fixture } from '../helpers.js';
import { closeTroupes, openTroupe } from './helpers.js';

afterEach(closeTroupes);

const team = (extra = {}) =>
  openTroupe({
    threads: 2,
    experts: [
      defineExpert({ name: 'a', skills: { s: 2 }, module: fixture('behave'), concurrency: 4 }),
      defineExpert({ name: 'b', skills: { s: 1 }, module: fixture('behave'), concurrency: 4 }),
    ],
    ...extra,
  });

/** A 2-thread troupe of one expert, x (skill s), with these options. */
const soloist = (options: { concurrency: number; batch?: number }) =>
  openTroupe({
    threads: 2,
    experts: [defineExpert({ name: 'x', skills: { s: 1 }, module: fixture('behave'), ...options })],
  });

/** A plan of n subtasks that echo their index. */
const echoes = (n: number) => ({
  analyze: () =>
    Array.from({ length: n }, (_, i) => ({
      id: `e${i}`,
      needs: 's',
      input: { op: 'echo', value: i },
    })),
});

/** A plan of n subtasks that each spin for `ms`. */
const spins = (n: number, ms: number) => ({
  analyze: () =>
    Array.from({ length: n }, (_, i) => ({ id: `s${i}`, needs: 's', input: { op: 'spin', ms } })),
});

/** A plan of n subtasks, each held by the gate once it starts. */
const gated = (gate: ReturnType<typeof blocker>, n: number) => ({
  analyze: () =>
    Array.from({ length: n }, (_, i) => ({ id: `b${i}`, needs: 's', input: gate.input(i) })),
});

describe('many runs', () => {
  it('50 concurrent runs each get their own correct result', async () => {
    const t = team();
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, r) =>
        t.run(
          {
            analyze: (n: number) => [
              ...Array.from({ length: 4 }, (_, i) => ({
                id: `p${i}`,
                needs: 's',
                input: { op: 'echo', value: n * 100 + i },
              })),
              { id: 'sum', needs: 's', input: { op: 'ctx' }, after: ['p0', 'p1', 'p2', 'p3'] },
            ],
            integrate: (contributions) => {
              const sum = contributions.find((c) => c.subtask === 'sum')?.output as {
                deps: Record<string, number>;
              };
              return Object.values(sum.deps).reduce((a, b) => a + b, 0);
            },
          },
          r,
        ),
      ),
    );
    outcomes.forEach((outcome, r) => {
      expect(outcome.status).toBe('done');
      if (outcome.status === 'done') expect(outcome.result).toBe(4 * r * 100 + 6);
    });
    expect(t.stats().runs).toMatchObject({ active: 0, done: 50 });
  });

  it('runs share experts round-robin: a long run does not starve a short one started after it', async () => {
    const t = team();
    const order: string[] = [];
    const long = t.run(spins(40, 5), null, {
      onEvent: (e) => e.type === 'subtask.end' && order.push('long'),
    });
    const short = t.run(
      { analyze: () => [{ id: 's', needs: 's', input: { op: 'echo', value: 1 } }] },
      null,
      {
        onEvent: (e) => e.type === 'subtask.end' && order.push('short'),
      },
    );
    await Promise.all([long, short]);
    expect(order.indexOf('short')).toBeLessThan(20);
  });

  it('an expert takes a batch per thread ahead while its run is the only one under way; with two, one per thread', async () => {
    const gate = blocker();
    const t = soloist({ concurrency: 2, batch: 16 });
    // Until the pool has measured its subtasks, one per thread.
    expect(t.experts()[0]?.lookahead).toBe(2);
    // Enough echoes that one slow first call on a cold thread (the estimate is their mean, the
    // first ten alike) cannot make them look longer than 24 ms ÷ 16 and shrink the batch.
    const warm = await t.run(echoes(32), null);
    expect(warm.status).toBe('done');
    // Measured, and short: a batch (16) per thread.
    expect(t.experts()[0]?.lookahead).toBe(32);
    const blocked = t.run(gated(gate, 100), null);
    await gate.started(2);
    expect(t.experts()[0]).toMatchObject({ lookahead: 32, active: 34 });
    expect(t.stats().subtasks.queued).toBe(66);
    // A second run, still analysing: under way already, so one per thread again, and it is not
    // left behind more of this one's than the expert holds now.
    let analysed: (subtasks: Subtask[]) => void = () => {};
    const subtasks = new Promise<Subtask[]>((resolve) => {
      analysed = resolve;
    });
    const other = t.run({ analyze: () => subtasks }, null);
    expect(t.experts()[0]).toMatchObject({ lookahead: 2, active: 34 });
    analysed([{ id: 'o', needs: 's', input: { op: 'echo', value: 7 } }]);
    await vi.waitFor(() => expect(t.stats().subtasks.queued).toBe(67));
    expect(t.experts()[0]).toMatchObject({ lookahead: 2, active: 34 });
    gate.release();
    const [first, second] = await Promise.all([blocked, other]);
    expect(first.status).toBe('done');
    expect(second.status).toBe('done');
    if (second.status === 'done') expect(second.result).toEqual({ o: 7 });
    expect(t.experts()[0]).toMatchObject({ lookahead: 32, active: 0 });
  });

  it('the deep lookahead holds at most ~24 ms of expected work per thread, whatever the batch', async () => {
    const t = soloist({ concurrency: 2, batch: 8 });
    const measured = await t.run(spins(3, 30), null);
    expect(measured.status).toBe('done');
    // Subtasks of ~30 ms: a batch of 8 would be 240 ms a thread; it takes one per thread.
    expect(t.experts()[0]?.lookahead).toBe(2);
  });

  it('an expert whose concurrency is at least the threads takes one subtask per thread ahead; one below takes none', async () => {
    for (const [concurrency, lookahead] of [
      [2, 2],
      [3, 2],
      [1, 0],
    ] as const) {
      const gate = blocker();
      const t = soloist({ concurrency });
      const outcome = t.run(gated(gate, 8), null);
      // Every thread it may use is blocked: what it holds now is all it was given.
      await gate.started(Math.min(concurrency, 2));
      expect(t.experts()[0]).toMatchObject({ lookahead, active: concurrency + lookahead });
      expect(t.stats().subtasks.queued).toBe(8 - concurrency - lookahead);
      gate.release();
      const done = await outcome;
      expect(done.status).toBe('done');
      if (done.status === 'done') expect(Object.keys(done.result as object)).toHaveLength(8);
      expect(t.experts()[0]?.active).toBe(0);
    }
  });

  it('an expert defined with lookahead: false takes none', () => {
    const t = openTroupe({
      threads: 2,
      experts: [
        defineExpert({
          name: 'x',
          skills: { s: 1 },
          module: fixture('behave'),
          concurrency: 4,
          lookahead: false,
        }),
        defineExpert({ name: 'y', skills: { s: 1 }, module: fixture('behave'), concurrency: 4 }),
      ],
    });
    expect(t.experts().map((e) => [e.name, e.lookahead])).toEqual([
      ['x', 0],
      ['y', 2],
    ]);
  });

  it('no expert takes lookahead in a troupe with a heavy receiver', () => {
    const t = openTroupe({
      threads: 2,
      experts: [
        defineExpert({ name: 'x', skills: { s: 1 }, module: fixture('behave'), concurrency: 4 }),
        defineExpert({ name: 'h', skills: { h: 1 }, module: fixture('talker'), messages: 'heavy' }),
      ],
    });
    expect(t.experts().map((e) => [e.name, e.lookahead])).toEqual([
      ['x', 0],
      ['h', 0],
    ]);
  });

  it('a throwing onEvent, a throwing expert validate and a failing run leave the other runs alone', async () => {
    const t = openTroupe({
      threads: 2,
      retryBackoffMs: 1,
      experts: [
        defineExpert({
          name: 'v',
          skills: { s: 1 },
          module: fixture('behave'),
          concurrency: 4,
          validate: (out) => {
            if (out === 'poison') throw new Error('validator blew up');
            return true;
          },
        }),
      ],
    });
    const noisy = t.run(
      { analyze: () => [{ id: 'a', needs: 's', input: { op: 'echo', value: 1 } }] },
      null,
      {
        onEvent: () => {
          throw new Error('logger down');
        },
      },
    );
    const poisoned = t.run(
      { analyze: () => [{ id: 'p', needs: 's', input: { op: 'echo', value: 'poison' } }] },
      null,
    );
    const healthy = t.run(
      { analyze: () => [{ id: 'h', needs: 's', input: { op: 'echo', value: 2 } }] },
      null,
    );
    expect((await noisy).status).toBe('done');
    const p = await poisoned;
    expect(p.status).toBe('failed');
    expect(p.records[0]?.error?.message).toMatch(/validate threw: validator blew up/);
    expect(await healthy).toMatchObject({ status: 'done', result: { h: 2 } });
  });
});
