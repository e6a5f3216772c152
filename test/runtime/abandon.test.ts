// A run the runtime abandons (src/core.ts, abandon): paths no public input reaches — an expert
// whose link is closed, results that cannot be routed — reached here through the runtime itself
// (openTroupe). The run fails E_INTERNAL with one record per subtask, its actor goes (it is not
// left to integrate or validate what was abandoned), it is counted once even when a listener
// cancels it while it ends, and the next run goes through.
import { afterEach, describe, expect, it } from 'vitest';
import { defineExpert, type Outcome, type Troupe } from '../../dist/src/index.js';
import { openTroupe } from '../../dist/src/troupe.js';
import { fixture } from '../helpers.js';

const open: Troupe[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close({ force: true })));
});

function team() {
  const finals: string[] = [];
  const { troupe, core } = openTroupe({
    threads: 1,
    experts: [
      defineExpert({ name: 'x', skills: { s: 1 }, module: fixture('behave') }),
      defineExpert({ name: 'y', skills: { t: 1 }, module: fixture('behave') }),
    ],
    // A run's actor reaching a final state: it was not left behind.
    inspect: (event: unknown) => {
      const e = event as {
        type: string;
        actorRef?: { id?: string };
        snapshot?: { status?: string; value?: unknown };
      };
      if (
        e.type === '@xstate.snapshot' &&
        e.actorRef?.id?.startsWith('run-') === true &&
        (e.snapshot?.status === 'done' || e.snapshot?.status === 'error')
      )
        finals.push(
          `${e.actorRef.id}:${e.snapshot.status === 'error' ? 'error' : String(e.snapshot.value)}`,
        );
    },
  });
  open.push(troupe);
  return { troupe, core, finals };
}

const plan = (needs: string, integrated: string[]) => ({
  analyze: () => [
    { id: 'a', needs, input: { op: 'echo', value: 1 } },
    { id: 'b', needs, input: { op: 'echo', value: 2 }, after: ['a'] },
  ],
  integrate: () => {
    integrated.push('integrate');
    return 'integrated';
  },
});

const failed = (outcome: Outcome) => {
  expect(outcome.status).toBe('failed');
  return outcome as Extract<Outcome, { status: 'failed' }>;
};

describe('a run the runtime abandons', () => {
  it('an expert whose link is closed: the run fails E_INTERNAL, its actor ends, the next run goes through', async () => {
    const { troupe, core, finals } = team();
    await troupe.probed();
    // Close y's link (the machine's own stays lost: y takes no work after this).
    core.expert('y').link.open(() => {})();
    const integrated: string[] = [];
    const outcome = failed(await troupe.run(plan('t', integrated), null));
    expect(outcome.error.code).toBe('E_INTERNAL');
    expect(outcome.error.message).toMatch(/expert "y" has no link to take work/);
    expect(outcome.records.map((r) => r.status)).toEqual(['cancelled', 'cancelled']);
    expect(integrated).toEqual([]);
    await until(() => finals.includes('run-1:failed'));
    const next = await troupe.run(plan('s', integrated), null);
    expect(next.status).toBe('done');
    expect(troupe.stats().runs).toMatchObject({ active: 0, done: 1, failed: 1, cancelled: 0 });
    expect(troupe.stats().subtasks).toMatchObject({ running: 0, outstanding: 0 });
  });

  it('a run actor that throws: the run fails E_INTERNAL, its actor goes, the next run goes through', async () => {
    const { troupe, core } = team();
    await troupe.probed();
    // A bug in the run's own step: checking the runs throws as the run hands out its roots.
    const check = core.dispatcher.checkServable.bind(core.dispatcher);
    let calls = 0;
    core.dispatcher.checkServable = () => {
      if (++calls === 1) throw new Error('boom');
      check();
    };
    const integrated: string[] = [];
    const outcome = failed(await troupe.run(plan('s', integrated), null));
    expect(outcome.error.code).toBe('E_INTERNAL');
    expect(outcome.error.message).toMatch(/actor "run-1" failed: boom/);
    expect(outcome.records.map((r) => r.status)).toEqual(['cancelled', 'cancelled']);
    expect(integrated).toEqual([]);
    // (An actor that throws is stopped by XState itself.)
    expect(troupe.stats().runs).toMatchObject({ active: 0, done: 0, failed: 1, cancelled: 0 });
    const next = await troupe.run(plan('s', integrated), null);
    expect(next.status).toBe('done');
    expect(integrated).toEqual(['integrate']);
    expect(troupe.stats().runs).toMatchObject({ active: 0, done: 1, failed: 1, cancelled: 0 });
    expect(troupe.stats().subtasks).toMatchObject({ running: 0, outstanding: 0 });
  });

  it('results that cannot be routed: the run fails E_INTERNAL, counted once though a listener cancels it as it ends', async () => {
    const { troupe, core, finals } = team();
    await troupe.probed();
    // A bug on the data path after the results were written: checking the runs throws, once —
    // its second call (the first is the run's own, as it hands out its roots).
    const check = core.dispatcher.checkServable.bind(core.dispatcher);
    let calls = 0;
    core.dispatcher.checkServable = () => {
      if (++calls === 2) throw new Error('boom');
      check();
    };
    const integrated: string[] = [];
    const controller = new AbortController();
    const outcome = failed(
      await troupe.run(plan('s', integrated), null, {
        signal: controller.signal,
        // Cancelling while the runtime ends the run (its subtask.end events come from inside).
        onEvent: (event: { type: string; status?: string }) => {
          if (event.type === 'subtask.end' && event.status === 'cancelled') controller.abort();
        },
      }),
    );
    expect(outcome.error.code).toBe('E_INTERNAL');
    expect(outcome.error.message).toMatch(/results could not be routed: boom/);
    // `a` came back done before the bug; `b`, never handed out, ends cancelled.
    expect(outcome.records.map((r) => r.status)).toEqual(['done', 'cancelled']);
    expect(integrated).toEqual([]);
    // Its actor ends too (cancelled, here: the listener's cancel reached it as the run ended).
    await until(() => finals.some((f) => f.startsWith('run-1:')));
    expect(troupe.stats().runs).toMatchObject({ active: 0, done: 0, failed: 1, cancelled: 0 });
    const next = await troupe.run(plan('s', integrated), null);
    expect(next.status).toBe('done');
    expect(integrated).toEqual(['integrate']);
    expect(troupe.stats().runs).toMatchObject({ active: 0, done: 1, failed: 1, cancelled: 0 });
    expect(troupe.stats().subtasks).toMatchObject({ running: 0, outstanding: 0 });
  });
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setImmediate(r));
  expect(condition()).toBe(true);
}
