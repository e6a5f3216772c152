// `troupe validate` expands the analysis as `troupe run` would, so a glob that matches nothing
// fails it (E_PLAN_INVALID, exit 2) whenever it can know: a folder the plan fixes, or one from
// the input given with --input. A folder from an input it was not given is not guessed at: the
// plan is valid (exit 0) and stderr names what was not checked.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planFolder, scratch, tinyPlan, troupe } from '../cli/helpers.js';

const { root, remove } = scratch('troupe-validate-');
afterAll(remove);

const globStage = (forEach: Record<string, unknown>) =>
  tinyPlan({ stages: [{ name: 'read', needs: 'math', forEach: { glob: '*.txt', ...forEach } }] });

describe('troupe validate checks fan-outs', () => {
  it('a glob in the plan folder that matches nothing fails, as run does', async () => {
    const { file } = planFolder(root, globStage({}));
    for (const command of ['validate', 'run']) {
      const { code, stderr } = await troupe([command, file]);
      expect(code, command).toBe(2);
      expect(stderr).toMatch(
        /E_PLAN_INVALID: .*: analysis\.stages\[0\]\.forEach\.glob: "\*\.txt" matched no file in /,
      );
    }
  });

  it('a glob in a fixed cwd that matches nothing fails; one that matches passes, counted', async () => {
    const { dir, file } = planFolder(root, globStage({ cwd: 'data' }));
    mkdirSync(join(dir, 'data'));
    expect(await troupe(['validate', file])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/forEach\.glob: "\*\.txt" matched no file in .*data/),
    });
    writeFileSync(join(dir, 'data', 'a.txt'), 'a');
    const ok = await troupe(['validate', file]);
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    expect(ok.stdout).toMatch(/valid — 1 expert probed, analysis: 1 stage \(read\), 1 subtask\n$/);
  });

  it('a cwd from the input is checked on --input', async () => {
    const { dir, file } = planFolder(root, globStage({ cwd: '$input.dir' }));
    mkdirSync(join(dir, 'empty'));
    const input = join(dir, 'in.json');
    writeFileSync(input, JSON.stringify({ dir: 'empty' }));
    expect(await troupe(['validate', file, '--input', input])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/forEach\.glob: "\*\.txt" matched no file in .*empty/),
    });
    const stdin = await troupe(['validate', file, '--input', '-'], {
      stdin: JSON.stringify({ dir: 'nowhere' }),
      cwd: dir,
    });
    expect(stdin).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(
        /forEach\.cwd: "\$input\.dir" is .*nowhere, which does not exist/,
      ),
    });
  });

  it('a cwd from an input not given is not checked: valid, and stderr says what was not', async () => {
    const { file } = planFolder(root, globStage({ cwd: '$input.dir' }));
    const { code, stdout, stderr } = await troupe(['validate', file]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/valid — 1 expert probed, analysis: 1 stage \(read\)\n$/);
    expect(stderr).toBe(
      'troupe validate: not checked without an input (pass --input): analysis.stages[0].forEach.cwd ("$input.dir")\n',
    );
  });
});
