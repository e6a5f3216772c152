// Cancellation through a caller's AbortSignal: before, while queued, and while running.
import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { blocker, closeAll, settle, testPool } from '../helpers.js';

afterEach(closeAll);

describe('abort', () => {
  it('an already aborted signal rejects E_CANCELLED at once, with the reason as cause', async () => {
    const pool = testPool();
    const controller = new AbortController();
    controller.abort(new Error('no longer needed'));
    const result = await settle(
      pool.run('behave', { op: 'echo', value: 1 }, { signal: controller.signal }),
    );
    expect(result.ok ? '' : result.code).toBe('E_CANCELLED');
    expect(result.ok ? undefined : ((result.error as Error).cause as Error).message).toBe(
      'no longer needed',
    );
    expect(pool.stats().cancelled).toBe(0); // never admitted
  });

  it('a queued task aborted never runs; the others run in order', async () => {
    const pool = testPool({ threads: 1 });
    const gate = blocker();
    const first = pool.run('behave', gate.input('first'));
    await gate.started();
    const controller = new AbortController();
    const doomed = settle(
      pool.run('behave', { op: 'echo', value: 'doomed' }, { signal: controller.signal }),
    );
    const third = pool.run('behave', { op: 'echo', value: 'third' });
    controller.abort();
    expect((await doomed).ok ? '' : 'cancelled').toBe('cancelled');
    gate.release();
    expect(await first).toBe('first');
    expect(await third).toBe('third');
    expect(pool.stats()).toMatchObject({ cancelled: 1, completed: 2, threadsReplaced: 0 });
  });

  it('a running task aborted fails E_CANCELLED, its thread is replaced, queued work still runs', async () => {
    const pool = testPool({ threads: 1 });
    const gate = blocker();
    const controller = new AbortController();
    const running = settle(pool.run('behave', gate.input(), { signal: controller.signal }));
    const queued = pool.run('behave', { op: 'echo', value: 'queued' });
    await gate.started();
    controller.abort();
    const result = await running;
    expect(result.ok ? '' : result.code).toBe('E_CANCELLED');
    expect(await queued).toBe('queued');
    expect(pool.stats().threadsReplaced).toBe(1);
  });

  it('aborting after the task finished changes nothing', async () => {
    const pool = testPool();
    const controller = new AbortController();
    expect(await pool.run('behave', { op: 'echo', value: 7 }, { signal: controller.signal })).toBe(
      7,
    );
    controller.abort();
    expect(pool.stats()).toMatchObject({ completed: 1, cancelled: 0 });
  });

  it('tasks sharing one signal: one listener for all, removed when the last settles; an abort cancels those left', async () => {
    const pool = testPool({ threads: 1 });
    const controller = new AbortController();
    const { signal } = controller;
    const done = await Promise.all(
      [1, 2, 3].map((value) => pool.run('behave', { op: 'echo', value }, { signal })),
    );
    expect(done).toEqual([1, 2, 3]);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    const gate = blocker();
    const running = settle(pool.run('behave', gate.input('A'), { signal }));
    const queued = [4, 5].map((value) =>
      settle(pool.run('behave', { op: 'echo', value }, { signal })),
    );
    await gate.started();
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    controller.abort(new Error('stop'));
    for (const result of [await running, ...(await Promise.all(queued))])
      expect(result.ok ? '' : result.code).toBe('E_CANCELLED');
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    // Other work goes on, on a replacement thread.
    expect(await pool.run('behave', { op: 'echo', value: 6 })).toBe(6);
  });
});
