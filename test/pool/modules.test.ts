// Modules: loaded by registered name, once per thread; a broken module fails its own tasks and
// never the pool.
import { afterEach, describe, expect, it } from 'vitest';
import { closeAll, settle, testPool, until } from '../helpers.js';

afterEach(closeAll);

describe('modules', () => {
  it('a module that throws on load fails E_MODULE_LOAD; its queued tasks fail fast; others run', async () => {
    const pool = testPool({ threads: 2 });
    const broken = Array.from({ length: 6 }, (_, i) => settle(pool.run('broken', i)));
    const fine = Array.from({ length: 6 }, (_, i) => pool.run('echo', i));
    const results = await Promise.all(broken);
    for (const r of results) {
      expect(r.ok ? '' : r.code).toBe('E_MODULE_LOAD');
      expect(r.ok ? '' : (r.error as Error).message).toMatch(/broken on purpose/);
    }
    expect(await Promise.all(fine)).toEqual([0, 1, 2, 3, 4, 5]);
    const later = await settle(pool.run('broken', 99));
    expect(later.ok ? '' : later.code).toBe('E_MODULE_LOAD');
  });

  it('after a module broke on load, crashed threads are still replaced and queued work settles', async () => {
    const pool = testPool({ threads: 2 });
    expect((await settle(pool.run('broken', 0))).ok).toBe(false);
    expect((await settle(pool.run('exitsOnLoad', 0))).ok).toBe(false);
    const crashes = Array.from({ length: 4 }, () => settle(pool.run('behave', { op: 'exit' })));
    const work = Array.from({ length: 20 }, (_, i) => pool.run('behave', { op: 'echo', value: i }));
    expect((await Promise.all(crashes)).every((r) => !r.ok && r.code === 'E_WORKER_CRASHED')).toBe(
      true,
    );
    expect(await Promise.all(work)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await until(() => pool.stats().liveThreads === 2);
  });

  it('a module that kills its thread while loading is E_MODULE_LOAD, not a crash of a task', async () => {
    const pool = testPool({ threads: 1 });
    const result = await settle(pool.run('exitsOnLoad', 0));
    expect(result.ok ? '' : result.code).toBe('E_MODULE_LOAD');
    expect(result.ok ? '' : (result.error as Error).message).toMatch(
      /killed its thread while loading/,
    );
    expect(await pool.run('echo', 'ok')).toBe('ok');
  });

  it('a module without a default export function is E_MODULE_LOAD naming what it found', async () => {
    const pool = testPool();
    const result = await settle(pool.run('noDefault', 0));
    expect(result.ok ? '' : (result.error as Error).message).toMatch(
      /must export a default function.*undefined/,
    );
  });

  it('an unregistered name is refused: the task names a module, never a path', async () => {
    const pool = testPool();
    await expect(pool.run('/etc/passwd', 0)).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      message: expect.stringContaining('one of the registered modules'),
    });
  });

  it('probe(): the module loads and its probe passes, fails, or is absent', async () => {
    const pool = testPool();
    expect(await pool.probe('echo')).toBe('ready');
    expect(await pool.probe('behave')).toBe(true);
    await expect(pool.probe('probeFails')).rejects.toMatchObject({
      code: 'E_PROBE_FAILED',
      message: 'probeFails: probe failed: dependency missing',
    });
    await expect(pool.probe('broken')).rejects.toMatchObject({ code: 'E_MODULE_LOAD' });
  });

  it("a probe is not a measure of the module's tasks: batching waits for a task of its own", async () => {
    const pool = testPool({ threads: 1 });
    expect(await pool.probe('echo')).toBe('ready');
    // Unmeasured, so batch 1 and no run time: a probe's quick call would have sized batches.
    expect(pool.stats().modules.echo).toMatchObject({ completed: 1, avgRunMs: 0, batch: 1 });
    expect(await pool.run('echo', 1)).toBe(1);
    expect(pool.stats().modules.echo?.avgRunMs).toBeGreaterThan(0);
  });

  it('each thread loads a module once', async () => {
    const pool = testPool({ threads: 1 });
    const loads = await Promise.all(Array.from({ length: 10 }, () => pool.run('countsLoads')));
    expect(loads).toEqual(Array.from({ length: 10 }, () => 1));
  });
});

describe('errors thrown outside the task that caused them', () => {
  it('a timer left behind is not blamed on the next task; it is reported and the thread replaced', async () => {
    const strays: Error[] = [];
    const pool = testPool({ threads: 1, onStrayError: (error) => strays.push(error) });
    const before = await pool.run('behave', { op: 'thread' });
    expect(await pool.run('behave', { op: 'throwLater', message: 'oops' })).toBe('returned');
    // The next task yields to the event loop, so the leftover timer fires while it runs.
    expect(await pool.run('behave', { op: 'sleep', ms: 30, value: 'innocent' })).toBe('innocent');
    expect(strays).toHaveLength(1);
    expect(strays[0]?.message).toMatch(/left behind: oops/);
    expect(await pool.run('behave', { op: 'thread' })).not.toBe(before);
    expect(pool.stats()).toMatchObject({ strayErrors: 1, failed: 0 });
  });
});
