// Plan files for the fuzz tests: a plan near the schema (most fields right, some wrong, keys
// such as `__proto__` and `constructor` as fields, ids and skills), written as JSON or YAML
// text and then perhaps mangled (cut short, a byte changed, a BOM, anchors, tags, deep nesting).
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify as toYaml } from 'yaml';
import { KEYS, numberArb } from './values.js';

/**
 * JSON data; objects are built with own fields, so `__proto__` is a field as JSON.parse makes it.
 * A field whose value is undefined is left out.
 */
type Json = null | boolean | number | string | Json[] | { entries: [string, Json | undefined][] };

/** The value a Json recipe stands for. */
export function toValue(json: Json): unknown {
  if (json === null || typeof json !== 'object') return json;
  if (Array.isArray(json)) return json.map(toValue);
  const out = {};
  for (const [key, value] of json.entries)
    if (value !== undefined)
      Object.defineProperty(out, key, {
        value: toValue(value),
        enumerable: true,
        writable: true,
        configurable: true,
      });
  return out;
}

const obj = (...entries: [string, Json][]): Json => ({ entries });

const keyArb = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...KEYS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 5 }) },
);
const leafArb: fc.Arbitrary<Json> = fc.oneof(
  numberArb.map((n) => (Number.isFinite(n) ? n : 0)),
  fc.string({ maxLength: 8 }),
  fc.constantFrom(...KEYS, '$input.dir', '$input.files', '$input.__proto__', '$input.constructor'),
  fc.boolean(),
  fc.constant(null),
);
export const jsonArb: fc.Arbitrary<Json> = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', maxDepth: 3 },
    { weight: 4, arbitrary: leafArb },
    {
      weight: 2,
      arbitrary: fc
        .array(fc.tuple(keyArb, tie('json')), { maxLength: 3 })
        .map((entries): Json => ({ entries })),
    },
    { weight: 1, arbitrary: fc.array(tie('json'), { maxLength: 3 }) },
  ),
})).json;

/** An object of some of `fields` (the required ones always), now and then with a stray key. */
function fieldsArb(
  fields: Record<string, fc.Arbitrary<Json>>,
  required: string[],
  stray: number,
): fc.Arbitrary<Json> {
  const keys = Object.keys(fields);
  return fc
    .record({
      present: fc.subarray(keys.filter((k) => !required.includes(k))),
      values: fc.record(fields),
      extra: fc.oneof(
        { weight: stray, arbitrary: fc.constant<[string, Json][]>([]) },
        { weight: 1, arbitrary: fc.array(fc.tuple(keyArb, jsonArb), { maxLength: 1 }) },
      ),
    })
    .map(({ present, values, extra }) => ({
      entries: [
        ...keys
          .filter((k) => required.includes(k) || present.includes(k))
          .map((k): [string, Json] => [k, values[k] as Json]),
        ...extra,
      ],
    }));
}

/**
 * Plans near the schema: each field right `odds` times in `odds + 1` (wrong ones are any JSON,
 * or a value of the right type that fails later: a missing module, a folder outside the plan).
 */
export function planArbOf(odds: number): fc.Arbitrary<Json> {
  const or = (valid: fc.Arbitrary<Json>, ...wrong: Json[]): fc.Arbitrary<Json> =>
    fc.oneof(
      { weight: odds, arbitrary: valid },
      {
        weight: 1,
        arbitrary: wrong.length === 0 ? jsonArb : fc.oneof(jsonArb, fc.constantFrom(...wrong)),
      },
    );
  const fields = (f: Record<string, fc.Arbitrary<Json | undefined>>, required: string[] = []) =>
    fieldsArb(f as Record<string, fc.Arbitrary<Json>>, required, odds * 2);
  /** A field present one time in four. */
  const rarely = (arb: fc.Arbitrary<Json>): fc.Arbitrary<Json | undefined> =>
    fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });

  const nameArb = or(fc.constantFrom('worker', 'w2', 'toString', 'constructor', 'a.b-c'), '1x', '');
  const moduleArb = or(
    fc.constantFrom('./work.mjs'),
    './probe-fails.mjs',
    './missing.mjs',
    '../outside.mjs',
    '/etc/hostname',
    'file:///nonexistent.mjs',
    'file://host/x.mjs',
    'some-package',
    './data',
    '',
  );
  const mainExportArb = fields(
    {
      module: or(fc.constant('./main.mjs'), './broken.mjs', './missing.mjs', '../outside.mjs'),
      export: or(
        fc.constantFrom('integrate', 'validate', 'onMessage', 'check'),
        'notFn',
        '__proto__',
        'constructor',
        'then',
        'nope',
      ),
    },
    ['module'],
  );
  const levelArb = or(fc.constantFrom(1, 2, 3, 5), 0, 6, 2.5);
  const skillsArb = or(
    fc
      .array(
        fc.tuple(fc.constantFrom('math', 'text', '__proto__', 'constructor', 'toString'), levelArb),
        {
          minLength: 1,
          maxLength: 3,
        },
      )
      .map((entries): Json => ({ entries: [['math', 3], ['constructor', 2], ...entries] })),
  );
  const expertArb = fields(
    {
      name: nameArb,
      module: moduleArb,
      skills: skillsArb,
      concurrency: or(fc.constantFrom(1, 4), 0),
      lookahead: or(fc.boolean()),
      timeoutMs: or(fc.constantFrom(0, 10_000), -1, 2 ** 31),
      attempts: or(fc.constantFrom(1, 2), 65_536),
      batch: or(fc.constantFrom<Json>('auto', 1), 253),
      messages: rarely(or(fc.constant('heavy'), 'light')),
      onMessage: rarely(mainExportArb),
      validate: rarely(mainExportArb),
    },
    ['name', 'module', 'skills'],
  );
  // A skill "__proto__" is valid, but the schema library drops such a key from `skills`.
  const needsArb = or(
    fc.constantFrom('math', 'math', 'math', 'constructor'),
    'toString',
    'nope',
    '',
    '__proto__',
  );
  const idArb = or(
    fc.constantFrom('a', 'b', '__proto__', 'constructor', 'prototype', 'toString'),
    '',
  );
  const subtaskArb = fields(
    {
      id: idArb,
      needs: needsArb,
      complexity: or(fc.constantFrom(1, 2), 6),
      input: jsonArb,
      after: rarely(or(fc.array(idArb, { maxLength: 2 }))),
      timeoutMs: or(fc.constant(5_000)),
      attempts: or(fc.constant(2)),
    },
    ['id', 'needs'],
  );
  const stageNameArb = or(fc.constantFrom('one', 'two', 'three', 'toString', 'constructor'), '_x');
  const rangeArb = fields(
    {
      from: or(fc.constantFrom(0, 1, -3, 2 ** 53 - 2), 2 ** 53, 0.5),
      to: or(fc.constantFrom(3, 4, 0, 2 ** 53 - 1), 1e21),
      step: or(fc.constantFrom(1, 2, 2 ** 52), 0, -1),
    },
    ['from', 'to'],
  );
  const forEachArb = fc.oneof(
    fields({ range: rangeArb }, ['range']),
    fields(
      {
        items: or(
          fc.constantFrom('.', 'files', 'a.b'),
          'constructor',
          '__proto__',
          'files.length',
          '',
        ),
      },
      ['items'],
    ),
    fields(
      {
        glob: or(
          fc.constantFrom('**/*.txt', '*.md', '**/*', '{a,b}.txt'),
          '../*',
          '/etc/*',
          'nothing-*',
        ),
        cwd: or(
          fc.constantFrom('data', './data', '$input.dir'),
          'outside-link',
          '..',
          '/tmp',
          '$input.constructor',
          '$input.__proto__',
          'missing',
        ),
        maxFiles: or(fc.constantFrom(1, 2), 0),
        maxBytes: or(fc.constantFrom(1, 100_000), 0),
      },
      ['glob'],
    ),
  );
  const stageArb = fields(
    {
      name: stageNameArb,
      needs: needsArb,
      complexity: or(fc.constantFrom(1, 2)),
      after: rarely(or(fc.array(stageNameArb, { maxLength: 2 }))),
      afterEach: rarely(or(fc.array(stageNameArb, { maxLength: 1 }))),
      forEach: forEachArb,
      input: fc.oneof(
        jsonArb,
        fc.constantFrom<Json>(
          '$input.files',
          '$input.constructor',
          obj(['x', '$input.dir'], ['__proto__', obj(['polluted', 'yes'])]),
        ),
      ),
      timeoutMs: or(fc.constant(5_000)),
      attempts: or(fc.constant(1)),
    },
    ['name', 'needs'],
  );
  const analysisArb = or(
    fc.oneof(
      fields({ subtasks: or(fc.array(subtaskArb, { minLength: 1, maxLength: 3 }), []) }, [
        'subtasks',
      ]),
      fields({ stages: or(fc.array(stageArb, { minLength: 1, maxLength: 3 }), []) }, ['stages']),
    ),
  );
  const integrationArb = fc.oneof(
    fields(
      {
        builtin: or(fc.constantFrom('collect', 'merge-objects', 'concat'), '__proto__', 'toString'),
      },
      ['builtin'],
    ),
    mainExportArb,
  );
  const policiesArb = fields({
    threads: or(fc.constant(1), 1025, 0),
    // Not above 100 000: a plan that allows 2^53 subtasks and a range of as many runs the host
    // out of memory (the bound on subtasks per run is issue 15, item 4).
    maxQueuedSubtasks: fc.oneof(
      { weight: odds, arbitrary: fc.constantFrom(100, 100_000) },
      { weight: 1, arbitrary: fc.constantFrom<Json>(0, -1, 1.5, 'many', null) },
    ),
    timeoutMs: or(fc.constant(5_000)),
    attempts: or(fc.constant(1), 65_536),
    retryBackoffMs: or(fc.constant(1)),
    maxRetryBackoffMs: or(fc.constant(2)),
    deadlineMs: or(fc.constant(5_000), 0),
    askTimeoutMs: or(fc.constant(1_000), 0),
    cancelGraceMs: or(fc.constant(50)),
    supervision: fields({
      intensity: or(fc.constant(5), 0),
      windowMs: or(fc.constant(1_000)),
      maxProbeFailures: or(fc.constant(1)),
    }),
  });
  return or(
    fields(
      {
        $schema: or(fc.constant('https://example.invalid/plan.json')),
        name: or(fc.constantFrom('fuzz', '__proto__'), ''),
        experts: or(fc.array(expertArb, { minLength: 1, maxLength: 2 }), []),
        analysis: analysisArb,
        integration: integrationArb,
        validation: mainExportArb,
        policies: policiesArb,
        inputDefaults: or(
          fc.constantFrom<Json>(
            obj(['dir', 'data']),
            obj(['files', ['a', 'b']]),
            obj(['__proto__', obj(['polluted', 'yes'])], ['dir', 'data']),
            obj(['constructor', obj(['prototype', obj(['polluted', 'yes'])])]),
          ),
        ),
      },
      ['experts', 'analysis'],
    ),
  );
}

/** The run's input, as JSON data (plain, or with prototype keys). */
export const inputArb: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(
    obj(['dir', 'data']),
    obj(['dir', 'data'], ['files', [1, 2]]),
    obj(['__proto__', obj(['polluted', 'yes'], ['dir', '/etc'])], ['files', ['x']]),
    obj(['constructor', obj(['prototype', obj(['polluted', 'yes'])])]),
    obj(['dir', obj(['__proto__', obj(['polluted', 'yes'])])]),
  ),
  jsonArb,
);

/** How the text is written, and what is done to it afterwards. */
export type Mangle =
  | { kind: 'none' }
  | { kind: 'cut'; at: number }
  | { kind: 'byte'; at: number; char: string }
  | { kind: 'bom' }
  | { kind: 'raw'; text: string };

const YAML_SNIPPETS = [
  'a: &x {b: 1}\nc: *x\n',
  'experts: &e\n  - name: w\n    module: ./work.mjs\n    skills: {math: 1}\nanalysis:\n  subtasks:\n    - {id: a, needs: math}\nagain: *e\n',
  'experts:\n  - name: w\n    module: ./work.mjs\n    skills: {math: 1}\n    <<: {concurrency: 2}\nanalysis: {subtasks: [{id: __proto__, needs: math}]}\n',
  'experts: [{name: w, module: ./work.mjs, skills: !!set {math}}]\nanalysis: {subtasks: [{id: a, needs: math}]}\n',
  'experts: [{name: w, module: !!binary aGVsbG8=, skills: {math: 1}}]\n',
  'name: !!js/function "() => 1"\n',
  '---\na: 1\n---\nb: 2\n',
  '? [a, b]\n: 1\n',
  '__proto__: {polluted: yes}\nexperts: []\n',
  `a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n`,
  `${'['.repeat(2_000)}${']'.repeat(2_000)}`,
  `${'- '.repeat(2_000)}x`,
  '\t- tab\n',
  'key: "unterminated\n',
  '',
];
const JSON_SNIPPETS = [
  `${'['.repeat(2_000)}${']'.repeat(2_000)}`,
  `{"experts": [], "inputDefaults": ${'{"a": '.repeat(2_000)}1${'}'.repeat(2_000)}}`,
  '{"experts": [], "experts": [{}]}',
  '{"__proto__": {"polluted": "yes"}, "experts": [], "analysis": {}}',
  '{"constructor": {"prototype": {"polluted": "yes"}}}',
  '\uFEFF{"experts": 1}',
  '{"a": 1,}',
  '{"a": 1e999999}',
  '{"a": "\\ud800"}',
  'null',
  '[]',
  '"a string"',
  '',
];

export const mangleArb: fc.Arbitrary<Mangle> = fc.oneof(
  { weight: 12, arbitrary: fc.constant<Mangle>({ kind: 'none' }) },
  { weight: 2, arbitrary: fc.nat().map((at): Mangle => ({ kind: 'cut', at })) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        at: fc.nat(),
        char: fc.constantFrom('"', '{', '}', ':', ',', '\n', '\u0000', '#', '&', '*', '!', ' '),
      })
      .map((r): Mangle => ({ kind: 'byte', ...r })),
  },
  { weight: 1, arbitrary: fc.constant<Mangle>({ kind: 'bom' }) },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.constantFrom(...YAML_SNIPPETS, ...JSON_SNIPPETS),
        fc.string({ unit: 'binary', maxLength: 40 }),
      )
      .map((text): Mangle => ({ kind: 'raw', text })),
  },
);

/** The plan's text, in `format`, mangled as told. */
export function planText(plan: Json, format: 'json' | 'yaml', mangle: Mangle): string {
  if (mangle.kind === 'raw') return mangle.text;
  const value = toValue(plan);
  const text = format === 'json' ? JSON.stringify(value, null, 2) : toYaml(value);
  switch (mangle.kind) {
    case 'none':
      return text;
    case 'bom':
      return `\uFEFF${text}`;
    case 'cut':
      return text.slice(0, mangle.at % (text.length + 1));
    case 'byte': {
      const at = mangle.at % (text.length + 1);
      return text.slice(0, at) + mangle.char + text.slice(at + 1);
    }
  }
}

/**
 * A scratch folder for a fuzz file, in memory where there is a tmpfs (/dev/shm): thousands of
 * small writes cost ~2 ms each on this machine's disk and ~10 µs there.
 */
export function scratchFolder(prefix: string): { root: string; remove: () => void } {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const root = mkdtempSync(join(base, prefix));
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** The folder every case's plan is written to: its modules, data for globs, a link outside. */
export function planFolder(root: string): string {
  const dir = join(root, 'plan');
  mkdirSync(join(dir, 'data', 'sub'), { recursive: true });
  writeFileSync(
    join(dir, 'work.mjs'),
    'export default (input) => input;\nexport const probe = () => true;\n',
  );
  writeFileSync(
    join(dir, 'probe-fails.mjs'),
    "export default (x) => x;\nexport function probe() { throw new Error('no'); }\n",
  );
  writeFileSync(
    join(dir, 'main.mjs'),
    [
      'export const integrate = (contributions) => contributions.length;',
      'export const validate = () => true;',
      "export const check = () => 'a reason';",
      'export const onMessage = (msg) => [msg];',
      'export const notFn = 1;',
      'export default () => true;',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'broken.mjs'), "throw new Error('broken on load');\n");
  writeFileSync(join(root, 'outside.mjs'), 'export default (x) => x;\n');
  writeFileSync(join(dir, 'data', 'a.txt'), 'a\n');
  writeFileSync(join(dir, 'data', 'b.md'), 'b\n');
  writeFileSync(join(dir, 'data', 'sub', 'c.txt'), 'c\n');
  symlinkSync(root, join(dir, 'outside-link'));
  return dir;
}
