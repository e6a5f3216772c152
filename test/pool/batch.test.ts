// Batching: several queued tasks of one module in one message, each settling on its own.
import { afterEach, describe, expect, it } from 'vitest';
import { blocker, closeAll, fixture, readyThreads, settle, testPool } from '../helpers.js';

afterEach(closeAll);

const batched = (batch: number | 'auto') => ({ behave: { url: fixture('behave'), batch } });

describe('batching', () => {
  it('each task of a batch gets its own context, however the batch packs them', async () => {
    const pool = testPool({ threads: 1, modules: batched(8) });
    const gate = blocker();
    const held = pool.run('behave', gate.input('held'));
    await gate.started();
    // Queued behind the blocked task (the first alone, in the thread's second slot), then handed
    // out in batches of 8: tasks that share fields and differ in others (packed as columns),
    // some with deps, then a mixed batch (one object each).
    const contexts = [
      ...Array.from({ length: 9 }, (_, i) => ({
        task: { id: `t${i}`, needs: 'x', attempt: 1 + (i % 2), runId: 'r' },
        ...(i % 3 === 0 ? { deps: { up: i } } : {}),
      })),
      { task: { id: 'other', extra: true } },
      {},
      { deps: { only: 'deps' } },
      { task: { id: 't9', needs: 'x', attempt: 1, runId: 'r' } },
    ];
    const runs = contexts.map((context) => pool.run('behave', { op: 'ctx' }, { context }));
    gate.release();
    expect(await held).toBe('held');
    expect(await Promise.all(runs)).toEqual(contexts.map((context) => ({ deps: {}, ...context })));
  });

  it('tells each task its place in the message its thread received (ctx.batch)', async () => {
    const pool = testPool({ threads: 1, modules: batched(4) });
    const gate = blocker();
    const held = pool.run('behave', gate.input('held'));
    await gate.started();
    // Queued behind the blocked task, then handed out in messages of up to 4, in order: the
    // places read as messages, each item 0 to size - 1 of the same size.
    const places = await (async () => {
      const runs = Array.from({ length: 9 }, () => pool.run('behave', { op: 'batch' }));
      gate.release();
      expect(await held).toBe('held');
      return Promise.all(runs);
    })();
    const sizes: number[] = [];
    for (let at = 0; at < places.length; ) {
      const size = (places[at] as { size: number }).size;
      expect(places.slice(at, at + size)).toEqual(
        Array.from({ length: size }, (_, index) => ({ index, size })),
      );
      sizes.push(size);
      at += size;
    }
    expect(Math.max(...sizes)).toBe(4);
  });

  it('returns each task its own result and its own error, in one message', async () => {
    const pool = testPool({ threads: 1, modules: batched(8) });
    const inputs = Array.from({ length: 16 }, (_, i) =>
      i % 3 === 0 ? { op: 'throw', message: `bad ${i}` } : { op: 'echo', value: i },
    );
    const results = await Promise.all(inputs.map((input) => settle(pool.run('behave', input))));
    results.forEach((result, i) => {
      if (i % 3 === 0) {
        expect(result.ok).toBe(false);
        expect(result.ok ? '' : (result.error as Error).message).toBe(`behave: bad ${i}`);
      } else {
        expect(result).toEqual({ ok: true, value: i });
      }
    });
    const stats = pool.stats();
    // 16 items ran; the first went alone, the others in batches of up to 8.
    expect(stats.runMs.count).toBe(16);
    expect(stats.waitMs.count).toBe(16);
    expect(stats.modules.behave?.batch).toBe(8);
  });

  it('times each item on its own: one slow item times out, the rest of its batch runs elsewhere', async () => {
    const pool = testPool({ threads: 1, modules: batched(4) });
    const first = pool.run('behave', { op: 'echo', value: 'first' });
    const batch = [
      pool.run('behave', { op: 'spin', ms: 1, value: 'a' }, { timeoutMs: 200 }),
      settle(pool.run('behave', { op: 'loop' }, { timeoutMs: 100 })),
      pool.run('behave', { op: 'spin', ms: 1, value: 'c' }, { timeoutMs: 200 }),
    ];
    expect(await first).toBe('first');
    const [a, looped, c] = await Promise.all(batch);
    expect(a).toBe('a');
    expect((looped as { code: string }).code).toBe('E_TIMEOUT');
    expect(c).toBe('c');
    expect(pool.stats().requeued).toBeGreaterThanOrEqual(1);
  });

  it('a crash in a batch is charged to the item that crashed; the others still settle once', async () => {
    const pool = testPool({ threads: 1, modules: batched(4) });
    const first = pool.run('behave', { op: 'echo', value: 0 });
    const rest = [
      settle(pool.run('behave', { op: 'echo', value: 1 })),
      settle(pool.run('behave', { op: 'exit' })),
      settle(pool.run('behave', { op: 'echo', value: 3 })),
    ];
    await first;
    const results = await Promise.all(rest);
    expect(results.map((r) => (r.ok ? r.value : r.code))).toEqual([1, 'E_WORKER_CRASHED', 3]);
  });

  it('tasks put back after two messages die together run in the order they came', async () => {
    const pool = testPool({ threads: 1, modules: batched(32) });
    // Measured, so that a second message waits on the thread too (and dies with it).
    await Promise.all([1, 2, 3].map((value) => pool.run('behave', { op: 'echo', value })));
    // One crash leads the first of two messages; both die; all the rest is put back.
    const crash = settle(pool.run('behave', { op: 'exit' }));
    const order: number[] = [];
    const rest = Array.from({ length: 17 }, (_, i) =>
      pool.run('behave', { op: 'echo', value: i + 1 }).then((value) => order.push(value as number)),
    );
    await Promise.all(rest);
    expect((await crash).ok).toBe(false);
    expect(order).toEqual(Array.from({ length: 17 }, (_, i) => i + 1));
  });

  it("a task put back for others' crashes again and again fails at the 17th time, not for ever", async () => {
    const pool = testPool({ threads: 1, modules: batched(1) });
    await Promise.all([1, 2, 3].map((value) => pool.run('behave', { op: 'echo', value })));
    // A crasher runs with the task waiting behind it on the thread; each crash puts the task
    // back, and the next crasher (handed out before the task is put back) goes ahead of it.
    const first = settle(pool.run('behave', { op: 'exit' }));
    const behind = settle(pool.run('behave', { op: 'echo', value: 'behind' }));
    const more = Array.from({ length: 16 }, () => settle(pool.run('behave', { op: 'exit' })));
    const crashes = await Promise.all([first, ...more]);
    expect(crashes.every((r) => !r.ok && r.code === 'E_WORKER_CRASHED')).toBe(true);
    const last = await behind;
    expect(last.ok).toBe(false);
    if (!last.ok) {
      expect(last.code).toBe('E_WORKER_CRASHED');
      expect((last.error as Error).message).toMatch(/sent back to the queue 17 times/);
    }
    // The count is per task: one behind a single crash runs.
    const crash = settle(pool.run('behave', { op: 'exit' }));
    expect(await pool.run('behave', { op: 'echo', value: 'ok' })).toBe('ok');
    expect((await crash).ok).toBe(false);
  });

  it("'auto' batches only short tasks, from their measured run time", async () => {
    const pool = testPool({ threads: 1, modules: batched('auto') });
    expect(pool.stats().modules.behave?.batch).toBe(1);
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => pool.run('behave', { op: 'echo', value: i })),
    );
    expect(pool.stats().modules.behave?.batch).toBeGreaterThan(1);
    // Past AUTO_BATCH_BELOW_MS (12): the moving mean needs ~14 of them to get there.
    for (let i = 0; i < 35; i++) await pool.run('behave', { op: 'spin', ms: 16 });
    expect(pool.stats().modules.behave?.batch).toBe(1);
  });

  // A's answer travels with its message: alone, it comes back before B (next in the queue) has
  // finished; in one message with B, only after. Clocks: both are timeOrigin + now, in ms.
  for (const [batch, together] of [
    [1, false],
    [2, true],
  ] as const) {
    it(`batch ${batch}: the next queued task ${together ? 'shares' : 'does not share'} a message`, async () => {
      const pool = testPool({ threads: 1, modules: batched(batch) });
      const gate = blocker();
      const held = pool.run('behave', gate.input('held'));
      await gate.started();
      const filler = pool.run('behave', { op: 'echo', value: 'filler' }); // the thread's second slot
      // Handed out at the end of this turn (with what else was queued by then): let it go alone.
      await Promise.resolve();
      let aSettledAt = 0;
      const a = pool.run('behave', { op: 'echo', value: 'a' }).then((v) => {
        aSettledAt = performance.timeOrigin + performance.now();
        return v;
      });
      const b = pool.run<{ end: number }>('behave', { op: 'interval', ms: 100 });
      gate.release();
      expect(await Promise.all([held, filler, a])).toEqual(['held', 'filler', 'a']);
      const { end } = await b;
      if (together) expect(aSettledAt).toBeGreaterThanOrEqual(end);
      else expect(aSettledAt).toBeLessThan(end);
    });
  }

  it('a burst of one batch on idle threads is split over them, not given to one', async () => {
    const pool = testPool({ threads: 2, modules: batched(8) });
    // Both threads ready.
    await readyThreads(pool);
    const threads = await Promise.all(
      Array.from({ length: 8 }, () => pool.run<number>('behave', { op: 'thread' })),
    );
    expect(new Set(threads).size).toBe(2);
  });

  it('cancelling a task of a batch does not run again the ones before it', async () => {
    const pool = testPool({ threads: 1, modules: batched(4), cancelGraceMs: 5_000 });
    const gate = blocker();
    const held = pool.run('behave', gate.input('held'));
    await gate.started();
    const filler = pool.run('behave', { op: 'echo', value: 'filler' });
    await Promise.resolve();
    // One batch: two counted tasks, one that runs until cancelled, one more counted.
    const sab = new SharedArrayBuffer(16);
    const stop = blocker();
    const controller = new AbortController();
    const batch = [
      pool.run('behave', { op: 'count', sab, slot: 0 }),
      pool.run('behave', { op: 'count', sab, slot: 1 }),
      pool.run(
        'behave',
        { op: 'untilAborted', sab: stop.sab },
        {
          signal: controller.signal,
        },
      ),
      pool.run('behave', { op: 'count', sab, slot: 3 }),
    ].map((p) => settle(p));
    gate.release();
    await stop.started();
    controller.abort();
    const outcomes = (await Promise.all(batch)).map((r) => (r.ok ? r.value : r.code));
    expect(outcomes).toEqual([0, 1, 'E_CANCELLED', 3]);
    expect(await Promise.all([held, filler])).toEqual(['held', 'filler']);
    // The thread stopped the cancelled task itself (it was not replaced): each ran once.
    expect([...new Int32Array(sab)]).toEqual([1, 1, 0, 1]);
    expect(pool.stats().threadsReplaced).toBe(0);
  });

  it('tasks of one turn not yet handed out do not count against maxQueue', async () => {
    const pool = testPool({ threads: 2, modules: batched(4), maxQueue: 2 });
    const outcomes = await Promise.all(
      [1, 2, 3].map((value) => settle(pool.run('behave', { op: 'echo', value }))),
    );
    expect(outcomes.map((r) => (r.ok ? r.value : r.code))).toEqual([1, 2, 3]);
  });

  it('a timeout judged on an old reading never cancels the task its thread has moved on to', async () => {
    const pool = testPool({
      threads: 2,
      modules: { ...batched(2), solo: { url: fixture('behave'), batch: 1 } },
      sweepIntervalMs: 50,
      cancelGraceMs: 5_000,
    });
    await readyThreads(pool);
    const sab = new SharedArrayBuffer(8);
    // One thread: a task past its limit, whose settlement keeps the main thread busy for 300 ms
    // (a slow observer). The other, one batch: X, past its limit, ends at 200 ms; then Y, with
    // no limit. One sweep finds both past their limits; while the first verdict's callback runs,
    // the second thread finishes X and begins Y.
    let firstSettled = false;
    pool.runThen('solo', { op: 'spin', ms: 100 }, { timeoutMs: 20 }, () => {
      firstSettled = true;
      const end = performance.now() + 300;
      while (performance.now() < end);
    });
    const x = settle(pool.run('behave', { op: 'spin', ms: 200, value: 'X' }, { timeoutMs: 20 }));
    const y = settle(pool.run('behave', { op: 'count', sab, slot: 0, spinMs: 400, value: 'Y' }));
    const more = [1, 2].map((value) => settle(pool.run('behave', { op: 'echo', value })));
    expect((await y).ok).toBe(true);
    await Promise.all(more);
    expect(firstSettled).toBe(true);
    // Y ran once: not taken back for the timed-out X and run again elsewhere.
    expect(new Int32Array(sab)[0]).toBe(1);
    const xOutcome = await x;
    expect(xOutcome.ok ? 'ok' : xOutcome.code).toMatch(/^(ok|E_TIMEOUT)$/);
  });
});
