// Cancelling a run whose expert is warm: the pool has measured it, batches its subtasks and the
// expert takes a batch per thread ahead. Once the run is cancelled — by its signal, its
// deadline, or close() running out — no thread starts one of its subtasks unaborted (counted on
// the threads), and the next run's subtask is not kept waiting behind them.
import { afterEach, describe, expect, it } from 'vitest';
import { defineExpert, type Troupe } from '../../dist/src/index.js';
import { fixture, watchStarts } from '../helpers.js';
import { closeTroupes, openTroupe } from './helpers.js';

afterEach(closeTroupes);

const SUBTASKS = 8;

/** A troupe whose one expert has run 30 echo subtasks: measured as fast, so batched. */
async function warmTroupe(): Promise<Troupe> {
  const t = openTroupe({
    threads: 2,
    cancelGraceMs: 50,
    experts: [
      defineExpert({ name: 'w', skills: { s: 1 }, module: fixture('behave'), concurrency: 2 }),
    ],
  });
  const warm = await t.run(
    {
      analyze: () =>
        Array.from({ length: 30 }, (_, i) => ({
          id: `warm${i}`,
          needs: 's',
          input: { op: 'echo', value: i },
        })),
    },
    null,
  );
  expect(warm.status).toBe('done');
  return t;
}

const plan = (count: ReturnType<typeof watchStarts>, polls: boolean) => ({
  analyze: () =>
    Array.from({ length: SUBTASKS }, (_, i) => ({
      id: `s${i}`,
      needs: 's',
      input: count.input(i, { ms: 150, polls }),
    })),
});

type Way = 'signal' | 'deadline' | 'close';

async function cancelWarm(way: Way, polls: boolean) {
  const t = await warmTroupe();
  // One more slot for the subtask of the run that follows.
  const count = watchStarts(SUBTASKS + 1);
  const controller = new AbortController();
  const options =
    way === 'signal'
      ? { signal: controller.signal }
      : way === 'deadline'
        ? { deadlineMs: 100 }
        : {};
  const outcome = t.run(plan(count, polls), null, options);
  await count.started(0);
  if (way === 'signal') controller.abort();
  const closed = way === 'close' ? t.close({ timeoutMs: 20 }) : undefined;
  const result = await outcome;
  for (let slot = 0; slot < SUBTASKS; slot++) count.settled(slot);
  expect(result.status).toBe('cancelled');
  expect(result.records.every((record) => record.status === 'cancelled')).toBe(true);
  const startedBySettlement = count.total();
  if (closed === undefined) {
    // The next run's subtask is not kept waiting behind them: by the time it is done, not one
    // more subtask of the cancelled run has started.
    const next = await t.run(
      { analyze: () => [{ id: 'next', needs: 's', input: count.input(SUBTASKS) }] },
      null,
    );
    expect(next.status).toBe('done');
    expect(count.total() - count.of(SUBTASKS)).toBe(startedBySettlement);
    await t.close();
  } else {
    await closed;
  }
  // Every thread has stopped: whatever started after the settlement did so aborted.
  expect(count.violations()).toBe(0);
  expect(t.stats().subtasks).toEqual({ queued: 0, running: 0, outstanding: 0 });
}

describe('cancelling a run of a warm expert', () => {
  for (const way of ['signal', 'deadline', 'close'] as const) {
    for (const polls of [true, false]) {
      it(`by ${way}, handlers that ${polls ? 'poll ctx.throwIfAborted()' : 'ignore the signal'}: no subtask starts after the outcome`, async () => {
        await cancelWarm(way, polls);
      });
    }
  }
});
