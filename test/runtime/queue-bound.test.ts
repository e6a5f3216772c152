// maxQueuedSubtasks is a hard bound on the subtasks admitted and not yet ended: a run that would
// pass it is refused — before analysis when the bound is full already (run() rejects), or once
// its subtasks are known (its outcome fails at 'analyzing') — so that at no moment do more wait.
import { afterEach, describe, expect, it } from 'vitest';
import { defineExpert } from '../../dist/src/index.js';
import { blocker, fixture } from '../helpers.js';
import { closeTroupes, openTroupe } from './helpers.js';

afterEach(closeTroupes);

const team = (maxQueuedSubtasks: number) =>
  openTroupe({
    threads: 2,
    maxQueuedSubtasks,
    experts: [
      defineExpert({ name: 'w', skills: { s: 1 }, module: fixture('behave'), concurrency: 4 }),
    ],
  });

const plan = (size: number, input: () => unknown) => ({
  analyze: () =>
    Array.from({ length: size }, (_, i) => ({ id: `x${i}`, needs: 's', input: input() })),
});

describe('maxQueuedSubtasks', () => {
  it('a run with more subtasks than the bound fails at analyzing; none of them runs', async () => {
    const t = team(5);
    const outcome = await t.run(
      plan(30, () => ({ op: 'echo', value: 1 })),
      null,
    );
    expect(outcome).toMatchObject({
      status: 'failed',
      stage: 'analyzing',
      records: [],
      error: {
        code: 'E_QUEUE_FULL',
        details: { maxQueuedSubtasks: 5, waiting: 0, asked: 30 },
      },
    });
    if (outcome.status === 'failed')
      expect(outcome.error.message).toBe(
        "the run has 30 subtasks, more than the troupe's limit itself (maxQueuedSubtasks 5)",
      );
    expect(t.stats().subtasks).toEqual({ queued: 0, running: 0, outstanding: 0 });
    expect(t.stats().runs).toMatchObject({ active: 0, failed: 1 });
  });

  it('runs started in one tick: those that fit are admitted, the others fail at analyzing, and a run() while it is full rejects at once', async () => {
    const t = team(64);
    const gate = blocker();
    // 20 runs of 32, every subtask held until the gate opens: only two runs fit under 64.
    const outcomes = Array.from({ length: 20 }, () =>
      t.run(
        plan(32, () => gate.input()),
        null,
      ),
    );
    await gate.started(2);
    expect(t.stats().subtasks.outstanding).toBe(64);
    await expect(
      t.run(
        plan(1, () => ({ op: 'echo' })),
        null,
      ),
    ).rejects.toMatchObject({
      code: 'E_QUEUE_FULL',
      details: { maxQueuedSubtasks: 64, waiting: 64 },
    });
    gate.release();
    const settled = await Promise.all(outcomes);
    const done = settled.filter((o) => o.status === 'done');
    const refused = settled.filter((o) => o.status === 'failed');
    expect(done).toHaveLength(2);
    expect(refused).toHaveLength(18);
    for (const o of refused) {
      expect(o).toMatchObject({
        stage: 'analyzing',
        error: { code: 'E_QUEUE_FULL', details: { maxQueuedSubtasks: 64, waiting: 64, asked: 32 } },
      });
    }
    // Room again: the next run is admitted.
    expect(
      (
        await t.run(
          plan(32, () => ({ op: 'echo', value: 2 })),
          null,
        )
      ).status,
    ).toBe('done');
  });

  it('a subtask that fails and waits for its retry still counts: a new run cannot take its place', async () => {
    const t = openTroupe({
      threads: 1,
      maxQueuedSubtasks: 2,
      retryBackoffMs: 60_000,
      maxRetryBackoffMs: 60_000,
      experts: [defineExpert({ name: 'w', skills: { s: 1 }, module: fixture('behave') })],
    });
    const retrying = t.run(
      {
        analyze: () => [
          { id: 'flaky', needs: 's', input: { op: 'failUntil', okAt: 2 } },
          { id: 'ok', needs: 's', input: { op: 'echo', value: 1 } },
        ],
      },
      null,
      { onEvent: () => {} },
    );
    while (t.stats().subtasks.outstanding !== 1)
      await new Promise((resolve) => setTimeout(resolve, 2));
    // 'ok' is done, 'flaky' waits a minute for its second attempt: one is outstanding.
    const second = await t.run(
      plan(2, () => ({ op: 'echo', value: 3 })),
      null,
    );
    expect(second).toMatchObject({
      status: 'failed',
      error: { code: 'E_QUEUE_FULL', details: { waiting: 1, asked: 2 } },
    });
    const fits = await t.run(
      plan(1, () => ({ op: 'echo', value: 4 })),
      null,
    );
    expect(fits.status).toBe('done');
    await t.close({ timeoutMs: 0 });
    expect((await retrying).status).toBe('cancelled');
  });
});
