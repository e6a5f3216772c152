// close() and destroy(): every task settles, running ones may finish, nothing is taken after.
import { afterEach, describe, expect, it } from 'vitest';
import { blocker, closeAll, settle, testPool } from '../helpers.js';

afterEach(closeAll);

describe('close', () => {
  it('lets running and queued tasks finish, then resolves', async () => {
    const pool = testPool({ threads: 1 });
    const gate = blocker();
    const running = pool.run('behave', gate.input('ran'));
    const queued = pool.run('behave', { op: 'echo', value: 'queued' });
    await gate.started();
    const closing = pool.close();
    const late = await settle(pool.run('behave', { op: 'echo', value: 'late' }));
    expect(late.ok ? '' : late.code).toBe('E_CLOSED');
    gate.release();
    await closing;
    expect(await running).toBe('ran');
    expect(await queued).toBe('queued');
  });

  it('after timeoutMs, cancels what is left with E_CLOSED: running and queued', async () => {
    const pool = testPool({ threads: 1 });
    const gate = blocker();
    const running = settle(pool.run('behave', gate.input()));
    const queued = settle(pool.run('behave', { op: 'echo', value: 'queued' }));
    await gate.started();
    await pool.close({ timeoutMs: 20 });
    const results = await Promise.all([running, queued]);
    expect(results.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['E_CLOSED', 'E_CLOSED']);
    expect(pool.stats().liveThreads).toBe(0);
  });

  it('destroy() settles everything at once', async () => {
    const pool = testPool({ threads: 2 });
    const gates = [blocker(), blocker()];
    const running = gates.map((g) => settle(pool.run('behave', g.input())));
    const queued = Array.from({ length: 10 }, (_, i) =>
      settle(pool.run('behave', { op: 'echo', value: i })),
    );
    await Promise.all(gates.map((g) => g.started()));
    await pool.destroy();
    const results = await Promise.all([...running, ...queued]);
    expect(results.every((r) => !r.ok && r.code === 'E_CLOSED')).toBe(true);
  });

  it('close() on an idle pool resolves, twice, and close options are checked', async () => {
    const pool = testPool();
    await expect(pool.close({ timeoutMs: -1 })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' });
    await pool.close();
    await pool.close();
    await expect(pool.run('echo', 1)).rejects.toMatchObject({ code: 'E_CLOSED' });
  });

  it('idle() resolves at once when nothing runs, and when the queue drains', async () => {
    const pool = testPool({ threads: 1 });
    await pool.idle();
    const tasks = Array.from({ length: 20 }, (_, i) => pool.run('echo', i));
    await pool.idle();
    expect(pool.stats()).toMatchObject({ queued: 0, running: 0, completed: 20 });
    await Promise.all(tasks);
  });
});
