// Fuzzing the command line: argument lists of commands, flags (known, near misses, prototype
// keys, with and without values), numbers and paths, run through the in-process entry `main`.
// The answer is always an exit code (0, 1 or 2) with a message for 1 and 2, never a rejection.
// `troupe bench` is always given a scope that does not exist, so that no suite runs.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../dist/src/cli/main.js';
import { bin, runProcess } from '../cli/helpers.js';
import { answer, CASES, fuzz, PROPERTY_LIMIT_MS, watchStrays } from './harness.js';
import { scratchFolder } from './plan-text.js';
import { KEYS } from './values.js';

watchStrays();

const FILE = 'cli.test.ts';

const { root, remove } = scratchFolder('troupe-fuzz-cli-');
afterAll(remove);
const dir = join(root, 'plans');
mkdirSync(join(dir, 'data'), { recursive: true });
writeFileSync(join(dir, 'work.mjs'), 'export default (input) => input ?? null;\n');
writeFileSync(join(dir, 'data', 'a.txt'), 'a\n');
writeFileSync(join(root, 'outside.mjs'), 'export default (x) => x;\n');
const plan = (name: string, body: unknown) => {
  const file = join(dir, name);
  writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body));
  return file;
};
const tiny = {
  experts: [{ name: 'w', module: './work.mjs', skills: { math: 1 } }],
  analysis: { subtasks: [{ id: '__proto__', needs: 'math', input: { n: 1 } }] },
  policies: { threads: 1 },
};
const VALID = [
  plan('valid.json', tiny),
  plan(
    'valid.yaml',
    'experts: [{name: w, module: ./work.mjs, skills: {math: 1}}]\nanalysis: {stages: [{name: s, needs: math, forEach: {items: files}}]}\ninputDefaults: {files: [1]}\npolicies: {threads: 1}\n',
  ),
];
const PLANS = [
  plan('schema.json', { experts: 1 }),
  plan('syntax.json', '{"experts": ['),
  plan('syntax.yaml', 'experts: [unclosed\n'),
  plan('outside.json', {
    ...tiny,
    experts: [{ name: 'w', module: '../outside.mjs', skills: { math: 1 } }],
  }),
  plan('missing.json', {
    ...tiny,
    experts: [{ name: 'w', module: './missing.mjs', skills: { math: 1 } }],
  }),
  plan('needs.json', { ...tiny, analysis: { subtasks: [{ id: 'a', needs: 'constructor' }] } }),
  plan('plan.txt', 'text'),
  plan('deep.yaml', `${'- '.repeat(2_000)}x`),
  join(dir, 'data'),
  join(dir, 'nope.json'),
  '',
  '.',
];
const INPUTS = [
  plan('input.json', { files: [1, 2] }),
  plan('proto-input.json', '{"__proto__": {"polluted": "yes"}, "files": [3]}'),
  plan('bad-input.json', '{"files": '),
  join(dir, 'data'),
  join(dir, 'no-input.json'),
];

const COMMANDS = ['run', 'validate', 'experts', 'schema', 'info', 'bench'];
const FLAGS = [
  '--input',
  '--threads',
  '--json',
  '--allow-outside',
  '--help',
  '-h',
  '--version',
  '-v',
  '--scope',
  '--quick',
  '--rounds',
  '--suite',
  '--compare',
  '--inptu',
  '--thread',
  '--jsno',
  '-input',
  '-x',
  '-hv',
  '--',
  '--json=1',
  '--input=',
  '--threads=0',
  '--threads=1',
  '--threads=abc',
  '--help=no',
  ...KEYS.map((k) => `--${k}`),
  ...KEYS.map((k) => `--${k}=1`),
];
const NUMBERS = [
  '0',
  '1',
  '2',
  '-1',
  '1e3',
  '0x2',
  '1.5',
  'NaN',
  'Infinity',
  ' 1 ',
  '1025',
  '9'.repeat(30),
];

const tokenArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...FLAGS) },
  { weight: 4, arbitrary: fc.constantFrom(...PLANS) },
  { weight: 2, arbitrary: fc.constantFrom(...INPUTS) },
  { weight: 2, arbitrary: fc.constantFrom(...NUMBERS) },
  { weight: 2, arbitrary: fc.constantFrom(...COMMANDS, ...KEYS, 'valdate', 'rn', '-') },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);
const argvArb = fc.tuple(
  fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...COMMANDS) },
    { weight: 1, arbitrary: tokenArb },
  ),
  fc.array(tokenArb, { maxLength: 6 }),
  // Now and then a plan that loads: then the command runs, validates or lists for real.
  fc.oneof(
    { weight: 40, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom(...VALID) },
  ),
);

/**
 * What a case may not do in this process: read standard input (`--input -`), start more than
 * two threads, or run a benchmark suite (every bench command gets a scope that does not exist).
 */
function tame(command: string, rest: string[], valid: string | undefined): string[] {
  const argv = [command, ...rest];
  if (valid !== undefined) argv.splice(1, 0, valid);
  const tamed = argv.map((token, i) => {
    if (token === '-' && argv[i - 1] === '--input') return join(dir, 'no-input.json');
    if (token === '--input=-') return '--input=nothing';
    if (argv[i - 1] === '--threads' && Number(token) > 2) return '2';
    const threads = /^--threads=(.*)$/s.exec(token);
    if (threads !== null && Number(threads[1]) > 2) return '--threads=2';
    return token;
  });
  if (tamed.includes('bench')) tamed.push('--scope=no-such-suite');
  return tamed;
}

const counts = new Map<string, number>();
const count = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);

describe('fuzz: the command line', () => {
  it(
    'troupe <args> in this process: exit 0, 1 or 2, with a message on stderr for 1 and 2',
    async () => {
      await fuzz(
        FILE,
        fc.asyncProperty(argvArb, async ([command, rest, valid]) => {
          const argv = tame(command, rest, valid);
          const out = { stdout: '', stderr: '' };
          // `troupe run --json` sends whatever else writes to stdout to stderr, for the life of
          // its process: put it back after each case.
          const write = process.stdout.write;
          let got: Awaited<ReturnType<typeof answer<number>>>;
          try {
            got = await answer(`troupe ${JSON.stringify(argv)}`, () =>
              main(argv, {
                stdout: (t) => {
                  out.stdout += t;
                },
                stderr: (t) => {
                  out.stderr += t;
                },
              }),
            );
          } finally {
            process.stdout.write = write;
          }
          if (!got.ok)
            throw new Error(`main rejected with ${got.error.code}: ${got.error.message}`);
          count(`${COMMANDS.includes(argv[0] as string) ? argv[0] : 'other'} → ${got.value}`);
          expect([0, 1, 2], out.stderr).toContain(got.value);
          if (got.value !== 0) expect(out.stderr.length).toBeGreaterThan(0);
          if (argv[0] === 'bench' && got.value === 0)
            expect(argv.some((t) => /^(-h|--help|--compare)$/.test(t))).toBe(true);
        }),
      );
      console.info(`cli: ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}`);
    },
    PROPERTY_LIMIT_MS,
  );

  it(
    'troupe <args> in a child process, standard input too: exit 0, 1 or 2, no crash',
    async () => {
      await fuzz(
        FILE,
        fc.asyncProperty(
          argvArb,
          fc.constantFrom('{"files": [1]}', '{"__proto__": {"polluted": 1}}', '{', ''),
          async ([command, rest, valid], stdin) => {
            // A process's arguments are C strings: no shell or spawn can pass a NUL byte.
            const argv = tame(command, rest, valid).map((t) =>
              t === join(dir, 'no-input.json') ? '-' : t.replaceAll('\0', ''),
            );
            const ran = await runProcess(process.execPath, [bin, ...argv], { stdin });
            expect([0, 1, 2], ran.stderr).toContain(ran.code);
            expect(ran.stderr).not.toMatch(/internal error|FATAL|Uncaught/);
          },
        ),
        Math.min(CASES, 6),
      );
    },
    PROPERTY_LIMIT_MS,
  );
});
