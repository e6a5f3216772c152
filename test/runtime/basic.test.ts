// The actor runtime end to end: stages, identification, dependencies, integration, quality,
// records and metrics.
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Contribution,
  createTroupe,
  defineExpert,
  type RunEvent,
  type Troupe,
  type TroupeOptions,
} from '../../dist/src/index.js';
import { fixture } from '../helpers.js';

const open: Troupe[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close({ force: true })));
});

function troupe(options: Partial<TroupeOptions> = {}): Troupe {
  const t = createTroupe({
    threads: 2,
    experts: [
      defineExpert({
        name: 'worker',
        skills: { work: 3, sort: 1 },
        module: fixture('behave'),
        concurrency: 4,
      }),
      defineExpert({
        name: 'senior',
        skills: { work: 5 },
        module: fixture('behave'),
        concurrency: 2,
      }),
    ],
    ...options,
  });
  open.push(t);
  return t;
}

describe('a run', () => {
  it('goes through the six stages and integrates the contributions keyed by subtask', async () => {
    const t = troupe();
    const events: RunEvent[] = [];
    const outcome = await t.run(
      {
        analyze: (n: number) =>
          Array.from({ length: n }, (_, i) => ({
            id: `s${i}`,
            needs: 'work',
            input: { op: 'echo', value: i * 10 },
          })),
      },
      3,
      { onEvent: (e) => events.push(e) },
    );
    expect(outcome.status).toBe('done');
    if (outcome.status !== 'done') return;
    expect(outcome.result).toEqual({ s0: 0, s1: 10, s2: 20 });
    expect(
      events.filter((e) => e.type === 'stage').map((e) => (e as { stage: string }).stage),
    ).toEqual(['analyzing', 'identifying', 'coordinating', 'integrating', 'validating', 'done']);
    expect(events.filter((e) => e.type === 'subtask.start')).toHaveLength(3);
    expect(events.filter((e) => e.type === 'subtask.end')).toHaveLength(3);
    expect(outcome.records.map((r) => [r.id, r.status, r.attempts])).toEqual([
      ['s0', 'done', 1],
      ['s1', 'done', 1],
      ['s2', 'done', 1],
    ]);
    expect(outcome.contributions.map((c) => c.subtask)).toEqual(['s0', 's1', 's2']);
    for (const c of outcome.contributions) {
      expect(['worker', 'senior']).toContain(c.expert);
      expect(c.attempt).toBe(1);
      expect(c.runMs).toBeGreaterThan(0);
    }
    expect(outcome.metrics).toMatchObject({
      subtasks: 3,
      threads: 2,
      retries: 0,
      restarts: 0,
      messages: 0,
    });
    expect(outcome.metrics.parallelism).toBeCloseTo(
      outcome.metrics.runMs / outcome.metrics.wallMs,
      6,
    );
  });

  it("the outcome's lists made on first read behave as plain fields: in JSON and spreads, and the caller may replace them", async () => {
    const t = troupe();
    const outcome = await t.run(
      { analyze: () => [{ id: 'a', needs: 'work', input: { op: 'echo', value: 1 } }] },
      null,
    );
    const copy = JSON.parse(JSON.stringify(outcome));
    expect(copy.records.map((r: { id: string }) => r.id)).toEqual(['a']);
    expect(copy.attempts).toHaveLength(1);
    expect({ ...outcome }.records).toBe(outcome.records);
    // Read once, then kept: the same list each time.
    expect(outcome.records).toBe(outcome.records);
    const mine = outcome.records.filter((r) => r.status !== 'done');
    outcome.records = mine;
    outcome.attempts = [];
    expect(outcome.records).toBe(mine);
    expect(outcome.attempts).toEqual([]);
    // Even to undefined: what the caller put there is what it reads back.
    outcome.attempts = undefined as never;
    expect(outcome.attempts).toBeUndefined();
  });

  it('starts a subtask only when its dependencies are done, and hands it their outputs as ctx.deps', async () => {
    const t = troupe();
    const outcome = await t.run(
      {
        analyze: () => [
          { id: 'a', needs: 'work', input: { op: 'interval', ms: 30 } },
          { id: 'b', needs: 'work', input: { op: 'interval', ms: 30 } },
          { id: 'c', needs: 'work', input: { op: 'ctx' }, after: ['a', 'b'] },
          { id: 'd', needs: 'work', input: { op: 'interval', ms: 5 }, after: ['c'] },
        ],
      },
      null,
    );
    expect(outcome.status).toBe('done');
    if (outcome.status !== 'done') return;
    type Interval = { start: number; end: number; threadId: number };
    const r = outcome.result as {
      a: Interval;
      b: Interval;
      c: { task: { id: string }; deps: Record<string, Interval> };
    };
    // a and b overlap: two threads, no barrier (their [start, end] intervals intersect).
    expect(r.a.start).toBeLessThan(r.b.end);
    expect(r.b.start).toBeLessThan(r.a.end);
    expect(r.c.task.id).toBe('c');
    expect(Object.keys(r.c.deps).sort()).toEqual(['a', 'b']);
    expect(r.c.deps.a).toEqual(r.a);
    // d started after c ended, and c after a and b (records are on the run's clock).
    const at = Object.fromEntries(outcome.records.map((x) => [x.id, x]));
    expect(at.d?.startedAtMs).toBeGreaterThanOrEqual(at.c?.endedAtMs ?? Number.POSITIVE_INFINITY);
    expect(outcome.metrics.criticalPathMs).toBeGreaterThan(30);
  });

  it('matches skills by level: complexity 4 goes to the expert with level 5 only', async () => {
    const t = troupe();
    const outcome = await t.run(
      {
        analyze: () =>
          Array.from({ length: 6 }, (_, i) => ({
            id: `h${i}`,
            needs: 'work',
            complexity: 4 as const,
            input: { op: 'echo', value: i },
          })),
      },
      null,
    );
    expect(outcome.contributions.every((c) => c.expert === 'senior' && c.level === 5)).toBe(true);
  });

  it('uses the plan integrate and validate: quality is what validate returns', async () => {
    const t = troupe();
    const outcome = await t.run(
      {
        name: 'sum',
        analyze: (xs: number[]) =>
          xs.map((x, i) => ({ id: `x${i}`, needs: 'work', input: { op: 'echo', value: x } })),
        integrate: (contributions) =>
          contributions.reduce((sum, c) => sum + (c.output as number), 0),
        validate: (total: number) => ({ score: total > 0 ? 1 : 0 }),
      },
      [1, 2, 3],
    );
    expect(outcome).toMatchObject({
      status: 'done',
      plan: 'sum',
      result: 6,
      quality: { score: 1 },
    });
  });

  it("calls a plan's functions on the plan: a class's methods keep their `this`", async () => {
    class Summing {
      readonly name = 'summing';
      readonly floor = 1;
      analyze(xs: number[]) {
        return xs.map((x, i) => ({ id: `x${i}`, needs: 'work', input: { op: 'echo', value: x } }));
      }
      integrate(contributions: Contribution[]) {
        return contributions.reduce((sum, c) => sum + (c.output as number), this.floor);
      }
      validate(total: number) {
        return { above: total > this.floor };
      }
    }
    const outcome = await troupe().run(new Summing(), [1, 2]);
    expect(outcome).toMatchObject({ status: 'done', result: 4, quality: { above: true } });
  });

  it('a plan validate that throws fails the run with E_QUALITY', async () => {
    const t = troupe();
    const outcome = await t.run(
      {
        analyze: () => [{ id: 'a', needs: 'work', input: { op: 'echo', value: 1 } }],
        validate: () => {
          throw new Error('not good enough');
        },
      },
      null,
    );
    expect(outcome.status).toBe('failed');
    if (outcome.status === 'done') return;
    expect(outcome.error.code).toBe('E_QUALITY');
    expect(outcome.stage).toBe('validating');
    expect(outcome.records[0]?.status).toBe('done');
  });

  it('an expert validate rejects an output: E_QUALITY uses attempts and can move to another expert', async () => {
    const t = createTroupe({
      threads: 2,
      retryBackoffMs: 1,
      experts: [
        defineExpert({
          name: 'sloppy',
          skills: { work: 5 },
          module: fixture('behave'),
          validate: () => 'sloppy output',
        }),
        defineExpert({ name: 'careful', skills: { work: 3 }, module: fixture('behave') }),
      ],
    });
    open.push(t);
    const outcome = await t.run(
      { analyze: () => [{ id: 'a', needs: 'work', input: { op: 'echo', value: 7 } }] },
      null,
    );
    expect(outcome.status).toBe('done');
    const record = outcome.records[0];
    expect(record?.attempts).toBe(2);
    expect(record?.errors.map((e) => e.code)).toEqual(['E_QUALITY']);
    expect(record?.errors[0]?.message).toBe('sloppy: sloppy output');
    expect(record?.expert).toBe('careful');
  });

  it('an empty plan is done at once with an empty result', async () => {
    const t = troupe();
    const outcome = await t.run({ analyze: () => [] }, null);
    expect(outcome).toMatchObject({ status: 'done', result: {}, records: [] });
  });

  it('experts() and stats() show the team', async () => {
    const t = troupe();
    await t.run(
      { analyze: () => [{ id: 'a', needs: 'work', input: { op: 'echo', value: 1 } }] },
      null,
    );
    expect(t.experts().map((e) => [e.name, e.state, e.probe?.ok])).toEqual([
      ['worker', 'ready', true],
      ['senior', 'ready', true],
    ]);
    expect(t.stats()).toMatchObject({
      runs: { active: 0, done: 1, failed: 0, cancelled: 0 },
      subtasks: { queued: 0, running: 0, outstanding: 0 },
    });
  });
});

describe('inspection', () => {
  it('createTroupe({ inspect }) receives XState inspection events of the coordinator, runs and experts', async () => {
    const seen = new Set<string>();
    const actors = new Set<string>();
    const t = troupe({
      inspect: (event: unknown) => {
        const e = event as { type: string; actorRef?: { id?: string } };
        seen.add(e.type);
        if (e.type === '@xstate.actor' && e.actorRef?.id !== undefined) actors.add(e.actorRef.id);
      },
    });
    const outcome = await t.run(
      { analyze: () => [{ id: 'a', needs: 'work', input: { op: 'echo', value: 1 } }] },
      null,
    );
    expect(outcome.status).toBe('done');
    expect(seen).toContain('@xstate.actor');
    expect(seen).toContain('@xstate.event');
    expect(seen).toContain('@xstate.snapshot');
    expect(actors).toContain('worker');
    expect(actors).toContain('senior');
    expect([...actors].some((id) => id.startsWith('run-'))).toBe(true);
  });
});
