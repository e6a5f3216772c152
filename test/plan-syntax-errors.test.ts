// A plan file that is not well-formed JSON or YAML is placed by line and column
// (`plan.json:7:12: ...`, as editors and compilers write it), and a JSON file that starts with
// a byte-order mark is JSON.
import { afterAll, describe, expect, it } from 'vitest';
import { loadPlan } from '../dist/templates/plan.js';
import { planFolder, scratch, tinyPlan } from './cli-helpers.js';

const { root, remove } = scratch('troupe-syntax-');
afterAll(remove);

const message = async (file: string): Promise<string> => {
  const error = await loadPlan(file).then(
    () => undefined,
    (e: unknown) => e as { code: string; message: string },
  );
  expect(error?.code).toBe('E_PLAN_INVALID');
  return error?.message ?? '';
};

describe('malformed plan files', () => {
  it('JSON: line and column of the first error, and what was expected there', async () => {
    const text = JSON.stringify(tinyPlan(), null, 2).replace('"math": 3', '"math": 3,');
    const { file } = planFolder(root, text);
    // The trailing comma is on line 8; the "}" it meets is at column 7 of line 9.
    expect(text.split('\n')[8]).toBe('      }');
    expect(await message(file)).toBe(
      `${file}:9:7: malformed JSON: expected a property after ',', got '}' (JSON has no trailing commas)`,
    );
  });

  it('JSON: an unfinished file is placed at its end', async () => {
    const { file } = planFolder(root, '{\n  "experts": [');
    expect(await message(file)).toBe(
      `${file}:2:15: malformed JSON: expected a value, got the end of the file`,
    );
  });

  it('YAML: line and column from the parser', async () => {
    const { file } = planFolder(root, 'name: x\nexperts:\n  - name: [unclosed\n', 'plan.yaml');
    expect(await message(file)).toMatch(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4:1: malformed YAML: \\S`),
    );
    const dup = planFolder(root, 'name: a\nname: b\n', 'plan.yaml');
    expect(await message(dup.file)).toBe(
      `${dup.file}:2:1: malformed YAML: Map keys must be unique`,
    );
  });

  it('JSON that starts with a byte-order mark loads', async () => {
    const { file } = planFolder(root, `\uFEFF${JSON.stringify(tinyPlan())}`);
    await expect(loadPlan(file)).resolves.toMatchObject({ name: 'tiny' });
  });
});
