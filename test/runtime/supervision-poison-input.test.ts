// One bad input must not take an expert away from everyone: a subtask whose input faults its
// thread again when retried, while the expert finishes other subtasks, fails on its own
// (details.isolated) and is not charged to the expert; a genuinely broken expert still is.
import { afterEach, describe, expect, it } from 'vitest';
import { defineExpert, type RunEvent } from '../../dist/src/index.js';
import { fixture, manualClock, until } from '../helpers.js';
import { closeTroupes, openTroupe } from './helpers.js';

afterEach(closeTroupes);

const poison = { analyze: () => [{ id: 'poison', needs: 's', input: { op: 'exit' } }] };
const clean = (n: number) => ({
  analyze: () =>
    Array.from({ length: n }, (_, i) => ({
      id: `c${i}`,
      needs: 's',
      input: { op: 'echo', value: i },
    })),
});

function team(clock: ReturnType<typeof manualClock>, intensity = 1) {
  return openTroupe({
    threads: 1,
    clock,
    random: () => 0,
    retryBackoffMs: 1000,
    supervision: { intensity, windowMs: 60_000 },
    experts: [defineExpert({ name: 'w', skills: { s: 1 }, module: fixture('behave') })],
  });
}

/** Starts `plan` and waits until its first retry is scheduled; returns its outcome to come. */
async function untilRetry(t: ReturnType<typeof team>, plan: typeof poison) {
  const events: RunEvent[] = [];
  const outcome = t.run(plan, null, { onEvent: (e) => events.push(e) });
  await until(() => events.some((e) => e.type === 'subtask.retry'));
  return { outcome };
}

describe('a poisonous input', () => {
  it('crashes again on retry while the expert finished others: it fails isolated, uncharged', async () => {
    const clock = manualClock();
    const t = team(clock);
    const { outcome } = await untilRetry(t, poison);
    // Meanwhile the expert works on something else.
    expect((await t.run(clean(3), null)).status).toBe('done');
    clock.advance(1000);
    const result = await outcome;
    expect(result.status).toBe('failed');
    if (result.status !== 'failed') return;
    expect(result.error).toMatchObject({
      code: 'E_WORKER_CRASHED',
      details: { isolated: true, subtask: 'poison' },
    });
    expect(result.error.message).toMatch(
      /isolated: subtask "poison" faulted its thread on two attempts/,
    );
    // Two attempts (the third would crash a thread again for nothing), no fault charged.
    expect(result.records[0]?.attempts).toBe(2);
    const [w] = t.experts();
    expect(w?.faults).toEqual([]);
    expect(w?.restarts).toBe(0);
    expect(w?.state).toBe('ready');
  });

  it('many of them, between clean runs: the expert never restarts (intensity 1)', async () => {
    const clock = manualClock();
    const t = team(clock);
    for (let round = 0; round < 4; round++) {
      const { outcome } = await untilRetry(t, poison);
      expect((await t.run(clean(2), null)).status).toBe('done');
      clock.advance(1000);
      expect(await outcome).toMatchObject({
        status: 'failed',
        error: { details: { isolated: true } },
      });
    }
    expect(t.experts()[0]).toMatchObject({ restarts: 0, faults: [], state: 'ready' });
  });
});

describe('a burst of poisonous inputs, with nothing finished between their crashes', () => {
  it('holds their faults until the expert finishes something: then none is charged', async () => {
    const clock = manualClock();
    const t = team(clock, 5);
    // Two poisonous subtasks crash, are retried and crash again before anything else finishes.
    const { outcome } = await untilRetry(t, {
      analyze: () => [
        { id: 'p1', needs: 's', input: { op: 'exit' } },
        { id: 'p2', needs: 's', input: { op: 'exit' } },
      ],
    });
    await until(() => t.stats().subtasks.queued + t.stats().subtasks.running === 0);
    clock.advance(1000);
    const result = await outcome;
    expect(result).toMatchObject({ status: 'failed', error: { details: { isolated: true } } });
    expect(t.experts()[0]?.faults).toEqual([]);
    // The expert works: what it held was its inputs'.
    expect((await t.run(clean(1), null)).status).toBe('done');
    clock.advance(60_000);
    expect(t.experts()[0]).toMatchObject({ faults: [], restarts: 0 });
  });
});

describe('an expert that is broken, not its input', () => {
  it('crashes on retry with nothing finished in between: the faults are held, and past the intensity charged: it restarts', async () => {
    const clock = manualClock();
    const t = team(clock);
    const { outcome } = await untilRetry(t, {
      analyze: () => [{ id: 'p', needs: 's', attempts: 2, input: { op: 'exit' } }],
    });
    clock.advance(1000);
    const result = await outcome;
    expect(result.status).toBe('failed');
    // Nothing said the expert works: its two faults are held, more than its intensity (1).
    if (result.status === 'failed') expect(result.error.details?.isolated).toBe(true);
    await until(() => t.experts()[0]?.restarts === 1);
    expect(t.experts()[0]?.faults.map((f) => f.code)).toEqual([
      'E_WORKER_CRASHED',
      'E_WORKER_CRASHED',
    ]);
  });

  it('asked rarely (one request every 6 s, a 10 s window): its held faults are charged as of now, and it restarts', async () => {
    const clock = manualClock();
    const t = openTroupe({
      threads: 1,
      clock,
      random: () => 0,
      retryBackoffMs: 1000,
      supervision: { intensity: 5, windowMs: 10_000 },
      experts: [defineExpert({ name: 'w', skills: { s: 1 }, module: fixture('behave') })],
    });
    // Each request faults twice (held: nothing says the expert works); the third passes the
    // intensity. Charged at their own times, the oldest would have left the window.
    for (let request = 0; request < 3; request++) {
      const { outcome } = await untilRetry(t, poison);
      clock.advance(1000);
      expect((await outcome).status).toBe('failed');
      if (request < 2) {
        expect(t.experts()[0]?.restarts).toBe(0);
        clock.advance(5000);
      }
    }
    await until(() => t.experts()[0]?.restarts === 1);
  });

  it('a fault no retry will follow is charged at once (attempts: 1)', async () => {
    const clock = manualClock();
    const t = team(clock, 5);
    const outcome = await t.run(
      { analyze: () => [{ id: 'once', needs: 's', attempts: 1, input: { op: 'exit' } }] },
      null,
    );
    expect(outcome.status).toBe('failed');
    expect(t.experts()[0]?.faults).toHaveLength(1);
  });

  it('a suspect that succeeds on retry had the expert at fault after all: charged then', async () => {
    const clock = manualClock();
    const t = team(clock, 5);
    const sab = new SharedArrayBuffer(4);
    // Exits on its first attempt only (the count lives in shared memory, across threads).
    const { outcome } = await untilRetry(t, {
      analyze: () => [{ id: 'flaky', needs: 's', input: { op: 'exitOnce', sab } }],
    });
    expect(t.experts()[0]?.faults).toHaveLength(0);
    clock.advance(1000);
    expect((await outcome).status).toBe('done');
    expect(t.experts()[0]?.faults.map((f) => f.code)).toEqual(['E_WORKER_CRASHED']);
  });
});

describe('judgeFault (the policy, pure)', async () => {
  const { judgeFault } = await import('../../dist/src/actors/supervision.js');
  const fault = { atMs: 0, code: 'E_WORKER_CRASHED', message: 'x' };
  const suspicion = { expert: 'w', fault, successes: 4 };
  it('charges what is not an input fault, or what no retry follows', () => {
    expect(
      judgeFault({
        code: 'E_MODULE_LOAD',
        suspicion: undefined,
        successesOfSuspect: 0,
        retried: true,
      }),
    ).toBe('charge');
    expect(
      judgeFault({
        code: 'E_WORKER_CRASHED',
        suspicion: undefined,
        successesOfSuspect: 0,
        retried: false,
      }),
    ).toBe('charge');
  });
  it('suspects a first input fault, isolates a second: uncharged once the expert worked since, else held', () => {
    for (const code of ['E_WORKER_CRASHED', 'E_WORKER_OOM', 'E_TIMEOUT'])
      expect(judgeFault({ code, suspicion: undefined, successesOfSuspect: 0, retried: true })).toBe(
        'suspect',
      );
    expect(judgeFault({ code: 'E_TIMEOUT', suspicion, successesOfSuspect: 5, retried: true })).toBe(
      'isolate',
    );
    expect(judgeFault({ code: 'E_TIMEOUT', suspicion, successesOfSuspect: 4, retried: true })).toBe(
      'hold',
    );
  });
});
