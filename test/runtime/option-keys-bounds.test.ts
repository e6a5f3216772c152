// Typos are refused, not ignored: every options object, expert definition, run option and
// subtask refuses a key it does not know, naming the closest known one. Numbers are bounded by
// what holds them (a 16-bit attempts counter, Node's 2³¹ − 1 ms timers), and user strings that
// become keys (`__proto__`, `toString`) are only ever data.
import { afterEach, describe, expect, it } from 'vitest';
import { createPool, createTroupe, defineExpert } from '../../dist/src/index.js';
import { closeAll, fixture, settle, testPool } from '../helpers.js';
import { closeTroupes, openTroupe } from './helpers.js';

afterEach(async () => {
  await closeTroupes();
  await closeAll();
});

const module = fixture('behave');
const expert = { name: 'w', skills: { s: 1 }, module } as const;
const team = (extra: Record<string, unknown> = {}) =>
  openTroupe({
    threads: 1,
    experts: [
      defineExpert({ ...expert, concurrency: 2 }),
      defineExpert({ name: 'inbox', skills: { m: 1 }, module, onMessage: () => 'answer' }),
    ],
    ...extra,
  });
const one = { analyze: () => [{ id: 'a', needs: 's', input: { op: 'echo', value: 1 } }] };
const MAX_MS = 2 ** 31 - 1;

describe('unknown keys', () => {
  it('createTroupe, defineExpert, supervision and resource limits name the key and the closest one', () => {
    expect(() => createTroupe({ experts: [expert], thread: 2 } as never)).toThrow(
      'options.thread: unknown key; did you mean "threads"?',
    );
    expect(() => createTroupe({ experts: [expert], maxQueuedSubtask: 10 } as never)).toThrow(
      'options.maxQueuedSubtask: unknown key; did you mean "maxQueuedSubtasks"?',
    );
    expect(() => defineExpert({ ...expert, concurency: 4 } as never)).toThrow(
      'expert.concurency: unknown key; did you mean "concurrency"?',
    );
    expect(() =>
      createTroupe({ experts: [expert], supervision: { intensty: 3 } } as never),
    ).toThrow('options.supervision.intensty: unknown key; did you mean "intensity"?');
    expect(() =>
      createTroupe({ experts: [expert], resourceLimits: { maxOldGenSizeMb: 64 } } as never),
    ).toThrow(/options\.resourceLimits\.maxOldGenSizeMb: unknown key/);
    // Nothing close: the known keys are listed.
    expect(() => defineExpert({ ...expert, colour: 'red' } as never)).toThrow(
      /expert\.colour: unknown key \(known keys: name, skills, module, concurrency/,
    );
  });

  it('a subtask with a mistyped key fails the run E_INVALID_GRAPH instead of running without it', async () => {
    const t = team();
    const outcome = await t.run(
      {
        analyze: () => [
          { id: 'a', needs: 's', input: { op: 'echo', value: 1 } },
          { id: 'b', needs: 's', input: { op: 'echo', value: 2 }, afer: ['a'] },
        ],
      },
      null,
    );
    expect(outcome).toMatchObject({
      status: 'failed',
      stage: 'analyzing',
      error: {
        code: 'E_INVALID_GRAPH',
        message: 'subtasks[1].afer: unknown key; did you mean "after"?',
        details: { suggestion: 'after' },
      },
    });
  });

  it('run, ask, close and the plan refuse typos; a plan keeps fields of its own', async () => {
    const t = team();
    await expect(t.run(one, null, { deadline: 5 } as never)).rejects.toThrow(
      'run(options).deadline: unknown key; did you mean "deadlineMs"?',
    );
    await expect(t.run({ ...one, intergrate: () => 1 } as never, null)).rejects.toThrow(
      'plan.intergrate: unknown key; did you mean "integrate"?',
    );
    // A field of the plan's own (its methods may read it through `this`) is not a typo.
    const own = { ...one, floor: 3, integrate: () => 'ok' };
    expect(await t.run(own, null)).toMatchObject({ status: 'done', result: 'ok' });
    await expect(t.ask('inbox', 1, { timeout: 5 } as never)).rejects.toThrow(
      'ask(options).timeout: unknown key; did you mean "timeoutMs"?',
    );
    await expect(t.ask({ skil: 'm' } as never, 1)).rejects.toThrow(
      'ask(to).skil: unknown key; did you mean "skill"?',
    );
    await expect(t.close({ timeout: 5 } as never)).rejects.toThrow(
      'close(options).timeout: unknown key; did you mean "timeoutMs"?',
    );
  });

  it('the pool refuses typos in its options, its registrations and its tasks', async () => {
    expect(() => createPool({ modules: { m: module }, thread: 2 } as never)).toThrow(
      'options.thread: unknown key; did you mean "threads"?',
    );
    expect(() => createPool({ modules: { m: { url: module, batchs: 2 } } } as never)).toThrow(
      'options.modules.m.batchs: unknown key; did you mean "batch"?',
    );
    const pool = testPool();
    const refused = await settle(pool.run('behave', { op: 'echo' }, { timeout: 5 } as never));
    expect(refused.ok ? '' : (refused.error as Error).message).toBe(
      'run(options).timeout: unknown key; did you mean "timeoutMs"?',
    );
    const context = await settle(
      pool.run('behave', { op: 'echo' }, { context: { tasks: {} } } as never),
    );
    expect(context.ok ? '' : (context.error as Error).message).toBe(
      'run(options).context.tasks: unknown key; did you mean "task"?',
    );
  });
});

describe('bounds', () => {
  it('attempts above 65 535 (its 16-bit counter) are refused everywhere; 65 535 is accepted', async () => {
    expect(() => createTroupe({ experts: [expert], attempts: 65_536 })).toThrow(
      'options.attempts: expected an integer from 1 to 65535, got number 65536',
    );
    expect(() => defineExpert({ ...expert, attempts: 65_537 })).toThrow(
      'expert "w".attempts: expected an integer from 1 to 65535, got number 65537',
    );
    const t = team({ attempts: 65_535 });
    const outcome = await t.run(
      { analyze: () => [{ id: 'a', needs: 's', attempts: 70_000, input: { op: 'echo' } }] },
      null,
    );
    expect(outcome).toMatchObject({
      status: 'failed',
      error: {
        code: 'E_INVALID_GRAPH',
        message: 'subtasks[0].attempts: expected an integer from 1 to 65535, got number 70000',
      },
    });
  });

  it('durations of 2³¹ ms or more are refused (a timer would fire after 1 ms); 2³¹ − 1 is accepted', async () => {
    const tooLong = 2 ** 31;
    for (const key of [
      'timeoutMs',
      'askTimeoutMs',
      'moduleLoadTimeoutMs',
      'cancelGraceMs',
      'retryBackoffMs',
    ]) {
      expect(() => createTroupe({ experts: [expert], [key]: tooLong })).toThrow(
        new RegExp(
          `^options\\.${key}: expected a duration in ms .*2147483647, got number 2147483648$`,
        ),
      );
    }
    expect(() => defineExpert({ ...expert, timeoutMs: 3e9 })).toThrow(
      /timeoutMs: expected a duration/,
    );
    const t = team({ askTimeoutMs: MAX_MS, timeoutMs: MAX_MS });
    await expect(t.run(one, null, { deadlineMs: 3e9 })).rejects.toThrow(
      'run(options).deadlineMs: expected a duration in ms above 0, at most 2147483647, got number 3000000000',
    );
    await expect(t.ask('inbox', 1, { timeoutMs: tooLong })).rejects.toThrow(
      /ask\(options\)\.timeoutMs: expected a duration in ms above 0, at most 2147483647/,
    );
    await expect(t.close({ timeoutMs: tooLong })).rejects.toThrow(/close\(options\)\.timeoutMs/);
    // The longest a timer can wait is taken as it is: the run is not cancelled at once.
    expect(await t.run(one, null, { deadlineMs: MAX_MS })).toMatchObject({ status: 'done' });
    expect(await t.ask('inbox', 1, { timeoutMs: MAX_MS })).toBe('answer');
    const graph = await t.run(
      { analyze: () => [{ id: 'a', needs: 's', timeoutMs: tooLong, input: { op: 'echo' } }] },
      null,
    );
    expect(graph).toMatchObject({ status: 'failed', error: { code: 'E_INVALID_GRAPH' } });
  });

  it('threads are bounded (1024)', () => {
    expect(() => createTroupe({ experts: [expert], threads: 1_000_000 })).toThrow(
      'options.threads: expected an integer from 1 to 1024, got number 1000000',
    );
    expect(() => createPool({ modules: { m: module }, threads: 1025 })).toThrow(
      'options.threads: expected an integer from 1 to 1024, got number 1025',
    );
  });

  it('a cycle of 200 000 subtasks is named in a short message that keeps its length', async () => {
    const t = team();
    const n = 200_000;
    const outcome = await t.run(
      {
        analyze: () =>
          Array.from({ length: n }, (_, i) => ({
            id: `s${i}`,
            needs: 's',
            after: [`s${(i + 1) % n}`],
          })),
      },
      null,
    );
    expect(outcome.status).toBe('failed');
    if (outcome.status !== 'failed') return;
    expect(outcome.error.code).toBe('E_CYCLE');
    expect(outcome.error.message.length).toBeLessThan(1_000);
    expect(outcome.error.message).toMatch(
      /^the subtasks wait for each other in a cycle of 200000: s0 → s1 → .* → … \(199981 more\) … → .* → s0/,
    );
    expect(outcome.error.details).toMatchObject({ cycleLength: n });
  });
});

describe('user strings as keys', () => {
  it('a subtask named __proto__ keeps its place in the result and in ctx.deps', async () => {
    const t = team();
    const outcome = await t.run(
      {
        analyze: () => [
          { id: '__proto__', needs: 's', input: { op: 'echo', value: 7 } },
          { id: 'b', needs: 's', input: { op: 'ctx' }, after: ['__proto__'] },
        ],
      },
      null,
    );
    expect(outcome.status).toBe('done');
    if (outcome.status !== 'done') return;
    const result = outcome.result as Record<string, unknown>;
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(Object.keys(result)).toEqual(['__proto__', 'b']);
    expect(Object.getOwnPropertyDescriptor(result, '__proto__')?.value).toBe(7);
    const deps = (result.b as { deps: Record<string, unknown> }).deps;
    expect(Object.getOwnPropertyDescriptor(deps, '__proto__')?.value).toBe(7);
  });

  it('a skill named toString, constructor or __proto__ is nobody’s unless an expert has it', async () => {
    const t = team();
    for (const skill of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      await expect(t.ask({ skill }, 1)).rejects.toMatchObject({ code: 'E_NO_RECIPIENT' });
      const outcome = await t.run({ analyze: () => [{ id: 'a', needs: skill }] }, null);
      expect(outcome).toMatchObject({ status: 'failed', error: { code: 'E_NO_EXPERT' } });
    }
    const own = openTroupe({
      threads: 1,
      experts: [
        defineExpert({
          name: 'odd',
          skills: JSON.parse('{ "__proto__": 2, "toString": 1 }'),
          module,
          onMessage: () => 'odd answers',
        }),
      ],
    });
    expect(await own.ask({ skill: '__proto__', level: 2 }, 1)).toBe('odd answers');
    expect(await own.ask({ skill: 'toString' }, 1)).toBe('odd answers');
  });

  it('no prototype is polluted by keys a user passes (JSON with __proto__ everywhere)', async () => {
    const t = team();
    const hostile = JSON.parse(
      '{ "__proto__": { "polluted": true }, "constructor": { "prototype": { "polluted": true } } }',
    );
    const outcome = await t.run(
      {
        analyze: () => [
          { id: '__proto__', needs: 's', input: { op: 'echo', value: hostile } },
          { id: 'constructor', needs: 's', input: { op: 'echo', value: hostile } },
        ],
        integrate: (contributions) => contributions.map((c) => c.subtask),
      },
      hostile,
    );
    expect(outcome).toMatchObject({ status: 'done', result: ['__proto__', 'constructor'] });
    await expect(t.ask('inbox', hostile)).resolves.toBe('answer');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});
