// Cancelling tasks that travel in a batch or wait in a busy thread's port: a task settled as
// cancelled never starts later on a thread, one that has begun is stopped like a task alone,
// and the tasks beside it are left alone. Starts are counted on the threads themselves.
import { afterEach, describe, expect, it } from 'vitest';
import { blocker, closeAll, fixture, settle, testPool, watchStarts } from '../helpers.js';

afterEach(closeAll);

const batched = (batch: number | 'auto') => ({ behave: { url: fixture('behave'), batch } });

describe('cancelling a task of a batch', () => {
  it('a task cancelled before its thread begins it never starts; its neighbours run once', async () => {
    const pool = testPool({ threads: 1, modules: batched(4) });
    const gate = blocker();
    const count = watchStarts(4);
    const cancels = [new AbortController(), new AbortController()];
    // One turn: the blocked task and three counted ones leave in batches behind it.
    const held = pool.run('behave', gate.input('held'));
    const tasks = [
      settle(pool.run('behave', count.input(0), { signal: cancels[0]?.signal })),
      settle(pool.run('behave', count.input(1))),
      settle(pool.run('behave', count.input(2), { signal: cancels[1]?.signal })),
    ];
    await gate.started();
    for (const controller of cancels) controller.abort();
    const first = await tasks[0];
    const last = await tasks[2];
    count.settled(0);
    count.settled(2);
    gate.release();
    expect(await held).toBe('held');
    const middle = await tasks[1];
    expect(first?.ok ? '' : first?.code).toBe('E_CANCELLED');
    expect(last?.ok ? '' : last?.code).toBe('E_CANCELLED');
    expect(middle).toEqual({ ok: true, value: 1 });
    await pool.idle();
    expect([count.of(0), count.of(1), count.of(2)]).toEqual([0, 1, 0]);
    expect(pool.stats()).toMatchObject({ threadsReplaced: 0, requeued: 0 });
  });

  it('a cancelled task that would never end no longer holds its thread: the batch and what follows settle', async () => {
    // The case: one thread, batches of 2, the second task cancelled while the first runs.
    const pool = testPool({ threads: 1, modules: batched(2) });
    const gate = blocker();
    const controller = new AbortController();
    const first = pool.run('behave', gate.input('first'));
    const looping = settle(pool.run('behave', { op: 'loop' }, { signal: controller.signal }));
    const after = pool.run('behave', { op: 'echo', value: 'after' });
    await gate.started();
    controller.abort();
    expect((await looping).ok).toBe(false);
    gate.release();
    expect(await first).toBe('first');
    expect(await after).toBe('after');
    await pool.close();
    expect(pool.stats().threadsReplaced).toBe(0);
  });

  it('a task waiting in a busy thread’s port, cancelled, is skipped when the thread gets there', async () => {
    const pool = testPool({ threads: 1, modules: batched(2) });
    // Measured (3 tasks), the module's messages may wait in a busy thread's port.
    await Promise.all([1, 2, 3].map((value) => pool.run('behave', { op: 'echo', value })));
    const gate = blocker();
    const held = pool.run('behave', gate.input('held'));
    await gate.started();
    const count = watchStarts(2);
    const controller = new AbortController();
    const cancelled = settle(pool.run('behave', count.input(0), { signal: controller.signal }));
    const kept = pool.run('behave', count.input(1));
    // Both leave at the end of this turn, in one message, stacked on the busy thread.
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.stats().running).toBe(3);
    controller.abort();
    expect((await cancelled).ok).toBe(false);
    count.settled(0);
    gate.release();
    expect(await held).toBe('held');
    expect(await kept).toBe(1);
    expect([count.of(0), count.of(1)]).toEqual([0, 1]);
    expect(count.violations()).toBe(0);
  });

  it('a task of a batch cancelled while it runs stops through ctx.signal; the tasks after it run on the same thread', async () => {
    const pool = testPool({ threads: 1, modules: batched(3) });
    const gate = new Int32Array(new SharedArrayBuffer(8));
    const count = watchStarts(3);
    const controller = new AbortController();
    const tasks = [
      pool.run('behave', count.input(0)),
      settle(
        pool.run('behave', { op: 'untilAborted', sab: gate.buffer }, { signal: controller.signal }),
      ),
      pool.run('behave', count.input(2)),
    ];
    while (Atomics.load(gate, 0) === 0) await new Promise((resolve) => setTimeout(resolve, 2));
    controller.abort();
    const [before, stopped, after] = await Promise.all(tasks);
    expect(before).toBe(0);
    expect((stopped as { code?: string }).code).toBe('E_CANCELLED');
    expect(after).toBe(2);
    expect([count.of(0), count.of(2)]).toEqual([1, 1]);
    expect(pool.stats()).toMatchObject({ threadsReplaced: 0, requeued: 0 });
  });

  it('one that ignores its signal past cancelGraceMs has its thread ended; the tasks after it run elsewhere, once', async () => {
    const pool = testPool({ threads: 1, modules: batched(3), cancelGraceMs: 20 });
    const gate = blocker();
    const count = watchStarts(3);
    const controller = new AbortController();
    const tasks = [
      pool.run('behave', count.input(0)),
      settle(pool.run('behave', gate.input('never'), { signal: controller.signal })),
      pool.run('behave', count.input(2)),
    ];
    await gate.started();
    controller.abort();
    const [before, blocked, after] = await Promise.all(tasks);
    expect(before).toBe(0);
    expect((blocked as { code?: string }).code).toBe('E_CANCELLED');
    expect(after).toBe(2);
    expect(count.of(2)).toBe(1);
    await pool.idle();
    expect(pool.stats().threadsReplaced).toBe(1);
  });

  it('an abort notice reaches only the item it is for, not the next item of the lane', async () => {
    // The first item is cancelled and stops at once; the second registers an abort listener. A
    // notice for the first that arrives late must not fire the second's.
    const pool = testPool({ threads: 1, modules: batched(2) });
    const gate = new Int32Array(new SharedArrayBuffer(8));
    const controller = new AbortController();
    const stopped = settle(
      pool.run('behave', { op: 'untilAborted', sab: gate.buffer }, { signal: controller.signal }),
    );
    const next = pool.run('behave', { op: 'listens', ms: 50 });
    while (Atomics.load(gate, 0) === 0) await new Promise((resolve) => setTimeout(resolve, 2));
    controller.abort();
    expect((await stopped).ok).toBe(false);
    expect(await next).toBe(false);
  });
});
