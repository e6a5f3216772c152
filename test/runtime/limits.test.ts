// Limits that protect the host: each has a defined answer, tested here (the table is in
// docs/embedding.md, "Limits that protect the host"): a 100 MB input, an output past its limit,
// a run of more subtasks than a run may have, a 10 000-deep input, a cyclic input.
import { afterEach, describe, expect, it } from 'vitest';
import { createPool, defineExpert, type Outcome } from '../../dist/src/index.js';
import { fixture } from '../helpers.js';
import { closeTroupes, openTroupe } from './helpers.js';

afterEach(closeTroupes);

const team = (options: Record<string, unknown> = {}) =>
  openTroupe({
    threads: 1,
    attempts: 3,
    experts: [defineExpert({ name: 'w', skills: { s: 1 }, module: fixture('behave') })],
    ...options,
  });

function failed(outcome: Outcome) {
  expect(outcome.status).toBe('failed');
  if (outcome.status !== 'failed') throw new Error('not failed');
  return outcome;
}

describe('input and output size', () => {
  it('a 100 MB input fails its subtask E_TOO_LARGE at once, naming it; not retried, not charged', async () => {
    const t = team();
    const big = 'x'.repeat(100 * 1024 * 1024);
    const outcome = failed(
      await t.run(
        {
          analyze: () => [
            { id: 'huge', needs: 's', input: { op: 'echo', value: { text: big } } },
            { id: 'fine', needs: 's', input: { op: 'echo', value: 1 } },
          ],
        },
        null,
      ),
    );
    const record = outcome.records.find((r) => r.id === 'huge');
    expect(record?.error?.code).toBe('E_TOO_LARGE');
    expect(record?.error?.message).toMatch(
      /subtask "huge"'s input weighs more than maxInputBytes \(67108864\): at least \d+ bytes/,
    );
    expect(record?.attempts).toBe(1);
    expect(record?.error?.details).toMatchObject({ subtask: 'huge', limit: 67108864 });
    expect(t.experts()[0]?.faults).toEqual([]);
  });

  it('a sparse array of 2^32 - 1 slots, in an input or an output, weighs as many bytes: E_TOO_LARGE, no crash (found by fuzzing)', async () => {
    const t = team();
    const sparse: unknown[] = [];
    sparse.length = 2 ** 32 - 1;
    const outcome = failed(
      await t.run(
        { analyze: () => [{ id: 'holes', needs: 's', input: { op: 'echo', value: sparse } }] },
        null,
      ),
    );
    expect(outcome.records[0]?.error?.code).toBe('E_TOO_LARGE');
    expect(outcome.records[0]?.error?.message).toMatch(/subtask "holes"'s input weighs more/);
  });

  it('an output past maxOutputBytes is never sent: E_TOO_LARGE naming the subtask, and the thread goes on', async () => {
    const t = team({ maxOutputBytes: 1000 });
    const outcome = failed(
      await t.run(
        {
          analyze: () => [
            {
              id: 'wordy',
              needs: 's',
              attempts: 1,
              input: {
                op: 'echo',
                value: { list: Array.from({ length: 200 }, (_, i) => `item ${i}`) },
              },
            },
          ],
        },
        null,
      ),
    );
    const error = outcome.records[0]?.error;
    expect(error?.code).toBe('E_TOO_LARGE');
    expect(error?.message).toMatch(
      /subtask "wordy"'s output weighs more than maxOutputBytes \(1000\): at least \d+ bytes; nothing was sent/,
    );
    const next = await t.run(
      { analyze: () => [{ id: 'small', needs: 's', input: { op: 'echo', value: 'ok' } }] },
      null,
    );
    expect(next.status === 'done' && next.result).toEqual({ small: 'ok' });
  });

  it('Infinity turns a limit off; the pool alone has none by default', async () => {
    const t = team({
      maxInputBytes: Number.POSITIVE_INFINITY,
      maxOutputBytes: Number.POSITIVE_INFINITY,
    });
    const text = 'y'.repeat(70 * 1024 * 1024);
    const outcome = await t.run(
      {
        analyze: () => [
          {
            id: 'big',
            needs: 's',
            input: { op: 'bytes', buf: new TextEncoder().encode(text.slice(0, 1024)).buffer },
          },
        ],
      },
      null,
    );
    expect(outcome.status).toBe('done');
    const pool = createPool({ threads: 1, modules: { behave: fixture('behave') } });
    try {
      expect(await pool.run('behave', { op: 'echo', value: text.length })).toBe(text.length);
      const tiny = createPool({
        threads: 1,
        maxInputBytes: 10,
        modules: { behave: fixture('behave') },
      });
      await expect(
        tiny.run('behave', { op: 'echo', value: 'far more than ten' }),
      ).rejects.toMatchObject({
        code: 'E_TOO_LARGE',
      });
      await tiny.destroy();
    } finally {
      await pool.destroy();
    }
  });

  it('refuses a limit that is not a positive integer or Infinity', () => {
    for (const bad of [0, -1, 1.5, '64', Number.NaN])
      expect(() => team({ maxInputBytes: bad })).toThrow(/options\.maxInputBytes/);
    expect(() => team({ maxSubtasksPerRun: 0 })).toThrow(/options\.maxSubtasksPerRun/);
  });
});

describe('a heap limit of an expert of its own', () => {
  it('runs that expert on threads of its own: past its heap it fails E_WORKER_OOM, the shared threads untouched', async () => {
    const t = openTroupe({
      threads: 1,
      attempts: 1,
      experts: [
        defineExpert({
          name: 'tight',
          skills: { t: 1 },
          module: fixture('behave'),
          resourceLimits: { maxOldGenerationSizeMb: 32 },
        }),
        defineExpert({ name: 'roomy', skills: { r: 1 }, module: fixture('behave') }),
      ],
    });
    const threads = async () => {
      const outcome = await t.run(
        {
          analyze: () => [
            { id: 'a', needs: 't', input: { op: 'thread' } },
            { id: 'b', needs: 'r', input: { op: 'thread' } },
          ],
        },
        null,
      );
      expect(outcome.status).toBe('done');
      return outcome.status === 'done' ? (outcome.result as { a: number; b: number }) : undefined;
    };
    const before = await threads();
    // One thread each: the troupe's (threads: 1) and the tight expert's own.
    expect(before?.a).not.toBe(before?.b);
    // A run's efficiency counts both.
    const measured = await t.run(
      { analyze: () => [{ id: 'm', needs: 't', input: { op: 'echo', value: 1 } }] },
      null,
    );
    expect(measured.metrics.threads).toBe(2);
    const outcome = failed(
      await t.run({ analyze: () => [{ id: 'big', needs: 't', input: { op: 'oom' } }] }, null),
    );
    expect(outcome.records[0]?.error?.code).toBe('E_WORKER_OOM');
    const after = await threads();
    // The tight expert got a new thread; the shared one lived on.
    expect(after?.b).toBe(before?.b);
    expect(after?.a).not.toBe(before?.a);
  });

  it('when every expert has threads of its own, no shared threads are started for nobody', async () => {
    const t = openTroupe({
      threads: 2,
      experts: [
        defineExpert({
          name: 'alone',
          skills: { a: 1 },
          module: fixture('behave'),
          concurrency: 1,
          resourceLimits: { maxOldGenerationSizeMb: 64 },
        }),
      ],
    });
    const outcome = await t.run(
      { analyze: () => [{ id: 'x', needs: 'a', input: { op: 'echo', value: 7 } }] },
      null,
    );
    expect(outcome.status).toBe('done');
    // Its own single thread (concurrency 1), and no idle shared ones counted against it.
    expect(outcome.metrics.threads).toBe(1);
  });

  it('refuses limits Node would fail the host with, naming the expert', () => {
    expect(() =>
      defineExpert({
        name: 'tiny',
        skills: { t: 1 },
        module: fixture('behave'),
        resourceLimits: { maxOldGenerationSizeMb: 2 },
      }),
    ).toThrow(/expert "tiny"\.resourceLimits\.maxOldGenerationSizeMb: expected/);
    expect(() =>
      defineExpert({
        name: 'typo',
        skills: { t: 1 },
        module: fixture('behave'),
        resourceLimits: { maxOldGenerationSizeMB: 64 } as never,
      }),
    ).toThrow(/maxOldGenerationSizeMb/);
  });
});

describe('subtasks per run', () => {
  it('a run whose analyze returns more than maxSubtasksPerRun fails at analyzing, E_TOO_LARGE', async () => {
    const t = team({ maxSubtasksPerRun: 100 });
    const outcome = failed(
      await t.run(
        { analyze: () => Array.from({ length: 101 }, (_, i) => ({ id: `s${i}`, needs: 's' })) },
        null,
      ),
    );
    expect(outcome.stage).toBe('analyzing');
    expect(outcome.error).toMatchObject({
      code: 'E_TOO_LARGE',
      details: { maxSubtasksPerRun: 100, asked: 101 },
    });
    expect(outcome.records).toEqual([]);
    expect(t.stats().subtasks.outstanding).toBe(0);
  });
});

describe('shapes', () => {
  it('an input nested 10 000 deep: E_NOT_CLONEABLE with a clear depth message; a cyclic input crosses', async () => {
    const t = team();
    const root: Record<string, unknown> = {};
    let node = root;
    for (let i = 0; i < 10_000; i++) {
      const next = {};
      node.n = next;
      node = next;
    }
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    const outcome = await t.run(
      {
        analyze: () => [
          { id: 'deep', needs: 's', input: { op: 'echo', value: root } },
          { id: 'cycle', needs: 's', input: { op: 'echo', value: cyclic } },
        ],
      },
      null,
    );
    const deep = outcome.records.find((r) => r.id === 'deep');
    expect(deep?.error?.code).toBe('E_NOT_CLONEABLE');
    expect(deep?.error?.message).toMatch(/too deep/);
    // The cyclic one is fine on its own (it may be cancelled when 'deep' fails first).
    const alone = await t.run(
      { analyze: () => [{ id: 'cycle', needs: 's', input: { op: 'echo', value: cyclic } }] },
      null,
    );
    expect(alone.status).toBe('done');
    const back = (alone.status === 'done' ? alone.result : {}) as Record<string, { self: unknown }>;
    expect(back.cycle?.self).toBe(back.cycle);
  });
});

describe('what analyze returns', () => {
  it('an integrate or validate whose thenable never calls back is a promise that never settles: the deadline ends it', async () => {
    const t = team();
    // biome-ignore lint/suspicious/noThenProperty: the point of the value
    const never = () => ({ then() {} });
    for (const [plan, stage] of [
      [{ analyze: () => [], integrate: never }, 'integrating'],
      [{ analyze: () => [], validate: never }, 'validating'],
      [{ analyze: () => [], integrate: async () => never() as unknown }, 'integrating'],
    ] as const) {
      const outcome = await t.run(plan, null, { deadlineMs: 50 });
      expect(outcome).toMatchObject({ status: 'cancelled', stage, error: { code: 'E_TIMEOUT' } });
    }
  });

  it('a thenable that is not a Promise (it may never call back) is refused, E_INVALID_GRAPH', async () => {
    const t = team();
    // biome-ignore lint/suspicious/noThenProperty: the thenable is the point of this test
    const outcome = failed(await t.run({ analyze: () => ({ then() {} }) as never }, null));
    expect(outcome.error.code).toBe('E_INVALID_GRAPH');
    expect(outcome.error.message).toMatch(/a thenable that is not a Promise/);
  });
});
