// The matrix's cancels: a run's signal, its deadline, close() with a time limit, close({ force })
// and a graceful close(), each striking while a chosen subtask runs (or waits ahead), in every
// place of the task matrix. After the outcome resolves, no subtask of the run starts again.
import { expect } from 'vitest';
import type { ErrorCode, Outcome, Troupe, TroupeOptions } from '../../dist/src/index.js';
import { manualClock, until } from '../helpers.js';
import {
  BATCH,
  type Check,
  cellOf,
  checkAfter,
  gate,
  plan,
  refusal,
  Starts,
  type Sub,
  subtasks,
  type TaskPlace,
} from './matrix.js';

export interface Cancel {
  name: string;
  /** The run's outcome, and its error code (undefined: the run is done). */
  status: Outcome['status'];
  code: ErrorCode | undefined;
  closes: boolean;
}

export const CANCELS: Cancel[] = [
  { name: 'abort (its signal)', status: 'cancelled', code: 'E_CANCELLED', closes: false },
  { name: 'its deadline', status: 'cancelled', code: 'E_TIMEOUT', closes: false },
  { name: 'close() running out of time', status: 'cancelled', code: 'E_CLOSED', closes: true },
  { name: 'close({ force })', status: 'cancelled', code: 'E_CLOSED', closes: true },
  { name: 'close() waiting for it', status: 'done', code: undefined, closes: true },
];

// On a manual clock (the troupe's `clock`): the deadline passes when the cell says so.
const DEADLINE_MS = 60_000;

export async function cancelCell(
  open: (options: TroupeOptions) => Troupe,
  threads: number,
  cancel: Cancel,
  place: TaskPlace,
): Promise<void> {
  // Deadline cells run on a manual clock, moved on in small steps meanwhile (for retry
  // backoffs) and past the deadline to strike.
  const clock = cancel.code === 'E_TIMEOUT' ? manualClock() : undefined;
  const pump = clock === undefined ? undefined : setInterval(() => clock.advance(1), 2);
  pump?.unref();
  const { t, starts, take, inBatch } = await cellOf(
    open,
    threads,
    place,
    clock === undefined ? {} : { clock },
  );
  const check: Check = {
    troupe: t,
    starts,
    outcomes: [],
    mayRerun: false,
    closed: cancel.closes,
  };

  // The target holds at its gate on attempt `at` until the cancel (or, for a graceful close,
  // until the close has begun).
  const g = gate();
  let attempts = 2;
  let plainAt: number[] = [];
  let at = 1;
  if (place === 'retry') [attempts, plainAt, at] = [3, [1], 2];
  if (place === 'last attempt') [attempts, plainAt, at] = [2, [1], 2];
  const target = (): Partial<Sub> => ({
    attempts,
    input: { gate: g.sab, gateAt: [at], plainAt },
  });
  const controller = new AbortController();
  const runOptions =
    cancel.code === 'E_CANCELLED'
      ? { signal: controller.signal }
      : cancel.code === 'E_TIMEOUT'
        ? { deadlineMs: DEADLINE_MS }
        : {};
  let closing: Promise<void> | undefined;
  const strike = () => {
    if (cancel.code === 'E_CANCELLED') controller.abort();
    else if (cancel.name === 'close({ force })') closing = t.close({ force: true });
    else if (cancel.code === 'E_CLOSED') closing = t.close({ timeoutMs: 30 });
    else if (cancel.code === undefined) {
      closing = t.close();
      g.open();
    } else if (clock !== undefined) {
      clearInterval(pump);
      clock.advance(DEADLINE_MS);
    }
  };

  let count: number;
  let index = 0;
  let slot0: number;
  let ahead = false;
  let other: Promise<Outcome> | undefined;
  let otherSlot0 = 0;
  let otherCount = 10;
  if (inBatch) {
    index = place === 'batch, first item' ? 0 : place === 'batch, middle item' ? 1 : 2;
    count = BATCH * threads;
  } else if (place === 'taken ahead') {
    count = 1;
    ahead = true;
  } else if (place === 'queue full') {
    count = 3;
  } else {
    count = 1 + threads;
  }
  slot0 = take(count);
  const targetSlot = slot0 + index;
  const entry = (i: number): Partial<Sub> => {
    if (i === index) return ahead ? { ...target(), input: { plainAt } } : target();
    // With the queue full, the others wait for the target: all three stay outstanding.
    if (place === 'queue full') return { after: ['c0'] };
    return {};
  };
  if (place === 'during another run') {
    otherSlot0 = take(otherCount);
    other = t.run(
      plan(subtasks(starts, otherCount, otherSlot0, 'o', () => ({ input: { spinMs: 3 } }))),
      null,
    );
  }
  if (ahead) {
    // Another run holds every thread at the gate; the target, in a run started then, waits
    // ahead, behind one of them.
    otherCount = threads;
    otherSlot0 = take(otherCount);
    other = t.run(
      plan(subtasks(starts, otherCount, otherSlot0, 'h', () => ({ input: { gate: g.sab } }))),
      null,
    );
    await g.opened(threads);
  }
  const running = t.run(plan(subtasks(starts, count, slot0, 'c', entry)), null, runOptions);
  if (ahead) {
    await until(() => t.stats().subtasks.running === threads + 1);
    expect(starts.of(targetSlot), 'the target waits, taken ahead').toBe(0);
  } else {
    await Promise.all([starts.started(targetSlot, at), g.opened()]);
  }
  if (place === 'queue full') {
    expect(await refusal(t, 1), 'a run while the queue is full').toBe('E_QUEUE_FULL');
  }
  strike();
  const outcome = await running;
  if (closing !== undefined) await closing;
  // Gates of other subtasks are released by their signal; open them all for what is left.
  g.open();
  check.outcomes.push({ outcome, slot0, subtasks: count });
  if (other !== undefined) {
    const a = await other;
    // A close ends the other run too (done if it finished in time; the one held at the gate
    // cannot); a run's own cancel does not.
    if (cancel.closes && cancel.code !== undefined)
      expect(ahead ? ['cancelled'] : ['done', 'cancelled']).toContain(a.status);
    else expect(a.status, 'the other run').toBe('done');
    check.outcomes.push({ outcome: a, slot0: otherSlot0, subtasks: otherCount });
  }

  expect(outcome.status).toBe(cancel.status);
  if (outcome.status !== 'done') expect(outcome.error.code).toBe(cancel.code);
  const record = outcome.records[index];
  expect(record?.id).toBe(`c${index}`);
  if (cancel.code !== undefined) {
    expect(record?.status).toBe('cancelled');
    // Taken ahead and cancelled before its thread got to it: it never started. (A close cancels
    // the holding run too, an instant before or after this one: its thread, freed, may begin
    // the target just before its own cancel lands — with its signal aborted, checkAfter says.)
    if (ahead && !cancel.closes)
      expect(starts.of(targetSlot), 'starts of the target taken ahead').toBe(0);
    else if (ahead) expect(starts.of(targetSlot)).toBeLessThanOrEqual(1);
    else expect(starts.of(targetSlot)).toBe(at);
    // It was item `index` of a batch (as its thread saw it), and the items behind it there never
    // start: they are skipped.
    if (inBatch) {
      const where = starts.first(targetSlot);
      expect({ index: where.index, size: where.size }, 'its place in its batch').toEqual({
        index,
        size: BATCH,
      });
    }
    if (inBatch)
      for (let k = index + 1; k < BATCH; k++)
        expect(starts.of(slot0 + k), `starts of batch item ${k} behind the cancelled one`).toBe(0);
  } else {
    expect(record?.status).toBe('done');
  }
  if (place === 'queue full' && !cancel.closes) {
    // The bound is free again once the run ended.
    const again = await t.run(plan(subtasks(new Starts(3), 3, 0, 'r')), null);
    expect(again.status).toBe('done');
  }
  clearInterval(pump);
  await checkAfter(check);
}
