// The worker context at the pool level: cancellation that a synchronous handler can see
// (shared memory), the grace period before its thread is terminated, the abort event for
// asynchronous handlers, and ctx calls on a pool that has no troupe behind it.
import { afterEach, describe, expect, it } from 'vitest';
import { createPool, type Pool, type PoolOptions } from '../../dist/src/index.js';
import { fixture, settle, until } from '../helpers.js';

const open: Pool[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.destroy()));
});

function pool(options: Partial<PoolOptions> = {}): Pool {
  const p = createPool({ threads: 1, modules: { talker: fixture('talker') }, ...options });
  open.push(p);
  return p;
}

/** A shared log the handler appends to (slot 0 counts); read without sleeping. */
function sharedLog() {
  const sab = new SharedArrayBuffer(64);
  const view = new Int32Array(sab);
  return {
    sab,
    values: () => Array.from(view.subarray(1, 1 + Atomics.load(view, 0))),
  };
}

describe('ctx.signal and the cancel grace period', () => {
  it('a synchronous handler that polls ctx.throwIfAborted() stops within the grace period and keeps its thread', async () => {
    const p = pool({ cancelGraceMs: 60_000 });
    const log = sharedLog();
    const controller = new AbortController();
    const task = settle(
      p.run('talker', { op: 'pollSpin', ms: 60_000, sab: log.sab }, { signal: controller.signal }),
    );
    await until(() => log.values().length === 1);
    const before = p.stats().perThread.map((t) => t.threadId);
    controller.abort();
    // The task settles at once; the handler sees the flag in its loop and throws.
    expect(await task).toMatchObject({ ok: false, code: 'E_CANCELLED' });
    await until(() => log.values().includes(2));
    // The thread finished the task itself and runs the next one: it was not replaced.
    await expect(p.run('talker', { op: 'echo', value: 'next' })).resolves.toBe('next');
    expect(p.stats().threadsReplaced).toBe(0);
    expect(p.stats().perThread.map((t) => t.threadId)).toEqual(before);
  });

  it('ctx.signal.aborted turns true inside a synchronous loop when the task times out', async () => {
    const p = pool({ cancelGraceMs: 60_000 });
    const log = sharedLog();
    const result = await settle(
      p.run('talker', { op: 'signalAborted', ms: 60_000, sab: log.sab }, { timeoutMs: 50 }),
    );
    expect(result).toMatchObject({ ok: false, code: 'E_TIMEOUT' });
    await expect(p.run('talker', { op: 'echo', value: 'next' })).resolves.toBe('next');
    expect(p.stats().threadsReplaced).toBe(0);
  });

  it('a handler that never looks is terminated once the grace period is over', async () => {
    const p = pool({ cancelGraceMs: 20 });
    const log = sharedLog();
    const controller = new AbortController();
    const task = settle(
      p.run('talker', { op: 'deafSpin', ms: 60_000, sab: log.sab }, { signal: controller.signal }),
    );
    await until(() => log.values().length === 1);
    controller.abort();
    expect(await task).toMatchObject({ ok: false, code: 'E_CANCELLED' });
    await until(() => p.stats().threadsReplaced === 1);
    await expect(p.run('talker', { op: 'echo', value: 'next' })).resolves.toBe('next');
    expect(log.values()).toEqual([1]); // it never finished
  });

  it('an asynchronous handler hears the abort event', async () => {
    const p = pool({ cancelGraceMs: 60_000 });
    const log = sharedLog();
    const controller = new AbortController();
    const task = settle(
      p.run('talker', { op: 'awaitAbort', sab: log.sab }, { signal: controller.signal }),
    );
    await until(() => log.values().length === 1);
    controller.abort();
    expect(await task).toMatchObject({ ok: false, code: 'E_CANCELLED' });
    await until(() => log.values().includes(2));
    expect(p.stats().threadsReplaced).toBe(0);
  });
});

describe('ctx without a troupe', () => {
  it('messages need a host: ctx.send fails E_NO_RECIPIENT with a clear message', async () => {
    const p = pool();
    const result = await settle(p.run('talker', { op: 'send', to: 'x', count: 1, msg: {} }));
    expect(result).toMatchObject({ ok: false, code: 'E_TASK_FAILED' });
    const cause = ((result as { error: Error }).error as Error & { cause?: { code?: string } })
      .message;
    expect(cause).toMatch(/no context host/);
  });

  it('ctx.progress checks its argument on the thread', async () => {
    const p = pool();
    const result = await settle(p.run('talker', { op: 'progress', steps: [2] }));
    expect((result as { error: Error }).error.message).toMatch(
      /ctx.progress\(fraction\): expected a number from 0 to 1, got 2/,
    );
  });
});
