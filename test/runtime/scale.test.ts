// A run of 100 000 no-op subtasks completes (and stays linear: the ledger and the scheduler are
// O(1) per event). Timing is the benchmarks' job; this proves it finishes and counts right.
import { afterAll, describe, expect, it } from 'vitest';
import { defineExpert } from '../../dist/src/index.js';
import { closeTroupes, openTroupe } from './helpers.js';

afterAll(closeTroupes);

describe('scale', () => {
  it('100 000 no-op subtasks, with a fan-in at the end', async () => {
    const t = openTroupe({
      threads: 2,
      experts: [
        defineExpert({
          name: 'noop',
          skills: { nothing: 1 },
          module: new URL('../../dist/bench/workloads/noop.js', import.meta.url),
          concurrency: 256,
        }),
      ],
    });
    const n = 100_000;
    const outcome = await t.run(
      {
        analyze: () => [
          ...Array.from({ length: n }, (_, i) => ({ id: `n${i}`, needs: 'nothing', input: i })),
          { id: 'last', needs: 'nothing', input: 'end', after: ['n0', `n${n - 1}`] },
        ],
        integrate: (contributions) => contributions.length,
      },
      null,
    );
    expect(outcome).toMatchObject({ status: 'done', result: n + 1 });
    expect(outcome.records.every((r) => r.status === 'done' && r.attempts === 1)).toBe(true);
  }, 120_000);
});
