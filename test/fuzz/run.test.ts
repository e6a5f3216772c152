// Fuzzing a troupe's entries: run(plan, input, options), the subtasks analyze returns, and
// tell/ask/revive. One troupe on two threads serves every case; most cases are refused at the
// door, the rest run tiny echo subtasks, and each outcome must be well formed.
import { types } from 'node:util';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createTroupe, defineExpert, type Outcome, type Troupe } from '../../dist/src/index.js';
import { fixture, until } from '../helpers.js';
import { answer, expectTyped, fuzz, PROPERTY_LIMIT_MS, watchStrays } from './harness.js';
import {
  anyArb,
  atom,
  build,
  dataArb,
  keyArb,
  objectArb,
  orAny,
  type Recipe,
  sometimesAny,
  stringArb,
  v,
} from './values.js';

watchStrays();

const FILE = 'run.test.ts';

const failures: unknown[] = [];
const troupe: Troupe = createTroupe({
  threads: 2,
  retryBackoffMs: 1,
  maxRetryBackoffMs: 2,
  askTimeoutMs: 2_000,
  experts: [
    defineExpert({
      name: 'w',
      skills: { s: 3, constructor: 2 } as Record<string, 2 | 3>,
      module: fixture('behave'),
      concurrency: 4,
    }),
    // An expert whose skill is called "__proto__" (an own field, as JSON.parse makes it).
    defineExpert({
      name: 'p',
      skills: JSON.parse('{ "__proto__": 2, "t": 1 }'),
      module: fixture('behave'),
      concurrency: 2,
    }),
    defineExpert({
      name: 'inbox',
      skills: { m: 1 },
      module: fixture('behave'),
      onMessage: (msg) => ({ got: typeof msg }),
    }),
    defineExpert({
      name: 'mirror',
      skills: { m: 2 },
      module: fixture('behave'),
      onMessage: (msg) => [msg],
    }),
    defineExpert({ name: 'heavy', skills: { h: 1 }, module: fixture('talker'), messages: 'heavy' }),
  ],
  onMessageFailed: (failure) => failures.push(failure.error),
});
afterAll(() => troupe.close({ force: true }));

// ---------------------------------------------------------------------------------------------
// Subtasks

const IDS = [
  'a',
  'b',
  'c',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
] as const;
const idArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...IDS) },
  { weight: 1, arbitrary: keyArb },
);
const NEEDS = ['s', 's', 's', 't', 'constructor', '__proto__', 'toString', 'm', 'nope', ''];

/** The fixture's input: mostly echo (of data, or of anything), now and then a failure. */
const behaveInput = objectArb(
  {
    op: orAny(
      fc
        .constantFrom('echo', 'echo', 'echo', 'echo', 'throw', 'reject', 'throwString', 'ctx')
        .map(v),
      8,
    ),
    value: fc.oneof({ weight: 3, arbitrary: dataArb }, { weight: 1, arbitrary: anyArb }),
    okAt: orAny(fc.constant(v(2))),
  },
  { required: ['op'], flavor: fc.constantFrom('plain', 'plain', 'plain', 'nullProto', 'getters') },
);
const inputArb = fc.oneof(
  { weight: 8, arbitrary: behaveInput },
  { weight: 1, arbitrary: fc.constant(v({ op: 'failUntil', okAt: 2 })) },
  { weight: 1, arbitrary: anyArb },
);

const subtaskArb = objectArb(
  {
    id: orAny(idArb.map(v), 12),
    needs: orAny(fc.constantFrom(...NEEDS).map(v), 12),
    complexity: orAny(fc.constantFrom(1, 2, 3).map(v), 4),
    input: inputArb,
    after: orAny(
      fc.record({
        arr: fc.array(idArb.map(v), { maxLength: 2 }),
        as: fc.constantFrom('plain', 'plain', 'plain', 'sparse', 'proxy', 'frozen' as const),
      }),
      8,
    ),
    timeoutMs: orAny(fc.constantFrom(0, 5_000).map(v), 4),
    attempts: orAny(fc.constantFrom(1, 2, 3).map(v), 4),
  },
  {
    required: ['id', 'needs'],
    nearMisses: ['afer', 'need', 'ids', 'timeout', 'attempt', 'inputs'],
    flavor: fc.constantFrom(
      'plain',
      'plain',
      'plain',
      'plain',
      'nullProto',
      'instance',
      'getters',
      'proxy',
      'changing',
    ),
  },
);
const subtasksArb: fc.Arbitrary<Recipe> = sometimesAny(
  fc.record({
    arr: fc.array(subtaskArb, { minLength: 0, maxLength: 4 }),
    as: fc.constantFrom('plain', 'plain', 'plain', 'plain', 'sparse', 'proxy', 'frozen' as const),
  }),
);

/** What a plan's own function does: answer (at once or later), or throw / reject. */
const callback = (of: fc.Arbitrary<Recipe>): fc.Arbitrary<Recipe> =>
  fc.oneof(
    { weight: 6, arbitrary: of.map((r): Recipe => ({ fn: 'returns', of: r })) },
    { weight: 2, arbitrary: of.map((r): Recipe => ({ fn: 'resolves', of: r })) },
    {
      weight: 1,
      arbitrary: anyArb.map((r): Recipe => ({ fn: 'throws', of: r })),
    },
    {
      weight: 1,
      arbitrary: anyArb.map((r): Recipe => ({ fn: 'rejects', of: r })),
    },
  );
const verdictArb = fc.oneof(
  fc.constantFrom(v(true), v(false), v('a reason'), v(undefined), v(0)),
  anyArb,
);

const runOptionsArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant(v(undefined)) },
  {
    weight: 4,
    arbitrary: objectArb(
      {
        signal: orAny(fc.constantFrom(atom('abortSignal'), atom('abortedSignal'))),
        deadlineMs: orAny(fc.constantFrom(1, 20, 5_000).map(v)),
        onEvent: orAny(
          fc.constantFrom<Recipe>(
            { fn: 'returns', of: v(1) },
            { fn: 'throws', of: atom('revoked') },
          ),
        ),
        onProgress: orAny(fc.constant<Recipe>({ fn: 'throws', of: v('no') })),
      },
      { nearMisses: ['deadline', 'onevent', 'sigal', 'onProgres'] },
    ),
  },
  { weight: 1, arbitrary: anyArb },
);

// ---------------------------------------------------------------------------------------------
// Checks

const STATUSES = new Set(['done', 'failed', 'cancelled']);

/** The ids of a subtask list made of plain objects (what a run must then report on). */
function plainIds(subtasks: unknown): string[] | undefined {
  if (types.isProxy(subtasks) || !Array.isArray(subtasks)) return undefined;
  const ids: string[] = [];
  for (let i = 0; i < subtasks.length; i++) {
    const d = Object.getOwnPropertyDescriptor(subtasks, i);
    if (d === undefined || !('value' in d)) return undefined;
    const s = d.value as unknown;
    if (s === null || typeof s !== 'object' || types.isProxy(s)) return undefined;
    const id = Object.getOwnPropertyDescriptor(s, 'id');
    if (id === undefined || typeof id.value !== 'string') return undefined;
    ids.push(id.value);
  }
  return ids;
}

/** An outcome: a known status, a typed error, every record terminal and each id once. */
function expectWellFormed(outcome: Outcome, ids: string[] | undefined, integrates: boolean): void {
  expect(STATUSES.has(outcome.status), `status ${String(outcome.status)}`).toBe(true);
  expect(Array.isArray(outcome.records)).toBe(true);
  const seen = new Set<string>();
  for (const record of outcome.records) {
    expect(STATUSES.has(record.status), `record ${record.id}: ${record.status}`).toBe(true);
    expect(seen.has(record.id), `record ${record.id} twice`).toBe(false);
    seen.add(record.id);
    if (record.status !== 'done') expectTyped(`record ${record.id}`, record.error);
  }
  if (outcome.status !== 'done') {
    expectTyped(`outcome (${outcome.status} at ${outcome.stage})`, outcome.error);
    if (outcome.stage !== 'analyzing' && ids !== undefined)
      expect([...seen].sort()).toEqual([...ids].sort());
    return;
  }
  if (ids === undefined) return;
  expect([...seen].sort()).toEqual([...ids].sort());
  expect(outcome.records.every((r) => r.status === 'done')).toBe(true);
  if (integrates) return;
  // The default integration: every id an own field of the result, "__proto__" too.
  const result = outcome.result as object;
  for (const id of ids) expect(Object.hasOwn(result, id), `result.${id} is own`).toBe(true);
  expect(Object.keys(result).sort()).toEqual([...ids].sort());
}

async function expectIdle(): Promise<void> {
  expect(troupe.stats().subtasks).toEqual({ queued: 0, running: 0, outstanding: 0 });
}

async function runCase(
  what: string,
  plan: unknown,
  input: unknown,
  options: unknown,
  ids: string[] | undefined,
  integrates: boolean,
): Promise<void> {
  const got = await answer(what, () => troupe.run(plan as never, input, options as never));
  if (got.ok) {
    count(got.value.status === 'done' ? 'done' : `${got.value.status} ${got.value.error.code}`);
    expectWellFormed(got.value, ids, integrates);
    await expectIdle();
  } else {
    count(`refused ${got.error.code}`);
    expect(['E_INVALID_OPTION', 'E_CANCELLED']).toContain(got.error.code);
  }
}

/** How the cases of a property ended, printed with it (a fuzz run should admit some). */
const tally = new Map<string, number>();
const count = (key: string) => tally.set(key, (tally.get(key) ?? 0) + 1);
function report(what: string): void {
  console.info(`${what}: ${[...tally].map(([k, n]) => `${n} ${k}`).join(', ')}`);
  tally.clear();
}

describe('fuzz: a troupe', () => {
  it(
    'run(plan, input, options): an outcome, well formed, or E_INVALID_OPTION before admission',
    async () => {
      const planArb = sometimesAny(
        objectArb(
          {
            analyze: callback(subtasksArb),
            integrate: callback(anyArb),
            validate: callback(verdictArb),
            name: orAny(stringArb.map(v)),
          },
          {
            required: ['analyze'],
            nearMisses: ['analyse', 'intergrate', 'validat', 'nmae'],
            flavor: fc.constantFrom(
              'plain',
              'plain',
              'plain',
              'nullProto',
              'instance',
              'proxy',
              'getters',
            ),
          },
        ),
      );
      await fuzz(
        FILE,
        fc.asyncProperty(
          planArb,
          anyArb,
          runOptionsArb,
          async (planRecipe, inputRecipe, optionsRecipe) => {
            const plan = build(planRecipe);
            const input = build(inputRecipe);
            const options = build(optionsRecipe);
            await runCase('run', plan, input, options, undefined, true);
          },
        ),
      );
      await expectIdle();
      report('run');
    },
    PROPERTY_LIMIT_MS,
  );

  it(
    'the subtasks analyze returns: E_INVALID_GRAPH / E_CYCLE / E_NO_EXPERT or a run whose ids stay own fields',
    async () => {
      const withIntegrate = fc.oneof(
        { weight: 4, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: callback(anyArb) },
      );
      await fuzz(
        FILE,
        fc.asyncProperty(
          subtasksArb,
          withIntegrate,
          fc.option(callback(verdictArb), { freq: 4 }),
          fc.option(fc.constantFrom(1, 5_000), { freq: 4 }),
          async (subtasksRecipe, integrateRecipe, validateRecipe, deadlineMs) => {
            const subtasks = build(subtasksRecipe);
            const ids = plainIds(subtasks);
            const plan: Record<string, unknown> = { analyze: () => subtasks };
            if (integrateRecipe !== undefined) plan.integrate = build(integrateRecipe);
            if (validateRecipe !== null) plan.validate = build(validateRecipe);
            const options = deadlineMs === null ? {} : { deadlineMs };
            await runCase('analyze', plan, null, options, ids, integrateRecipe !== undefined);
          },
        ),
      );
      await expectIdle();
      report('analyze');
    },
    PROPERTY_LIMIT_MS,
  );

  // One property per method, so that each gets CASES cases of its own.
  for (const method of ['tell', 'ask', 'revive'] as const)
    it(
      `${method}: delivered, answered, or refused with a TroupeError`,
      async () => {
        const recipientArb = fc.oneof(
          {
            weight: 4,
            arbitrary: fc.constantFrom('inbox', 'mirror', 'heavy', 'w', 'nobody', ...IDS).map(v),
          },
          {
            weight: 2,
            arbitrary: objectArb(
              {
                skill: orAny(
                  fc.constantFrom('m', 'h', 's', '__proto__', 'toString', 'constructor').map(v),
                ),
                level: orAny(fc.constantFrom(1, 2, 5).map(v)),
              },
              { required: ['skill'], nearMisses: ['skil', 'levle'] },
            ),
          },
          { weight: 1, arbitrary: anyArb },
        );
        const msgArb = fc.oneof(
          objectArb(
            {
              op: orAny(fc.constantFrom('echo', 'throw', 'nope').map(v)),
              value: fc.oneof(dataArb, anyArb),
              why: dataArb,
            },
            { required: ['op'] },
          ),
          anyArb,
        );
        const askOptionsArb = fc.oneof(
          fc.constant(v(undefined)),
          objectArb(
            { timeoutMs: orAny(fc.constantFrom(1, 2_000).map(v)) },
            { nearMisses: ['timeout'] },
          ),
          anyArb,
        );
        await fuzz(
          FILE,
          fc.asyncProperty(
            recipientArb,
            msgArb,
            askOptionsArb,
            async (toRecipe, msgRecipe, optionsRecipe) => {
              const to = build(toRecipe);
              const msg = build(msgRecipe);
              const options = build(optionsRecipe);
              const got = await answer(method, () =>
                method === 'tell'
                  ? troupe.tell(to as never, msg)
                  : method === 'ask'
                    ? troupe.ask(to as never, msg, options as never)
                    : troupe.revive(to as never),
              );
              count(got.ok ? `${method} answered` : `${method} ${got.error.code}`);
              if (!got.ok && method !== 'ask')
                expect(['E_INVALID_OPTION', 'E_NO_RECIPIENT']).toContain(got.error.code);
            },
          ),
        );
        // What was told arrives or is reported, typed; nothing waits for ever.
        await until(() => troupe.stats().messages.waiting === 0);
        for (const error of failures.splice(0)) expectTyped('a failed tell', error);
        await expectIdle();
        report(method);
      },
      PROPERTY_LIMIT_MS,
    );
});
