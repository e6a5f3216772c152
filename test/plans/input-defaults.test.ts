// A plan's `inputDefaults` are the run's input fields when the input leaves them out: the folder
// audit plan runs with no --input on its own folder, and a default folder is relative to the
// plan file (it was written there), while the input's own fields win.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPlan } from '../../dist/src/plans/plan.js';
import { RunReportSchema } from '../../dist/src/plans/schema.js';
import { auditPlan, planFolder, repoRoot, scratch, tinyPlan, troupe } from '../cli/helpers.js';

const { root, remove } = scratch('troupe-defaults-');
afterAll(remove);

describe('inputDefaults', () => {
  it('troupe run of the folder audit plan with no --input audits the example’s own folder', async () => {
    const ran = await troupe(['run', auditPlan, '--threads', '2', '--json'], { cwd: repoRoot });
    expect(ran.code, ran.stderr).toBe(0);
    const report = RunReportSchema.parse(JSON.parse(ran.stdout));
    const result = report.result as { dir: string; rows: { file: string }[] };
    expect(result.dir).toBe(dirname(auditPlan));
    expect(result.rows.map((r) => r.file)).toContain('audit.plan.yaml');
    expect(report.quality).toEqual({ complete: true });
  });

  it('a default folder is relative to the plan file; the input’s fields win; objects merge', async () => {
    const plan = {
      ...tinyPlan({
        stages: [
          {
            name: 'read',
            needs: 'math',
            forEach: { glob: '*.txt', cwd: '$input.dir' },
            input: { scale: '$input.options.scale', tag: '$input.options.tag' },
          },
        ],
      }),
      inputDefaults: { dir: 'mine', options: { scale: 2, tag: 'default' } },
    };
    const { dir, file } = planFolder(root, plan);
    mkdirSync(join(dir, 'mine'));
    writeFileSync(join(dir, 'mine', 'a.txt'), 'a');
    const compiled = await loadPlan(file);
    const [fromDefaults] = await compiled.plan.analyze(undefined);
    expect(fromDefaults?.input).toEqual({
      scale: 2,
      tag: 'default',
      item: { path: join(dir, 'mine', 'a.txt'), file: 'a.txt' },
    });
    const theirs = join(root, 'theirs');
    mkdirSync(theirs);
    writeFileSync(join(theirs, 'b.txt'), 'b');
    const [fromInput] = await compiled.plan.analyze({ dir: theirs, options: { tag: 'given' } });
    expect(fromInput?.input).toEqual({
      scale: 2,
      tag: 'given',
      item: { path: join(theirs, 'b.txt'), file: 'b.txt' },
    });
  });

  it('an input field "__proto__" stays a field when merged over the defaults; "$input" reads own fields only', async () => {
    const plan = {
      ...tinyPlan({
        stages: [{ name: 'one', needs: 'math', input: { tag: '$input.options.tag' } }],
      }),
      inputDefaults: { options: { tag: 'default' } },
    };
    const compiled = await loadPlan(planFolder(root, plan).file);
    const input = JSON.parse('{ "__proto__": { "polluted": "yes" }, "options": { "tag": "t" } }');
    const resolved = compiled.resolveInput(input) as Record<string, unknown>;
    expect(Object.getPrototypeOf(resolved)).toBe(Object.prototype);
    expect(Object.hasOwn(resolved, '__proto__')).toBe(true);
    expect(resolved.polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const [subtask] = await compiled.plan.analyze(input);
    expect(subtask?.input).toEqual({ tag: 't' });
    // An inherited property is not a field of the input.
    const inherited = await loadPlan(
      planFolder(root, {
        ...tinyPlan({
          stages: [{ name: 'one', needs: 'math', input: { x: '$input.constructor' } }],
        }),
      }).file,
    );
    await expect(inherited.plan.analyze({})).rejects.toMatchObject({
      code: 'E_PLAN_INVALID',
      message: expect.stringMatching(
        /"\$input\.constructor": the run's input has no field "constructor"/,
      ),
    });
  });

  it('must be an object', async () => {
    const { file } = planFolder(root, { ...tinyPlan(), inputDefaults: ['dir'] });
    await expect(loadPlan(file)).rejects.toMatchObject({
      code: 'E_PLAN_INVALID',
      message: expect.stringMatching(/inputDefaults: expected an object of input field → value/),
    });
  });
});
