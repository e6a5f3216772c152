// Every invalid option, plan and graph gives its code and names the field.
import { afterEach, describe, expect, it } from 'vitest';
import { createTroupe, defineExpert, type TroupeOptions } from '../../dist/src/index.js';
import { fixture } from '../helpers.js';
import { closeTroupes, openTroupe } from './helpers.js';

afterEach(closeTroupes);

const module = fixture('behave');
const expert = { name: 'w', skills: { s: 1 }, module } as const;

describe('createTroupe options', () => {
  const bad: [string, unknown, string][] = [
    ['options', null, 'options: expected an object, got null'],
    [
      'experts',
      { experts: [] },
      'options.experts: expected a non-empty array of expert definitions, got an array of length 0',
    ],
    [
      'threads',
      { experts: [expert], threads: 0 },
      'options.threads: expected an integer from 1 to 1024, got number 0',
    ],
    [
      'attempts',
      { experts: [expert], attempts: 0 },
      'options.attempts: expected an integer from 1 to 65535, got number 0',
    ],
    [
      'timeoutMs',
      { experts: [expert], timeoutMs: -1 },
      'options.timeoutMs: expected a duration in ms from 0 to 2147483647, got number -1',
    ],
    [
      'idleSpinMs',
      { experts: [expert], idleSpinMs: -1 },
      'options.idleSpinMs: expected a duration in ms from 0 to 10, got number -1',
    ],
    [
      'maxQueuedSubtasks',
      { experts: [expert], maxQueuedSubtasks: 1.5 },
      'options.maxQueuedSubtasks: expected a positive integer, got number 1.5',
    ],
    [
      'supervision.intensity',
      { experts: [expert], supervision: { intensity: 0 } },
      'options.supervision.intensity: expected an integer from 1 to 2147483647, got number 0',
    ],
    [
      'supervision.windowMs',
      { experts: [expert], supervision: { windowMs: -5 } },
      'options.supervision.windowMs: expected a duration in ms from 0 to 2147483647, got number -5',
    ],
    [
      'duplicate names',
      { experts: [expert, expert] },
      'options.experts: expected unique expert names, got "\\"w\\" twice"',
    ],
    [
      'expert name',
      { experts: [{ ...expert, name: '1x' }] },
      'options.experts[0].name: expected a name of letters, digits, "_", "-" or "." starting with a letter, got "1x"',
    ],
    [
      'expert skills',
      { experts: [{ ...expert, skills: {} }] },
      'options.experts[0] "w".skills: expected an object of skill → level (1–5) with at least one skill, got an object',
    ],
    [
      'expert level',
      { experts: [{ ...expert, skills: { s: 7 } }] },
      'options.experts[0] "w".skills.s: expected a level from 1 to 5, got number 7',
    ],
    [
      'expert module',
      { experts: [{ ...expert, module: './x.mjs' }] },
      'options.experts[0] "w".module: expected a file: URL or an absolute path to the worker module, got "./x.mjs"',
    ],
    [
      'expert concurrency',
      { experts: [{ ...expert, concurrency: 0 }] },
      'options.experts[0] "w".concurrency: expected an integer from 1 to 2147483647, got number 0',
    ],
    [
      'expert lookahead',
      { experts: [{ ...expert, lookahead: 'no' }] },
      'options.experts[0] "w".lookahead: expected a boolean, got "no"',
    ],
    [
      'inspect',
      { experts: [expert], inspect: 'yes' },
      'options.inspect: expected a function (inspection event) => void, an observer { next }, or an inspector with .inspect (e.g. createWebSocketInspector() from @statelyai/inspect), got "yes"',
    ],
    [
      'reserved expert name',
      { experts: [{ ...expert, name: 'coordinator' }] },
      'options.experts[0].name: expected a name other than "coordinator" or "run-<n>" (the ids of the troupe\'s own actors), got "coordinator"',
    ],
  ];
  for (const [field, options, message] of bad) {
    it(`rejects a bad ${field}`, () => {
      expect(() => createTroupe(options as TroupeOptions)).toThrow(
        expect.objectContaining({ code: 'E_INVALID_OPTION', message }),
      );
    });
  }

  it('defineExpert checks at once', () => {
    expect(() => defineExpert({ ...expert, timeoutMs: -1 })).toThrow(
      expect.objectContaining({
        message:
          'expert "w".timeoutMs: expected a duration in ms from 0 to 2147483647, got number -1',
      }),
    );
  });
});

describe('run() input', () => {
  const t = () => openTroupe({ threads: 1, experts: [defineExpert(expert)] });
  it('rejects a bad plan or run option before admission', async () => {
    const troupe = t();
    await expect(troupe.run(null as never, 1)).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      message: 'plan: expected an object { analyze, integrate?, validate? }, got null',
    });
    await expect(troupe.run({} as never, 1)).rejects.toMatchObject({
      message: 'plan.analyze: expected a function (input) => subtasks, got undefined',
    });
    await expect(troupe.run({ analyze: () => [] }, 1, { deadlineMs: 0 })).rejects.toMatchObject({
      message:
        'run(options).deadlineMs: expected a duration in ms above 0, at most 2147483647, got number 0',
    });
    await expect(
      troupe.run({ analyze: () => [] }, 1, { signal: {} as AbortSignal }),
    ).rejects.toMatchObject({
      message: 'run(options).signal: expected an AbortSignal, got an object',
    });
  });

  const graphs: [string, unknown, string, string][] = [
    [
      'not an array',
      5,
      'E_INVALID_GRAPH',
      'analyze(): expected an array of subtasks, got number 5',
    ],
    [
      'a missing id',
      [{ needs: 's' }],
      'E_INVALID_GRAPH',
      'subtasks[0].id: expected a non-empty string, got undefined',
    ],
    [
      'a missing need',
      [{ id: 'a' }],
      'E_INVALID_GRAPH',
      'subtasks[0].needs: expected a skill name, got undefined',
    ],
    [
      'a bad complexity',
      [{ id: 'a', needs: 's', complexity: 9 }],
      'E_INVALID_GRAPH',
      'subtasks[0].complexity: expected an integer from 1 to 5, got number 9',
    ],
    [
      'a duplicate id',
      [
        { id: 'a', needs: 's' },
        { id: 'a', needs: 's' },
      ],
      'E_INVALID_GRAPH',
      'subtasks[1].id: "a" is also the id of subtasks[0]; ids must be unique',
    ],
    [
      'an unknown dependency',
      [{ id: 'a', needs: 's', after: ['zz'] }],
      'E_INVALID_GRAPH',
      'subtasks[0].after: "a" waits for "zz", which no subtask has as its id',
    ],
    [
      'a cycle',
      [
        { id: 'a', needs: 's', after: ['c'] },
        { id: 'b', needs: 's', after: ['a'] },
        { id: 'c', needs: 's', after: ['b'] },
      ],
      'E_CYCLE',
      'the subtasks wait for each other in a cycle of 3: a → c → b → a (→ reads "waits for")',
    ],
    [
      'a self-dependency',
      [{ id: 'a', needs: 's', after: ['a'] }],
      'E_CYCLE',
      'the subtasks wait for each other in a cycle of 1: a → a (→ reads "waits for")',
    ],
  ];
  for (const [what, subtasks, code, message] of graphs) {
    it(`a graph with ${what} fails the run in analysis: ${code}`, async () => {
      const outcome = await t().run({ analyze: () => subtasks as never }, null);
      expect(outcome.status).toBe('failed');
      if (outcome.status === 'done') return;
      expect(outcome.stage).toBe('analyzing');
      expect(outcome.error).toMatchObject({ code, message });
    });
  }
});
