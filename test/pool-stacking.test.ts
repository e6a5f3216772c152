// Long tasks and a busy thread's port: a measured task may wait there (the thread then goes from
// one task to the next without a round trip through the main thread), but when another thread
// goes idle first, the pool takes it back and hands it to that thread, so nothing waits behind a
// task that blocks while another thread idles.
import { afterEach, describe, expect, it } from 'vitest';
import { blocker, closeAll, testPool } from './helpers.js';

afterEach(closeAll);

describe('stacking long tasks', () => {
  it('no task waits behind a blocked one while the other thread is free: it is taken back', async () => {
    const pool = testPool({
      threads: 2,
      modules: { behave: { url: new URL('./fixtures/behave.mjs', import.meta.url), batch: 1 } },
    });
    // Three samples of ~3 ms: the module is measured long (not short, never batched).
    for (let i = 0; i < 3; i++) await pool.run('behave', { op: 'spin', ms: 3 });
    const gate = blocker();
    const blocked = pool.run('behave', gate.input('A'));
    await gate.started();
    // Five more, queued while one thread blocks: all must finish on the free thread. Piscina
    // stacks the second of them behind the blocked task (the least busy thread after the first
    // went to the free one); without being taken back, it would wait for the blocked task.
    const rest = await Promise.all(
      ['B', 'C', 'D', 'E', 'F'].map((value) => pool.run('behave', { op: 'spin', ms: 3, value })),
    );
    expect(rest).toEqual(['B', 'C', 'D', 'E', 'F']);
    expect(pool.stats().stolen).toBeGreaterThanOrEqual(1);
    gate.release();
    expect(await blocked).toBe('A');
  });

  it('a stacked batch is taken back whole and runs on the free thread, in order', async () => {
    const pool = testPool({
      threads: 2,
      modules: { behave: new URL('./fixtures/behave.mjs', import.meta.url) },
    });
    // Measured short (~0.2 ms): batched by 'auto'.
    for (let i = 0; i < 3; i++) await pool.run('behave', { op: 'spin', ms: 0.2 });
    const gate = blocker();
    const blocked = pool.run('behave', gate.input('A'));
    await gate.started();
    const values = Array.from({ length: 40 }, (_, i) => i);
    const rest = await Promise.all(
      values.map((value) => pool.run('behave', { op: 'spin', ms: 0.2, value })),
    );
    expect(rest).toEqual(values);
    expect(pool.stats().stolen).toBeGreaterThanOrEqual(1);
    gate.release();
    expect(await blocked).toBe('A');
    expect(pool.stats()).toMatchObject({ completed: 44, failed: 0, cancelled: 0, running: 0 });
  });

  it('tasks of very different lengths, a few in flight at a time: each settles once, with its own value', async () => {
    const pool = testPool({
      threads: 2,
      modules: { behave: { url: new URL('./fixtures/behave.mjs', import.meta.url), batch: 1 } },
    });
    for (let i = 0; i < 3; i++) await pool.run('behave', { op: 'spin', ms: 1 });
    // Four in flight; every 8th task is long, so stacked tasks often wait behind a long one
    // while the other thread runs dry: they are taken back (or begun first, racing for the same
    // compare-and-swap), and the thread that was to run them skips them. A task run twice or
    // never would show in the results or the counters.
    const n = 160;
    const results = new Array<unknown>(n);
    let next = 0;
    const window = async () => {
      while (next < n) {
        const i = next++;
        results[i] = await pool.run('behave', { op: 'spin', ms: i % 8 === 0 ? 12 : 0.3, value: i });
      }
    };
    await Promise.all([window(), window(), window(), window()]);
    expect(results).toEqual(Array.from({ length: n }, (_, i) => i));
    const stats = pool.stats();
    expect(stats).toMatchObject({
      completed: n + 3,
      failed: 0,
      cancelled: 0,
      running: 0,
      queued: 0,
    });
    // How many were taken back depends on timing (the two tests above make it happen for sure).
  });

  it('a task with transferred input never waits behind another (it could not be taken back)', async () => {
    const pool = testPool({
      threads: 2,
      modules: { behave: { url: new URL('./fixtures/behave.mjs', import.meta.url), batch: 1 } },
    });
    for (let i = 0; i < 3; i++) await pool.run('behave', { op: 'spin', ms: 1 });
    const gate = blocker();
    const blocked = pool.run('behave', gate.input('A'));
    await gate.started();
    const sized = [0, 1, 2].map(() => {
      const buf = new ArrayBuffer(1024);
      return pool.run('behave', { op: 'bytes', ms: 5, buf }, { transfer: [buf] });
    });
    // Sent again after its buffer had gone with the first message, one would see 0 bytes.
    expect(await Promise.all(sized)).toEqual([1024, 1024, 1024]);
    expect(pool.stats().stolen).toBe(0);
    gate.release();
    expect(await blocked).toBe('A');
  });
});
