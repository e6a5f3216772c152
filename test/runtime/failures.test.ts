// Each failure kind reaches the run with its code and its retries.
import { afterEach, describe, expect, it } from 'vitest';
import { defineExpert, type RunEvent } from '../../dist/src/index.js';
import { fixture } from '../helpers.js';
import { closeTroupes, openTroupe } from './helpers.js';

afterEach(closeTroupes);

const team = (extra = {}) =>
  openTroupe({
    threads: 2,
    retryBackoffMs: 1,
    maxRetryBackoffMs: 5,
    resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 },
    experts: [
      defineExpert({
        name: 'w',
        skills: { work: 1 },
        module: fixture('behave'),
        concurrency: 2,
        timeoutMs: 300,
      }),
    ],
    ...extra,
  });

// Only the endless loop gets a timeout here: under load, filling a 48 MB heap can take longer
// than any timeout short enough for a test.
const one = (input: { op: string }) => ({
  analyze: () => [
    { id: 'only', needs: 'work', input, timeoutMs: input.op === 'loop' ? 300 : 0 },
    { id: 'other', needs: 'work', timeoutMs: 0, input: { op: 'sleep', ms: 5000 } },
  ],
});

describe('failures reach the run', () => {
  // A thrown error uses up the 3 attempts; a fault of the thread (a crash, a timeout, out of
  // memory) twice in a row isolates the input after 2 (docs/supervision.md).
  for (const [op, code, attempts] of [
    ['throw', 'E_TASK_FAILED', 3],
    ['exit', 'E_WORKER_CRASHED', 2],
    ['loop', 'E_TIMEOUT', 2],
    ['oom', 'E_WORKER_OOM', 2],
  ] as const) {
    it(`${op}: ${code} after ${attempts} attempts; the run fails, the rest is cancelled, every subtask has one record`, async () => {
      const t = team();
      const events: RunEvent[] = [];
      const outcome = await t.run(one({ op }), null, { onEvent: (e) => events.push(e) });
      expect(outcome.status).toBe('failed');
      if (outcome.status === 'done') return;
      expect(outcome.error.code).toBe(code);
      expect(outcome.stage).toBe('coordinating');
      const only = outcome.records.find((r) => r.id === 'only');
      expect(only).toMatchObject({ status: 'failed', attempts });
      expect(only?.errors.map((e) => e.code)).toEqual(Array(attempts).fill(code));
      expect(events.filter((e) => e.type === 'subtask.retry')).toHaveLength(attempts - 1);
      expect(outcome.error.details?.isolated).toBe(attempts === 2 ? true : undefined);
      const other = outcome.records.find((r) => r.id === 'other');
      expect(other?.status).toBe('cancelled');
      expect(other?.error?.code).toBe('E_CANCELLED');
      expect(outcome.records).toHaveLength(2);
    });
  }

  it('a failure that retrying cannot fix (an uncloneable output) fails at the first attempt', async () => {
    const t = team();
    const outcome = await t.run(
      { analyze: () => [{ id: 'u', needs: 'work', input: { op: 'uncloneable' } }] },
      null,
    );
    expect(outcome.status).toBe('failed');
    expect(outcome.records[0]).toMatchObject({ status: 'failed', attempts: 1 });
    expect(outcome.records[0]?.error?.code).toBe('E_NOT_CLONEABLE');
  });

  it('retry then success: the record keeps the failed attempt; the contribution says attempt 2', async () => {
    const t = team();
    const outcome = await t.run(
      { analyze: () => [{ id: 'flaky', needs: 'work', input: { op: 'failUntil', okAt: 2 } }] },
      null,
    );
    expect(outcome.status).toBe('done');
    expect(outcome.records[0]).toMatchObject({ status: 'done', attempts: 2 });
    expect(outcome.records[0]?.errors.map((e) => e.code)).toEqual(['E_TASK_FAILED']);
    expect(outcome.contributions[0]).toMatchObject({ attempt: 2, output: { attempt: 2 } });
    expect(outcome.metrics.retries).toBe(1);
  });

  it('attempts and timeouts: per subtask, else per expert, else per troupe', async () => {
    const t = team({
      attempts: 5,
      experts: [
        defineExpert({ name: 'w', skills: { work: 1 }, module: fixture('behave'), attempts: 1 }),
      ],
    });
    const outcome = await t.run(
      { analyze: () => [{ id: 'x', needs: 'work', input: { op: 'throw' } }] },
      null,
    );
    expect(outcome.records[0]?.attempts).toBe(1);
    const bySubtask = await t.run(
      {
        analyze: () => [
          { id: 'y', needs: 'work', attempts: 2, timeoutMs: 50, input: { op: 'loop' } },
        ],
      },
      null,
    );
    expect(bySubtask.records[0]).toMatchObject({ attempts: 2, status: 'failed' });
    expect(bySubtask.records[0]?.error?.details).toMatchObject({ timeoutMs: 50 });
  });

  it('analyze and integrate throwing fail the run at their stage', async () => {
    const t = team();
    const analysis = await t.run(
      {
        analyze: () => {
          throw new Error('cannot split');
        },
      },
      null,
    );
    expect(analysis).toMatchObject({ status: 'failed', stage: 'analyzing', records: [] });
    if (analysis.status !== 'done')
      expect(analysis.error.message).toBe('analyze() threw: cannot split');
    const integration = await t.run(
      {
        analyze: () => [{ id: 'a', needs: 'work', input: { op: 'echo', value: 1 } }],
        integrate: () => {
          throw new Error('cannot merge');
        },
      },
      null,
    );
    expect(integration).toMatchObject({ status: 'failed', stage: 'integrating' });
    expect(integration.records[0]?.status).toBe('done');
  });
});
