// A plan's numbers are bounded as the library bounds them (src/validate.ts): threads, durations
// and attempts past their bound are refused at load, naming the field and the bound, and the
// JSON Schema says the same to an editor.
import { afterAll, describe, expect, it } from 'vitest';
import { loadPlan } from '../../dist/src/plans/plan.js';
import { planJsonSchema } from '../../dist/src/plans/schema.js';
import { MAX_ATTEMPTS, MAX_DURATION_MS, MAX_INT32, MAX_THREADS } from '../../dist/src/validate.js';
import { planFolder, scratch, tinyPlan } from '../cli/helpers.js';

const { root, remove } = scratch('troupe-bounds-');
afterAll(remove);

type Plan = ReturnType<typeof tinyPlan> & Record<string, unknown>;
const at =
  (path: (string | number)[], value: unknown) =>
  (plan: Plan): Plan => {
    let node = plan as Record<string | number, unknown>;
    for (const key of path.slice(0, -1)) {
      node[key] ??= {};
      node = node[key] as Record<string | number, unknown>;
    }
    node[path.at(-1) as string | number] = value;
    return plan;
  };

const duration = `expected a duration in ms from 0 to ${MAX_DURATION_MS}`;
const above0 = `expected a duration in ms above 0, at most ${MAX_DURATION_MS}`;
const cases: [string, (plan: Plan) => Plan, string][] = [
  [
    'policies.threads',
    at(['policies', 'threads'], 1_000_000),
    `expected an integer from 1 to ${MAX_THREADS}`,
  ],
  ['policies.timeoutMs', at(['policies', 'timeoutMs'], MAX_DURATION_MS + 1), duration],
  ['policies.deadlineMs', at(['policies', 'deadlineMs'], 3e9), above0],
  ['policies.askTimeoutMs', at(['policies', 'askTimeoutMs'], 3e9), above0],
  ['policies.cancelGraceMs', at(['policies', 'cancelGraceMs'], 3e9), duration],
  ['policies.retryBackoffMs', at(['policies', 'retryBackoffMs'], 3e9), duration],
  ['policies.maxRetryBackoffMs', at(['policies', 'maxRetryBackoffMs'], 3e9), duration],
  ['policies.supervision.windowMs', at(['policies', 'supervision', 'windowMs'], 3e9), duration],
  [
    'policies.supervision.restartBackoffMs',
    at(['policies', 'supervision', 'restartBackoffMs'], 3e9),
    duration,
  ],
  [
    'policies.supervision.maxRestartBackoffMs',
    at(['policies', 'supervision', 'maxRestartBackoffMs'], 3e9),
    duration,
  ],
  [
    'policies.supervision.intensity',
    at(['policies', 'supervision', 'intensity'], MAX_INT32 + 1),
    `expected an integer from 1 to ${MAX_INT32}`,
  ],
  [
    'policies.attempts',
    at(['policies', 'attempts'], MAX_ATTEMPTS + 1),
    `expected an integer from 1 to ${MAX_ATTEMPTS}`,
  ],
  ['experts[0].timeoutMs', at(['experts', 0, 'timeoutMs'], 3e9), duration],
  [
    'experts[0].attempts',
    at(['experts', 0, 'attempts'], MAX_ATTEMPTS + 1),
    `expected an integer from 1 to ${MAX_ATTEMPTS}`,
  ],
  [
    'experts[0].concurrency',
    at(['experts', 0, 'concurrency'], MAX_INT32 + 1),
    `expected an integer from 1 to ${MAX_INT32}`,
  ],
  ['analysis.stages[0].timeoutMs', at(['analysis', 'stages', 0, 'timeoutMs'], 3e9), duration],
  [
    'analysis.stages[0].attempts',
    at(['analysis', 'stages', 0, 'attempts'], 1e6),
    `expected an integer from 1 to ${MAX_ATTEMPTS}`,
  ],
  [
    'analysis.subtasks[0].timeoutMs',
    (plan) => ({
      ...plan,
      analysis: { subtasks: [{ id: 'a', needs: 'math', timeoutMs: 3e9 }] },
    }),
    duration,
  ],
];

describe('plan numbers past their bound are refused, naming the bound', () => {
  for (const [path, mutate, expected] of cases) {
    it(path, async () => {
      const { file } = planFolder(root, mutate(tinyPlan() as Plan));
      await expect(loadPlan(file)).rejects.toMatchObject({
        code: 'E_PLAN_INVALID',
        message: expect.stringContaining(`${path}: ${expected}`),
      });
    });
  }

  it('the bounds themselves load', async () => {
    const plan = tinyPlan() as Plan;
    plan.policies = {
      threads: MAX_THREADS,
      timeoutMs: MAX_DURATION_MS,
      deadlineMs: MAX_DURATION_MS,
      attempts: MAX_ATTEMPTS,
      supervision: { intensity: MAX_INT32, windowMs: MAX_DURATION_MS },
    } as never;
    const { file } = planFolder(root, plan);
    await expect(loadPlan(file)).resolves.toMatchObject({
      troupeOptions: { threads: MAX_THREADS, attempts: MAX_ATTEMPTS },
    });
  });

  it('the JSON Schema carries them', () => {
    const schema = planJsonSchema() as {
      properties: { policies: { properties: Record<string, { maximum?: number }> } };
    };
    const policies = schema.properties.policies.properties;
    expect(policies.threads?.maximum).toBe(MAX_THREADS);
    expect(policies.deadlineMs?.maximum).toBe(MAX_DURATION_MS);
    expect(policies.attempts?.maximum).toBe(MAX_ATTEMPTS);
  });
});
