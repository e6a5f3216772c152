// Property: over random DAGs and random faults, every subtask settles exactly once, a subtask
// starts only after its dependencies ended, and the outcome agrees with the records.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineExpert, type Troupe } from '../../dist/src/index.js';
import { fixture } from '../helpers.js';
import { closeTroupes, openTroupe } from './helpers.js';

let t: Troupe;
beforeAll(() => {
  t = openTroupe({
    threads: 2,
    retryBackoffMs: 1,
    maxRetryBackoffMs: 2,
    experts: [
      defineExpert({ name: 'a', skills: { s: 3 }, module: fixture('behave'), concurrency: 3 }),
      defineExpert({
        name: 'b',
        skills: { s: 2, t: 2 },
        module: fixture('behave'),
        concurrency: 2,
      }),
    ],
  });
});
afterAll(closeTroupes);

type Fault = 'ok' | 'flaky' | 'fails' | 'crash';

const node = fc.record({
  fault: fc.oneof(
    { weight: 12, arbitrary: fc.constant<Fault>('ok') },
    { weight: 2, arbitrary: fc.constant<Fault>('flaky') },
    { weight: 1, arbitrary: fc.constant<Fault>('fails') },
    { weight: 1, arbitrary: fc.constant<Fault>('crash') },
  ),
  needs: fc.constantFrom('s', 't'),
  complexity: fc.constantFrom(1, 2),
  // Dependencies point only backwards, so the graph is acyclic; bits pick which.
  deps: fc.array(fc.nat(), { maxLength: 3 }),
});

const inputFor = (fault: Fault) =>
  fault === 'flaky'
    ? { op: 'failUntil', okAt: 2 }
    : fault === 'fails'
      ? { op: 'throw' }
      : fault === 'crash'
        ? { op: 'exit' }
        : { op: 'interval', ms: 1 };

describe('random graphs with random faults', () => {
  it('every subtask settles exactly once, in dependency order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(node, { minLength: 1, maxLength: 14 }), async (nodes) => {
        const subtasks = nodes.map((n, i) => ({
          id: `n${i}`,
          needs: n.needs,
          complexity: n.complexity as 1 | 2,
          input: inputFor(n.fault),
          attempts: n.fault === 'crash' ? 1 : 3,
          after: i === 0 ? [] : [...new Set(n.deps.map((d) => `n${d % i}`))],
        }));
        const ends = new Map<string, number>();
        const starts = new Map<string, number>();
        let endEvents = 0;
        const outcome = await t.run({ analyze: () => subtasks }, null, {
          onEvent: (e) => {
            if (e.type === 'subtask.start') starts.set(e.id, starts.get(e.id) ?? performance.now());
            if (e.type === 'subtask.end') {
              endEvents++;
              ends.set(e.id, performance.now());
            }
          },
        });
        // One terminal record per subtask, in order.
        expect(outcome.records.map((r) => r.id)).toEqual(subtasks.map((s) => s.id));
        for (const r of outcome.records)
          expect(['done', 'failed', 'cancelled']).toContain(r.status);
        // A subtask that ran started after all its dependencies ended.
        for (const s of subtasks) {
          const start = starts.get(s.id);
          if (start === undefined) continue;
          for (const d of s.after)
            expect(ends.get(d), `${s.id} after ${d}`).toBeLessThanOrEqual(start);
        }
        const done = outcome.records.filter((r) => r.status === 'done').length;
        const failed = outcome.records.filter((r) => r.status === 'failed').length;
        // One end per subtask that ended done or failed, or was cancelled after it had started.
        const cancelledStarted = outcome.records.filter(
          (r) => r.status === 'cancelled' && starts.has(r.id),
        ).length;
        expect(endEvents).toBe(done + failed + cancelledStarted);
        expect(ends.size).toBe(endEvents);
        if (outcome.status === 'done') {
          expect(done).toBe(subtasks.length);
          expect(outcome.contributions).toHaveLength(subtasks.length);
        } else {
          expect(outcome.status).toBe('failed');
          expect(failed).toBe(1); // fail fast: the first permanent failure cancels the rest
          const fatal = nodes.some((n) => n.fault === 'fails' || n.fault === 'crash');
          expect(fatal).toBe(true);
        }
        for (const s of subtasks) {
          const r = outcome.records.find((x) => x.id === s.id);
          if (r?.status === 'done' && s.input.op === 'failUntil') expect(r.attempts).toBe(2);
        }
      }),
      { numRuns: 40 },
    );
    expect(t.stats().subtasks).toEqual({ queued: 0, running: 0, outstanding: 0 });
  });
});
