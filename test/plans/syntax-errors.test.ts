// A plan or input file that is not well-formed JSON or YAML is placed by line and column
// (`plan.json:7:12: ...`, as editors and compilers write it), and a JSON file that starts with
// a byte-order mark is JSON.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPlan } from '../../dist/src/plans/plan.js';
import { planFolder, scratch, tinyPlan, troupe } from '../cli/helpers.js';

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

  it('a plan nested more than 256 levels deep is refused, YAML before it is composed', async () => {
    // Composing YAML this deep overflows the stack, and on Node 20 doing so twice in a process
    // can crash it (V8 fails to compile a regular expression there) instead of throwing.
    const dashes = planFolder(root, `${'- '.repeat(2_000)}x`, 'plan.yaml');
    for (let i = 0; i < 3; i++)
      expect(await message(dashes.file)).toBe(
        `${dashes.file}:1:513: nested more than 256 levels deep (the most a plan file may)`,
      );
    const flow = planFolder(root, `${'['.repeat(2_000)}${']'.repeat(2_000)}`, 'plan.yml');
    expect(await message(flow.file)).toMatch(/:1:257: nested more than 256 levels deep/);
    const json = planFolder(root, {
      ...tinyPlan(),
      inputDefaults: JSON.parse(`${'{"a":'.repeat(1_000)}1${'}'.repeat(1_000)}`),
    });
    expect(await message(json.file)).toBe(
      `${json.file}: nested more than 256 levels deep (the most a plan file may)`,
    );
  });

  it('data the schema library throws on is E_PLAN_INVALID too', async () => {
    // zod 4 runs a length check on `{ "length": {} }`, and converting {} to a number throws.
    const { file } = planFolder(root, { ...tinyPlan(), name: { length: { toString: {} } } });
    expect(await message(file)).toMatch(/: the plan cannot be checked against the schema: /);
  });

  it('loadPlan refuses a file that is not a string, and options it does not know', async () => {
    const { file } = planFolder(root, tinyPlan());
    for (const [args, text] of [
      [
        [Symbol('x')],
        /^loadPlan\(file\): expected the path of a plan file \(a string\), got a symbol/,
      ],
      [
        [file, { allowOutisde: true }],
        /^loadPlan\(options\)\.allowOutisde: unknown key; did you mean "allowOutside"\?/,
      ],
      [
        [file, { allowOutside: 'yes' }],
        /^loadPlan\(options\)\.allowOutside: expected a boolean, got "yes"/,
      ],
    ] as const) {
      await expect(
        (loadPlan as (...a: unknown[]) => Promise<unknown>)(...args),
      ).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        message: expect.stringMatching(text),
      });
    }
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
