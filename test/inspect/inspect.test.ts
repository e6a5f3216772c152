// createTroupe({ inspect }) as the Stately inspector's docs show it: the inspector itself, its
// `.inspect` observer, or a function. What reaches the inspector's adapter is what its relay
// would send: every message must be JSON, no message may pass the limit, and the pool's work
// appears as task pseudo-actors, one per attempt, each started and ended.
import { createInspector } from '@statelyai/inspect';
import { afterEach, describe, expect, it } from 'vitest';
import { createTroupe, defineExpert, type Troupe } from '../../dist/src/index.js';
import { MAX_SUMMARY_CHARS } from '../../dist/src/inspect/inspect.js';
import { fixture } from '../helpers.js';

const open: Troupe[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close({ force: true })));
});

const experts = () => [
  defineExpert({ name: 'worker', skills: { work: 1 }, module: fixture('behave'), concurrency: 2 }),
  defineExpert({ name: 'senior', skills: { work: 3 }, module: fixture('behave') }),
];

/** An inspector whose adapter keeps every message as the WebSocket adapter would send it. */
function capturing() {
  const sent: string[] = [];
  const inspector = createInspector({ send: (event) => sent.push(JSON.stringify(event)) });
  return { inspector, sent };
}

/** The Stately inspector converts XState's events after a timer: wait for it to drain. */
const drained = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('inspect', () => {
  it('takes the inspector itself, its .inspect observer, or a function', async () => {
    for (const form of ['inspector', 'observer', 'function'] as const) {
      const { inspector, sent } = capturing();
      const inspect =
        form === 'inspector'
          ? inspector
          : form === 'observer'
            ? inspector.inspect
            : (event: unknown) => inspector.inspect.next?.(event as never);
      const t = createTroupe({ threads: 1, experts: experts(), inspect });
      open.push(t);
      const outcome = await t.run(
        { analyze: () => [{ id: 'a', needs: 'work', input: { op: 'echo', value: 1 } }] },
        null,
      );
      expect(outcome.status).toBe('done');
      await drained();
      const names = new Set(
        sent
          .map((m) => JSON.parse(m))
          .filter((m) => m.type === '@xstate.actor')
          .map((m) => m.name),
      );
      expect(names, form).toContain('coordinator');
      expect(names, form).toContain('worker');
      expect(names, form).toContain('senior');
      expect(names, form).toContain('run-1');
      expect(names, form).toContain('a#1');
    }
  });

  it('refuses what it cannot call, saying what it takes', () => {
    for (const bad of ['yes', 42, {}, { next: 'no' }, { inspect: {} }, null]) {
      expect(() => createTroupe({ experts: experts(), inspect: bad as never })).toThrow(
        /options\.inspect: expected a function \(inspection event\) => void, an observer \{ next \}, or an inspector with \.inspect/,
      );
    }
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('trap');
        },
      },
    );
    expect(() => createTroupe({ experts: experts(), inspect: hostile as never })).toThrow(
      /options\.inspect: .* whose fields cannot be read/,
    );
  });

  it('a run of 10 000 subtasks: every message is JSON under the limit, each attempt a task that starts and ends', async () => {
    const { inspector, sent } = capturing();
    const t = createTroupe({ threads: 2, experts: experts(), inspect: inspector });
    open.push(t);
    const n = 10_000;
    const outcome = await t.run(
      {
        analyze: () =>
          Array.from({ length: n }, (_, i) => ({
            id: `s${i}`,
            needs: 'work',
            input: { op: 'echo', value: 'x'.repeat(100) },
          })),
      },
      null,
    );
    expect(outcome.status).toBe('done');
    await drained();
    let largest = 0;
    const tasks = new Map<string, string[]>();
    for (const message of sent) {
      largest = Math.max(largest, message.length);
      const m = JSON.parse(message);
      if (typeof m.sessionId === 'string' && m.sessionId.startsWith('task:')) {
        const seen = tasks.get(m.sessionId) ?? [];
        seen.push(m.type === '@xstate.actor' ? 'actor' : m.snapshot.value);
        tasks.set(m.sessionId, seen);
        // An attempt's end says the thread it ran on.
        if (m.type === '@xstate.snapshot') expect(m.snapshot.context.thread).toBeGreaterThan(0);
      }
    }
    // The largest message is a run's definition or snapshot: far under a megabyte.
    expect(largest).toBeLessThan(MAX_SUMMARY_CHARS * 4);
    expect(tasks.size).toBe(n);
    for (const seen of tasks.values()) expect(seen).toEqual(['actor', 'done']);
    // The run's own snapshots carry its counts, not its ledger.
    const runs = sent
      .map((m) => JSON.parse(m))
      .filter((m) => m.type === '@xstate.snapshot' && m.snapshot?.context?.runId === 'run-1');
    expect(runs.length).toBeGreaterThan(0);
    expect(runs.at(-1).snapshot.context).toMatchObject({ subtasks: n, done: n, failed: 0 });
  });
});
