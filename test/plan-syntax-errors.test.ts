// A plan or input file that is not well-formed JSON or YAML is placed by line and column
// (`plan.json:7:12: ...`, as editors and compilers write it), and a JSON file that starts with
// a byte-order mark is JSON.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPlan } from '../dist/templates/plan.js';
import { planFolder, scratch, tinyPlan, troupe } from './cli-helpers.js';

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

  it('troupe run --input: a malformed input file is placed too, and a BOM is fine', async () => {
    const { file } = planFolder(root, tinyPlan());
    const bad = join(root, 'bad-input.json');
    writeFileSync(bad, '{\n  "n": 1\n  "m": 2\n}');
    const ran = await troupe(['run', file, '--input', bad]);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(
      /^troupe run: --input: .*bad-input\.json:3:3: not JSON: expected ',' or '}' after a property value, got '"'/,
    );
    const bom = join(root, 'bom-input.json');
    writeFileSync(bom, '\uFEFF{ "n": 1 }');
    expect(await troupe(['run', file, '--input', bom])).toMatchObject({ code: 0 });
  });
});
