// Cancellation, deadlines and close(): pending subtasks cancelled, running ones aborted, every
// record written, every run settled.
import { afterEach, describe, expect, it } from 'vitest';
import { defineExpert, type RunEvent } from '../../dist/src/index.js';
import { blocker, fixture, manualClock, until } from '../helpers.js';
import { closeTroupes, openTroupe } from './helpers.js';

afterEach(closeTroupes);

const team = (extra = {}) =>
  openTroupe({
    threads: 2,
    experts: [
      defineExpert({ name: 'w', skills: { s: 1 }, module: fixture('behave'), concurrency: 2 }),
    ],
    ...extra,
  });

const blockedPlan = (gate: ReturnType<typeof blocker>) => ({
  analyze: () => [
    { id: 'running', needs: 's', input: gate.input() },
    { id: 'queued', needs: 's', input: { op: 'echo', value: 1 }, after: ['running'] },
    { id: 'also', needs: 's', input: { op: 'echo', value: 2 }, after: ['queued'] },
  ],
});

describe('cancellation', () => {
  it('a signal aborted mid-run: cancelled, running subtask aborted, every record written', async () => {
    const t = team();
    const gate = blocker();
    const controller = new AbortController();
    const outcome = t.run(blockedPlan(gate), null, { signal: controller.signal });
    await gate.started();
    controller.abort(new Error('user pressed stop'));
    const result = await outcome;
    expect(result.status).toBe('cancelled');
    if (result.status === 'done') return;
    expect(result.error.code).toBe('E_CANCELLED');
    expect((result.error.cause as Error).message).toBe('user pressed stop');
    expect(result.records.map((r) => [r.id, r.status])).toEqual([
      ['running', 'cancelled'],
      ['queued', 'cancelled'],
      ['also', 'cancelled'],
    ]);
    // The blocked thread was terminated (the block never ends by itself): the pool recovers.
    await until(() => t.stats().subtasks.running === 0);
    const next = await t.run(
      { analyze: () => [{ id: 'n', needs: 's', input: { op: 'echo', value: 3 } }] },
      null,
    );
    expect(next.status).toBe('done');
  });

  it('a cancel from onEvent at the integrating stage: a plan with integrate is cancelled there; one without is done in that same step', async () => {
    const t = team();
    const echo = () => [{ id: 'e', needs: 's', input: { op: 'echo', value: 5 } }];
    const abortAt = (controller: AbortController) => (event: { type: string; stage?: string }) => {
      if (event.type === 'stage' && event.stage === 'integrating') controller.abort();
    };
    const slow = new AbortController();
    const withIntegrate = await t.run(
      { analyze: echo, integrate: (contributions) => contributions.length },
      null,
      { signal: slow.signal, onEvent: abortAt(slow) },
    );
    expect(withIntegrate).toMatchObject({ status: 'cancelled', stage: 'integrating' });
    const fast = new AbortController();
    const without = await t.run({ analyze: echo }, null, {
      signal: fast.signal,
      onEvent: abortAt(fast),
    });
    expect(without).toMatchObject({ status: 'done', result: { e: 5 } });
  });

  it('every subtask.start gets its subtask.end, for a subtask cancelled while it ran or waited for a retry', async () => {
    const clock = manualClock();
    const t = team({ clock, retryBackoffMs: 1000 });
    const gate = blocker();
    const events: RunEvent[] = [];
    const controller = new AbortController();
    const outcome = t.run(
      {
        analyze: () => [
          { id: 'running', needs: 's', input: gate.input() },
          { id: 'retrying', needs: 's', attempts: 3, input: { op: 'failUntil', okAt: 3 } },
        ],
      },
      null,
      { signal: controller.signal, onEvent: (e) => events.push(e) },
    );
    await gate.started();
    await until(() => events.some((e) => e.type === 'subtask.retry'));
    controller.abort();
    gate.release();
    expect((await outcome).status).toBe('cancelled');
    const ends = events.filter((e) => e.type === 'subtask.end');
    const started = new Set(events.filter((e) => e.type === 'subtask.start').map((e) => e.id));
    expect(new Set(ends.map((e) => (e as { id: string }).id))).toEqual(started);
    for (const end of ends)
      expect(end).toMatchObject({ status: 'cancelled', error: { code: 'E_CANCELLED' } });
  });

  it('a signal already aborted rejects at once (nothing admitted)', async () => {
    const t = team();
    const controller = new AbortController();
    controller.abort();
    await expect(
      t.run({ analyze: () => [] }, null, { signal: controller.signal }),
    ).rejects.toMatchObject({ code: 'E_CANCELLED' });
  });

  it('deadlineMs passes mid-run: cancelled with E_TIMEOUT', async () => {
    const clock = manualClock();
    const t = team({ clock });
    const gate = blocker();
    const outcome = t.run(blockedPlan(gate), null, { deadlineMs: 5000 });
    await gate.started();
    clock.advance(5000);
    const result = await outcome;
    expect(result.status).toBe('cancelled');
    if (result.status !== 'done')
      expect(result.error).toMatchObject({ code: 'E_TIMEOUT', details: { deadlineMs: 5000 } });
    expect(result.records.every((r) => r.status === 'cancelled')).toBe(true);
  });

  it('close() waits for runs, then cancels what is left with E_CLOSED; run() after close rejects', async () => {
    const t = team();
    const gate = blocker();
    const quick = t.run(
      { analyze: () => [{ id: 'q', needs: 's', input: { op: 'echo', value: 1 } }] },
      null,
    );
    const stuck = t.run(blockedPlan(gate), null);
    await gate.started();
    await t.close({ timeoutMs: 50 });
    expect((await quick).status).toBe('done');
    const result = await stuck;
    expect(result.status).toBe('cancelled');
    if (result.status !== 'done') expect(result.error.code).toBe('E_CLOSED');
    await expect(t.run({ analyze: () => [] }, null)).rejects.toMatchObject({ code: 'E_CLOSED' });
  });

  it('close({ force: true }) while a gentle close waits cancels at once', async () => {
    const t = team();
    const gate = blocker();
    const stuck = t.run(blockedPlan(gate), null);
    await gate.started();
    const gentle = t.close({ timeoutMs: 60_000 });
    await t.close({ force: true });
    await gentle;
    const result = await stuck;
    expect(result.status).toBe('cancelled');
    if (result.status !== 'done')
      expect(result.error.message).toBe('the troupe was closed with force');
  });

  it('close({ force: true }) cancels at once', async () => {
    const t = team();
    const gate = blocker();
    const stuck = t.run(blockedPlan(gate), null);
    await gate.started();
    await t.close({ force: true });
    expect((await stuck).status).toBe('cancelled');
  });
});
