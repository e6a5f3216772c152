// A plan error names its path in the file once: `analysis.subtasks[1].after: ...`, never
// `analysis.subtasks: analysis.subtasks[1].after: ...` (the graph check's own path, then ours).
import { afterAll, describe, expect, it } from 'vitest';
import { loadPlan } from '../../dist/src/plans/plan.js';
import { planFolder, scratch, tinyPlan } from '../cli/helpers.js';

const { root, remove } = scratch('troupe-paths-');
afterAll(remove);

const cases: [string, unknown[], string][] = [
  [
    'an unknown dependency',
    [
      { id: 'a', needs: 'math' },
      { id: 'b', needs: 'math', after: ['zz'] },
    ],
    'analysis.subtasks[1].after: "b" waits for "zz", which no subtask has as its id',
  ],
  [
    'a duplicate id',
    [
      { id: 'a', needs: 'math' },
      { id: 'a', needs: 'math' },
    ],
    'analysis.subtasks[1].id: "a" is also the id of analysis.subtasks[0]; ids must be unique',
  ],
  [
    'a cycle',
    [
      { id: 'a', needs: 'math', after: ['b'] },
      { id: 'b', needs: 'math', after: ['a'] },
    ],
    'analysis.subtasks: the subtasks wait for each other in a cycle of 2: a → b → a (→ reads "waits for")',
  ],
];

describe('plan errors name their path once', () => {
  for (const [what, subtasks, expected] of cases) {
    it(what, async () => {
      const { file } = planFolder(root, tinyPlan({ subtasks }));
      const error = (await loadPlan(file).catch((e: unknown) => e)) as { message: string };
      expect(error.message).toBe(`${file}: ${expected}`);
      // However it is worded: no path followed by a longer form of itself.
      expect(error.message).not.toMatch(/(\b[\w.[\]]+): \1[.[]/);
    });
  }
});
