// Timeouts count run time only: not the queue, not a thread's boot, not a module's load.
import { afterEach, describe, expect, it } from 'vitest';
import { closeAll, settle, testPool } from '../helpers.js';

afterEach(closeAll);

describe('timeouts', () => {
  it('a short task queued behind two long ones is not timed out', async () => {
    // startGraceMs 0: a task handed to Piscina behind a busy thread must not be mistaken for
    // one that no thread will start.
    const pool = testPool({ threads: 1, startGraceMs: 0 });
    const submitted = performance.now();
    // Each long task runs 250 ms, under the 400 ms limit; the short one waits ~500 ms for them.
    const long = [1, 2].map(() => pool.run('behave', { op: 'spin', ms: 250 }, { timeoutMs: 400 }));
    const short = pool.run('behave', { op: 'spin', ms: 5, value: 'short' }, { timeoutMs: 400 });
    expect(await Promise.all(long)).toEqual(['spun', 'spun']);
    expect(await short).toBe('short');
    // It did wait longer than its own limit (two 250 ms spins on the only thread came first).
    expect(performance.now() - submitted).toBeGreaterThan(400);
  });

  it('a task on a thread that is still loading its module is not charged the load', async () => {
    const pool = testPool({ threads: 1 });
    // slow-load takes 400 ms to load; the task then runs 100 ms against a 300 ms limit.
    expect(await pool.run('slowLoad', 100, { timeoutMs: 300 })).toBe(100);
  });

  it('a task handed to a replacement thread that is still booting is not charged the boot', async () => {
    const pool = testPool({ threads: 1 });
    const crash = settle(pool.run('behave', { op: 'exit' }));
    // Queued behind the crash: handed to the replacement as soon as the crash settles.
    const next = pool.run('slowLoad', 100, { timeoutMs: 300 });
    expect((await crash).ok).toBe(false);
    expect(await next).toBe(100);
  });

  it('an expired task fails E_TIMEOUT, its thread is replaced, and the pool goes on', async () => {
    const pool = testPool({ threads: 1 });
    const before = await pool.run('behave', { op: 'thread' });
    const result = await settle(pool.run('behave', { op: 'loop' }, { timeoutMs: 50 }));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe('E_TIMEOUT');
    expect((result.error as { details?: unknown }).details).toEqual({
      module: 'behave',
      timeoutMs: 50,
    });
    expect(await pool.run('behave', { op: 'thread' })).not.toBe(before);
  });

  it('module and pool defaults apply; a per-task timeout overrides them', async () => {
    const pool = testPool({
      threads: 1,
      timeoutMs: 60,
      modules: {
        behave: { url: new URL('../fixtures/behave.mjs', import.meta.url), timeoutMs: 80 },
      },
    });
    const byModule = await settle(pool.run('behave', { op: 'loop' }));
    expect(
      byModule.ok ? 0 : (byModule.error as { details: { timeoutMs: number } }).details.timeoutMs,
    ).toBe(80);
    expect(await pool.run('behave', { op: 'spin', ms: 120 }, { timeoutMs: 0 })).toBe('spun');
  });

  it('a module that hangs while loading fails E_MODULE_LOAD after moduleLoadTimeoutMs', async () => {
    const pool = testPool({ threads: 1, moduleLoadTimeoutMs: 100 });
    const result = await settle(pool.run('hangsOnLoad', 1));
    expect(result.ok ? '' : result.code).toBe('E_MODULE_LOAD');
    expect(result.ok ? '' : (result.error as Error).message).toMatch(/longer than 100 ms to load/);
    expect(await pool.run('echo', 'still fine')).toBe('still fine');
  });

  it('a module that blocks its thread while loading is terminated and fails E_MODULE_LOAD', async () => {
    const pool = testPool({ threads: 1, moduleLoadTimeoutMs: 100 });
    const blocked = settle(pool.run('blocksOnLoad', 1));
    const after = pool.run('echo', 'after');
    const result = await blocked;
    expect(result.ok ? '' : result.code).toBe('E_MODULE_LOAD');
    expect(result.ok ? '' : (result.error as Error).message).toMatch(/blocked its thread/);
    expect(await after).toBe('after');
    // Known broken now: later tasks of it fail at once, without a thread.
    expect((await settle(pool.run('blocksOnLoad', 2))).ok).toBe(false);
  });
});
