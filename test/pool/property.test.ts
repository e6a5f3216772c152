// Property: whatever faults a stream of tasks holds, every task settles exactly once, with the
// outcome its own behaviour calls for, the counters add up, and no task starts on a thread
// after it settled unless its ctx.signal reads aborted (counted on the threads).
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAll, fixture, testPool } from '../helpers.js';

afterEach(closeAll);

type Fault = 'echo' | 'throw' | 'exit' | 'timeout' | 'uncloneable' | 'abortQueued' | 'abortLater';

const expected: Record<Fault, string[]> = {
  echo: ['ok'],
  throw: ['E_TASK_FAILED'],
  exit: ['E_WORKER_CRASHED'],
  timeout: ['E_TIMEOUT'],
  uncloneable: ['E_NOT_CLONEABLE'],
  abortQueued: ['E_CANCELLED', 'ok'],
  abortLater: ['E_CANCELLED', 'ok'],
};

function input(fault: Fault, index: number, sab: SharedArrayBuffer): unknown {
  switch (fault) {
    case 'abortQueued':
    case 'abortLater':
      // Counts its start, and a start after its settlement whose signal does not read aborted.
      return { op: 'watched', sab, slot: index, value: index, ms: index % 3 };
    case 'throw':
      return { op: 'throw', message: `t${index}` };
    case 'exit':
      return { op: 'exit' };
    case 'timeout':
      return { op: 'loop' };
    case 'uncloneable':
      return { op: 'uncloneable' };
    default:
      return { op: 'echo', value: index };
  }
}

async function runStream(faults: Fault[], batch: number | 'auto'): Promise<void> {
  const pool = testPool({ threads: 2, modules: { behave: { url: fixture('behave'), batch } } });
  let settlements = 0;
  const watch = new Int32Array(new SharedArrayBuffer(faults.length * 3 * 4));
  const whenSettled = new Map<number, (() => void)[]>();
  const settled = (index: number) => {
    Atomics.store(watch, 3 * index + 1, 1);
    for (const then of whenSettled.get(index) ?? []) then();
  };
  const outcomes = faults.map((fault, index) => {
    const controller = fault.startsWith('abort') ? new AbortController() : undefined;
    const promise = pool.run('behave', input(fault, index, watch.buffer as SharedArrayBuffer), {
      signal: controller?.signal,
      timeoutMs: fault === 'timeout' ? 30 : 0,
    });
    if (fault === 'abortQueued') controller?.abort();
    // Later: when a task a little ahead of it in the stream settles (it is then likely on a
    // thread, or in a batch behind the one running), or after a few ms for the first ones.
    if (fault === 'abortLater') {
      const ahead = index - 1 - (index % 5);
      if (ahead >= 0)
        whenSettled.set(ahead, [...(whenSettled.get(ahead) ?? []), () => controller?.abort()]);
      else setTimeout(() => controller?.abort(), index % 7);
    }
    return promise.then(
      (value) => {
        settlements++;
        settled(index);
        return { value, code: 'ok' };
      },
      (error: { code: string; message: string }) => {
        settlements++;
        settled(index);
        return { value: undefined, code: error.code, message: error.message };
      },
    );
  });
  const results = await Promise.all(outcomes);
  expect(settlements).toBe(faults.length);
  results.forEach((result, index) => {
    const fault = faults[index] as Fault;
    expect(expected[fault], `task ${index} (${fault}) settled ${result.code}`).toContain(
      result.code,
    );
    if (result.code === 'ok') expect(result.value).toBe(index);
  });
  const stats = pool.stats();
  expect(stats.completed + stats.failed + stats.cancelled).toBe(faults.length);
  expect(stats.queued + stats.running).toBe(0);
  // Every thread is done with every message (a skipped task is answered too).
  await pool.idle();
  const late = faults.filter((_, index) => Atomics.load(watch, 3 * index + 2) > 0).length;
  expect(late, 'tasks that started after they settled, their signal not aborted').toBe(0);
}

const fault = (crashWeight: number) =>
  fc.oneof(
    { weight: 1000, arbitrary: fc.constant<Fault>('echo') },
    { weight: 20, arbitrary: fc.constant<Fault>('throw') },
    { weight: crashWeight, arbitrary: fc.constant<Fault>('exit') },
    { weight: crashWeight, arbitrary: fc.constant<Fault>('timeout') },
    { weight: crashWeight, arbitrary: fc.constant<Fault>('uncloneable') },
    { weight: 10, arbitrary: fc.constant<Fault>('abortQueued') },
    { weight: 10, arbitrary: fc.constant<Fault>('abortLater') },
  );

describe('every task settles exactly once', () => {
  it('10 000 tasks with random faults', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fault(1), { minLength: 10_000, maxLength: 10_000 }), (faults) =>
        runStream(faults, 'auto'),
      ),
      { numRuns: 1 },
    );
  });

  it('many short streams, batched and not, with more crashes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fault(60), { minLength: 1, maxLength: 60 }),
        fc.constantFrom<number | 'auto'>(1, 4, 'auto'),
        (faults, batch) => runStream(faults, batch).finally(closeAll),
      ),
      { numRuns: 15 },
    );
  });
});
