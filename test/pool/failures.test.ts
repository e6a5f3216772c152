// Every failure kind of the zoo: its code, the replacement of the thread, the pool still usable
// after, and every other queued task settled.
import { afterEach, describe, expect, it } from 'vitest';
import { isTroupeError, TroupeError } from '../../dist/src/index.js';
import { closeAll, settle, testPool, until, zoo } from '../helpers.js';

afterEach(closeAll);

const cases = [
  { op: 'throw', code: 'E_TASK_FAILED', replaced: false, message: /behave: boom/ },
  { op: 'reject', code: 'E_TASK_FAILED', replaced: false, message: /behave: rejected/ },
  { op: 'throwString', code: 'E_TASK_FAILED', replaced: false, message: /a plain string/ },
  { op: 'ownTimerThrows', code: 'E_TASK_FAILED', replaced: true, message: /own timer/ },
  { op: 'exit', code: 'E_WORKER_CRASHED', replaced: true, message: /exited with code: 3/ },
  { op: 'loop', code: 'E_TIMEOUT', replaced: true, message: /ran longer than its 200 ms timeout/ },
  { op: 'oom', code: 'E_WORKER_OOM', replaced: true, message: /out of memory/ },
  {
    op: 'uncloneable',
    code: 'E_NOT_CLONEABLE',
    replaced: true,
    message: /output\.nested\.list\[2\] \(a function\)/,
  },
] as const;

describe('each failure of a task', () => {
  for (const c of cases) {
    it(`${c.op} → ${c.code}; ${c.replaced ? 'thread replaced' : 'thread kept'}; the queue behind it settles`, async () => {
      const pool = testPool({
        threads: 1,
        resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 },
      });
      const before = await pool.run<number>('behave', { op: 'thread' });
      const failing = settle(
        pool.run('behave', { op: c.op }, { timeoutMs: c.op === 'loop' ? 200 : 0 }),
      );
      const queued = Array.from({ length: 5 }, (_, i) =>
        pool.run('behave', { op: 'echo', value: i }),
      );
      const failure = await failing;
      expect(failure.ok).toBe(false);
      if (failure.ok) return;
      expect(failure.code).toBe(c.code);
      expect(failure.error).toBeInstanceOf(TroupeError);
      expect((failure.error as Error).message).toMatch(c.message);
      expect(await Promise.all(queued)).toEqual([0, 1, 2, 3, 4]);
      const after = await pool.run<number>('behave', { op: 'thread' });
      if (c.replaced) expect(after).not.toBe(before);
      else expect(after).toBe(before);
      await until(() => pool.stats().liveThreads === 1);
      const stats = pool.stats();
      expect(stats.failed).toBe(1);
      expect(stats.completed).toBe(7);
      expect(stats.threadsReplaced).toBe(c.replaced ? 1 : 0);
    });
  }

  it('a thread terminated while it reports an uncaught error still exits (Node drops that termination)', async () => {
    const pool = testPool({ modules: { behave: { url: zoo.behave, batch: 1 } } });
    // Measured: the next task may wait in the thread's port behind the first.
    for (let i = 0; i < 3; i++) await pool.run('behave', { op: 'echo', value: i });
    const before = await pool.run<number>('behave', { op: 'thread' });
    // The pool terminates the thread on hearing of the output that could not be posted, while
    // the thread is still reporting it; the echo behind it then answers and the thread goes
    // back to Piscina's wait for its next message, where, asleep, it would never exit.
    const failing = settle(
      pool.run('behave', { op: 'uncloneableSlowReport', ms: 20, reportMs: 300 }),
    );
    const behind = pool.run('behave', { op: 'echo', value: 'behind' });
    const failure = await failing;
    expect(failure.ok ? '' : failure.code).toBe('E_NOT_CLONEABLE');
    expect(await behind).toBe('behind');
    await until(() => pool.stats().threadsReplaced === 1, 5000);
    expect(await pool.run<number>('behave', { op: 'thread' })).not.toBe(before);
  });

  it('E_TASK_FAILED carries the remote message and stack, rebuilt on the main thread', async () => {
    const pool = testPool();
    const result = await settle(pool.run('behave', { op: 'throw', message: 'bad input' }));
    if (result.ok) throw new Error('expected a failure');
    const error = result.error as TroupeError;
    expect(isTroupeError(error, 'E_TASK_FAILED')).toBe(true);
    const remote = error.cause as Error;
    expect(remote.name).toBe('TypeError');
    expect(remote.message).toBe('bad input');
    expect(remote.stack).toMatch(/behave\.mjs/);
    expect(error.details).toEqual({ module: 'behave' });
    expect(error.toJSON()).toMatchObject({
      code: 'E_TASK_FAILED',
      cause: { name: 'TypeError', message: 'bad input' },
    });
  });

  it('an input that cannot be cloned is E_NOT_CLONEABLE with its path, and nothing else is harmed', async () => {
    const pool = testPool();
    const bad = settle(pool.run('behave', { op: 'echo', value: { items: [1, { fn: () => 1 }] } }));
    const good = pool.run('behave', { op: 'echo', value: 'fine' });
    const result = await bad;
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe('E_NOT_CLONEABLE');
    expect((result.error as Error).message).toContain('input.value.items[1].fn');
    expect(await good).toBe('fine');
  });

  it('runThen settles through its callback, once; a callback that throws does not break the pool', async () => {
    const strays: string[] = [];
    const pool = testPool({ onStrayError: (error) => strays.push(error.message) });
    const outcomes: unknown[] = [];
    await new Promise<void>((resolve) => {
      pool.runThen('behave', { op: 'echo', value: 1 }, {}, (error, value) => {
        outcomes.push(error?.code ?? value);
        resolve();
      });
    });
    await new Promise<void>((resolve) => {
      pool.runThen('behave', { op: 'throw', message: 'no' }, {}, (error, value) => {
        outcomes.push(error?.code ?? value);
        resolve();
      });
    });
    pool.runThen('behave', { op: 'echo', value: 2 }, {}, () => {
      throw new Error('observer bug');
    });
    await pool.idle();
    expect(outcomes).toEqual([1, 'E_TASK_FAILED']);
    expect(strays).toEqual([expect.stringContaining('observer bug')]);
    expect(await pool.run('behave', { op: 'echo', value: 3 })).toBe(3);
    // A refusal goes through the same guard.
    await new Promise<void>((resolve) => {
      pool.runThen('nope', null, {}, () => {
        resolve();
        throw new Error('refusal observer bug');
      });
    });
    await pool.idle();
    expect(strays).toContainEqual(expect.stringContaining('refusal observer bug'));
  });
});
