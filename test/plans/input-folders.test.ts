// A folder the run's input names for a glob (`cwd: "$input.dir"`) is relative to where it was
// written: the input file's folder for `--input in.json`, the working directory for `--input -`
// and for the library API.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPlan } from '../../dist/src/plans/plan.js';
import { planJsonSchema } from '../../dist/src/plans/schema.js';
import { planFolder, scratch, tinyPlan, troupe } from '../cli/helpers.js';

const { root, remove } = scratch('troupe-input-dir-');
afterAll(remove);

const plan = tinyPlan({
  stages: [{ name: 'read', needs: 'math', forEach: { glob: '*.txt', cwd: '$input.dir' } }],
});
const inputs = join(root, 'inputs');
const data = join(inputs, 'data');
let file: string;
beforeAll(() => {
  ({ file } = planFolder(root, plan));
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'a.txt'), 'a');
  writeFileSync(join(inputs, 'in.json'), JSON.stringify({ dir: 'data' }));
});

/** The file the run's one subtask was given, from `troupe run --json`. */
function pathRead(stdout: string): unknown {
  const report = JSON.parse(stdout) as { status: string; result: Record<string, unknown> };
  expect(report.status).toBe('done');
  const output = report.result['read:a.txt'] as { input: { item: { path: string } } };
  return output.input.item.path;
}

describe('"$input.dir" resolves against where the input was written', () => {
  it('--input in.json: against the input file’s folder, wherever troupe runs', async () => {
    const ran = await troupe(['run', file, '--input', join('inputs', 'in.json'), '--json'], {
      cwd: root,
    });
    expect(ran.code, ran.stderr).toBe(0);
    expect(pathRead(ran.stdout)).toBe(join(data, 'a.txt'));
  });

  it('--input -: against the working directory', async () => {
    const ran = await troupe(['run', file, '--input', '-', '--json'], {
      cwd: inputs,
      stdin: JSON.stringify({ dir: 'data' }),
    });
    expect(ran.code, ran.stderr).toBe(0);
    expect(pathRead(ran.stdout)).toBe(join(data, 'a.txt'));
  });

  it('the library API: against the working directory', async () => {
    const compiled = await loadPlan(file);
    const subtasks = await compiled.plan.analyze({ dir: relative(process.cwd(), data) });
    expect(subtasks.map((s) => (s.input as { item: { path: string } }).item.path)).toEqual([
      join(data, 'a.txt'),
    ]);
  });

  it('the schema says so', () => {
    const schema = JSON.stringify(planJsonSchema());
    expect(schema).toMatch(/relative to the input file's folder \(troupe run --input in\.json\)/);
  });
});
