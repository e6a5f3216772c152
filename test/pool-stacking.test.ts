// Long tasks and a busy thread's port: a measured long task may wait there only while the queue
// is deep; with a shallow queue every task goes to a thread that is free, so nothing waits behind
// a task that blocks while another thread idles.
import { afterEach, describe, expect, it } from 'vitest';
import { blocker, closeAll, testPool } from './helpers.js';

afterEach(closeAll);

describe('stacking long tasks', () => {
  it('with a shallow queue, no task waits behind a blocked one while the other thread is free', async () => {
    const pool = testPool({
      threads: 2,
      modules: { behave: { url: new URL('./fixtures/behave.mjs', import.meta.url), batch: 1 } },
    });
    // Three samples of ~3 ms: the module is measured long (not short, never batched).
    for (let i = 0; i < 3; i++) await pool.run('behave', { op: 'spin', ms: 3 });
    const gate = blocker();
    const blocked = pool.run('behave', gate.input('A'));
    await gate.started();
    // Five more (a shallow queue for 2 threads), queued while one thread blocks: all must
    // finish on the free thread. Stacked behind the blocked task, some would wait for it.
    const rest = await Promise.all(
      ['B', 'C', 'D', 'E', 'F'].map((value) => pool.run('behave', { op: 'spin', ms: 3, value })),
    );
    expect(rest).toEqual(['B', 'C', 'D', 'E', 'F']);
    gate.release();
    expect(await blocked).toBe('A');
  });
});
