// Long tasks and a busy thread's port: a measured task may wait there (the thread then goes from
// one task to the next without a round trip through the main thread), but when another thread
// goes idle first, the pool takes it back and hands it to that thread, so nothing waits behind a
// task that blocks while another thread idles.
import { afterEach, describe, expect, it } from 'vitest';
import { blocker, closeAll, readyThreads, settle, testPool } from '../helpers.js';

afterEach(closeAll);

const behave = new URL('../fixtures/behave.mjs', import.meta.url);

/** Two threads over `behave`, its run time measured by three tasks of `input` first. */
async function measuredPool(input: object, batch: 1 | 'auto' = 1) {
  const pool = testPool({ threads: 2, modules: { behave: { url: behave, batch } } });
  for (let i = 0; i < 3; i++) await pool.run('behave', input);
  return pool;
}

describe('stacking long tasks', () => {
  it('no task waits behind a blocked one while the other thread is free: it is taken back', async () => {
    // Three samples of ~3 ms: the module is measured long (not short, never batched).
    const pool = await measuredPool({ op: 'spin', ms: 3 });
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
    // Measured short (~0.2 ms): batched by 'auto'.
    const pool = await measuredPool({ op: 'spin', ms: 0.2 }, 'auto');
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
    const pool = await measuredPool({ op: 'spin', ms: 1 });
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
    const pool = await measuredPool({ op: 'spin', ms: 1 });
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

  it('a task Piscina places later from its own queue is still taken back for an idle thread', async () => {
    const pool = testPool({
      threads: 2,
      modules: { m: { url: behave, batch: 1 }, u: { url: behave, batch: 1 } },
    });
    for (let i = 0; i < 3; i++) await pool.run('m', { op: 'spin', ms: 1 });
    // Both threads run an unmeasured task of u (never stacked upon), so the next two hand-offs
    // wait in Piscina's own queue; when one thread frees, Piscina gives it both.
    const gateU1 = blocker();
    const gateU2 = blocker();
    const u1 = settle(pool.run('u', gateU1.input('U1')));
    const u2 = settle(pool.run('u', gateU2.input('U2')));
    await gateU1.started();
    await gateU2.started();
    const gateS = blocker();
    const s1 = settle(pool.run('m', gateS.input('S1')));
    const s2 = settle(pool.run('m', { op: 'echo', value: 'S2' }));
    gateU2.release();
    expect(await u2).toMatchObject({ ok: true, value: 'U2' });
    // S1 blocks where U2 ran, S2 waits behind it; U1's thread frees and must take S2.
    await gateS.started();
    gateU1.release();
    expect(await u1).toMatchObject({ ok: true, value: 'U1' });
    expect(await s2).toMatchObject({ ok: true, value: 'S2' });
    expect(pool.stats().stolen).toBeGreaterThanOrEqual(1);
    gateS.release();
    expect(await s1).toMatchObject({ ok: true, value: 'S1' });
  });

  it('after a thread was replaced, nothing is taken back while every thread is busy', async () => {
    const pool = await measuredPool({ op: 'echo', value: 0 });
    const crash = await settle(pool.run('behave', { op: 'exit' }));
    expect(crash.ok ? '' : crash.code).toBe('E_WORKER_CRASHED');
    // Two tasks running at once: the replacement is ready (whatever was taken back meanwhile
    // has settled by the time the pool is idle).
    expect(await readyThreads(pool)).toEqual([0, 1]);
    await pool.idle();
    // Both threads blocked, and one task stacked behind each.
    const gateA = blocker();
    const gateB = blocker();
    const a = settle(pool.run('behave', gateA.input('A')));
    const b = settle(pool.run('behave', gateB.input('B')));
    await gateA.started();
    await gateB.started();
    const stacked = [1, 2].map((value) => settle(pool.run('behave', { op: 'echo', value })));
    const before = pool.stats().stolen;
    // A queued task cancelled: a settlement with nothing queued, which schedules a steal check.
    const controller = new AbortController();
    const queued = settle(
      pool.run('behave', { op: 'echo', value: 3 }, { signal: controller.signal }),
    );
    controller.abort();
    expect(await queued).toMatchObject({ ok: false, code: 'E_CANCELLED' });
    // The check runs in setImmediate; these run after it.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.stats().stolen).toBe(before);
    gateA.release();
    gateB.release();
    const values = (await Promise.all([a, b, ...stacked])).map((r) => (r.ok ? r.value : r.code));
    expect(values).toEqual(['A', 'B', 1, 2]);
  });

  it('a replacement thread that becomes ready takes over work stacked behind a busy one', async () => {
    const pool = await measuredPool({ op: 'echo', value: 0 });
    const gate = blocker();
    const blocked = pool.run('behave', gate.input('A'));
    await gate.started();
    // The other thread dies; while its replacement boots, S is stacked behind the blocked task.
    const crash = await settle(pool.run('behave', { op: 'exit' }));
    expect(crash.ok ? '' : crash.code).toBe('E_WORKER_CRASHED');
    expect(await pool.run('behave', { op: 'echo', value: 'S' })).toBe('S');
    expect(pool.stats().stolen).toBeGreaterThanOrEqual(1);
    gate.release();
    expect(await blocked).toBe('A');
  });

  it('a batch a thread runs gives up what it has not begun to a thread that goes idle', async () => {
    // Batches of up to 8 of a module measured at ~1 ms a task.
    const pool = testPool({ threads: 2, modules: { behave: { url: behave, batch: 8 } } });
    for (let i = 0; i < 3; i++) await pool.run('behave', { op: 'spin', ms: 1 });
    // Both threads blocked, one task stacked behind each: four hand-offs, the most in flight,
    // so what comes next waits in the pool's queue and leaves it in batches.
    const gateA = blocker();
    const gateB = blocker();
    const a = pool.run('behave', gateA.input('A'));
    const b = pool.run('behave', gateB.input('B'));
    await gateA.started();
    await gateB.started();
    const stacked = [1, 2].map((value) => pool.run('behave', { op: 'echo', value }));
    // A batch led by a task that blocks, and seven more after it.
    const gateC = blocker();
    const c = pool.run('behave', gateC.input('C'));
    const values = [1, 2, 3, 4, 5, 6, 7];
    const rest = values.map((value) => pool.run('behave', { op: 'spin', ms: 1, value }));
    gateA.release();
    await gateC.started();
    gateB.release();
    // The thread blocked in C's batch never gets to the rest of it: they must all run on the
    // other thread, taken back from the batch (and from the batch stacked behind it).
    expect(await Promise.all(rest)).toEqual(values);
    expect(pool.stats().trimmed).toBeGreaterThanOrEqual(1);
    gateC.release();
    // (Tasks that ran in C's batch before it report with it, when it ends.)
    expect(await Promise.all([a, b, ...stacked, c])).toEqual(['A', 'B', 1, 2, 'C']);
    expect(pool.stats()).toMatchObject({ completed: 3 + 12, failed: 0, cancelled: 0, running: 0 });
  });
});
