// Fuzzing plan files: JSON and YAML text through loadPlan (and what a compiled plan offers:
// resolveInput, checkAnalysis, analyze), and through `troupe validate` in this process, plus a
// handful of real `troupe validate` processes. Every answer is a plan or a TroupeError
// (E_PLAN_INVALID, E_OUTSIDE_PLAN), every exit code 0 or 2, and no input's `__proto__` becomes
// a prototype.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../dist/src/cli/main.js';
import { loadPlan } from '../../dist/src/plans/plan.js';
import { troupe as troupeProcess } from '../cli/helpers.js';
import { answer, CASES, fuzz, PROPERTY_LIMIT_MS, watchStrays } from './harness.js';
import {
  inputArb,
  mangleArb,
  planArbOf,
  planFolder,
  planText,
  scratchFolder,
  toValue,
} from './plan-text.js';
import { anyArb, build, objectArb, orAny, v } from './values.js';

watchStrays();

const FILE = 'plans.test.ts';
const PLAN_CODES = ['E_PLAN_INVALID', 'E_OUTSIDE_PLAN'];

const { root, remove } = scratchFolder('troupe-fuzz-plans-');
afterAll(remove);
const dir = planFolder(root);

// The YAML parser warns through process warnings (an unresolved tag, an ambiguous alias): Node
// prints each on stderr, thousands of lines here. Kept quiet for this file, and counted.
let warnings = 0;
const printers = process.listeners('warning');
const countWarning = () => {
  warnings++;
};
beforeAll(() => {
  process.removeAllListeners('warning');
  process.on('warning', countWarning);
});
afterAll(() => {
  process.off('warning', countWarning);
  for (const printer of printers) process.on('warning', printer);
  console.info(`${warnings} YAML warnings`);
});

const extArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('.json', '.yaml', '.yml') },
  { weight: 1, arbitrary: fc.constantFrom('.txt', '', '.JSON', '.Yaml') },
);

/** Writes the case's plan (and input) into the plan folder; the same names every case. */
function writeCase(text: string, ext: string, input?: string): { file: string; inputFile: string } {
  const file = join(dir, `case${ext}`);
  writeFileSync(file, text);
  const inputFile = join(dir, 'input.json');
  if (input !== undefined) writeFileSync(inputFile, input);
  return { file, inputFile };
}

const format = (ext: string): 'json' | 'yaml' => (ext.toLowerCase() === '.json' ? 'json' : 'yaml');

/** An input object kept its own fields: none became a prototype, none was inherited. */
function expectOwnFields(given: unknown, resolved: unknown): void {
  if (given === null || typeof given !== 'object' || Array.isArray(given)) return;
  if (resolved === null || typeof resolved !== 'object') return;
  expect(Object.getPrototypeOf(resolved), 'the resolved input has a plain prototype').toBe(
    Object.prototype,
  );
  for (const key of Object.keys(given))
    expect(Object.hasOwn(resolved, key), `the resolved input keeps its own "${key}"`).toBe(true);
}

const counts = new Map<string, number>();
const count = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
function report(what: string): void {
  console.info(`${what}: ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}`);
  counts.clear();
}

describe('fuzz: plan files', () => {
  it(
    'loadPlan(text as JSON or YAML): a compiled plan or E_PLAN_INVALID / E_OUTSIDE_PLAN',
    async () => {
      const optionsArb = fc.oneof(
        { weight: 6, arbitrary: fc.constant(v(undefined)) },
        {
          weight: 2,
          arbitrary: objectArb(
            { allowOutside: orAny(fc.boolean().map(v)) },
            { nearMisses: ['allowOutsde'] },
          ),
        },
        { weight: 1, arbitrary: anyArb },
      );
      await fuzz(
        FILE,
        fc.asyncProperty(
          planArbOf(30),
          extArb,
          mangleArb,
          optionsArb,
          fc.option(inputArb, { freq: 2 }),
          fc.oneof({ weight: 30, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: anyArb }),
          async (plan, ext, mangle, o, input, hostileFile) => {
            const { file } = writeCase(planText(plan, format(ext), mangle), ext);
            const options = build(o);
            const fileArg = hostileFile === null ? file : build(hostileFile);
            const got = await answer('loadPlan', () =>
              loadPlan(fileArg as never, options as never),
            );
            if (!got.ok) {
              count(got.error.code);
              expect([...PLAN_CODES, 'E_INVALID_OPTION']).toContain(got.error.code);
              return;
            }
            count('loaded');
            const compiled = got.value;
            expect(typeof compiled.plan.analyze).toBe('function');
            if (input === null) return;
            // What a compiled plan does with an input: resolve it, expand the analysis.
            const given = toValue(input);
            const resolved = await answer('resolveInput', () => compiled.resolveInput(given, root));
            if (resolved.ok) expectOwnFields(given, resolved.value);
            const checked = await answer('checkAnalysis', () =>
              compiled.checkAnalysis({ value: given }),
            );
            if (!checked.ok) expect(PLAN_CODES).toContain(checked.error.code);
            const analyzed = await answer('analyze', () => compiled.plan.analyze(given));
            if (analyzed.ok) expect(Array.isArray(analyzed.value)).toBe(true);
            else expect(PLAN_CODES).toContain(analyzed.error.code);
          },
        ),
      );
      report('loadPlan');
    },
    PROPERTY_LIMIT_MS,
  );

  it(
    'troupe validate <plan> [--input file] in this process: exit 0 or 2, never a throw',
    async () => {
      await fuzz(
        FILE,
        fc.asyncProperty(
          // Mostly plans with a fault: a valid one starts a troupe to probe its experts.
          planArbOf(6),
          extArb,
          mangleArb,
          fc.option(fc.tuple(inputArb, fc.boolean()), { freq: 3 }),
          fc.boolean(),
          async (plan, ext, mangle, input, allowOutside) => {
            const text = planText(plan, format(ext), mangle);
            const inputText =
              input === null
                ? undefined
                : input[1]
                  ? JSON.stringify(toValue(input[0]))
                  : `${JSON.stringify(toValue(input[0]))}}`;
            const { file, inputFile } = writeCase(text, ext, inputText);
            const argv = ['validate', file];
            if (inputText !== undefined) argv.push('--input', inputFile);
            if (allowOutside) argv.push('--allow-outside');
            const out = { stdout: '', stderr: '' };
            const got = await answer('troupe validate', () =>
              main(argv, {
                stdout: (t) => {
                  out.stdout += t;
                },
                stderr: (t) => {
                  out.stderr += t;
                },
              }),
            );
            if (!got.ok)
              throw new Error(
                `troupe validate rejected with ${got.error.code}: ${got.error.message}`,
              );
            count(`exit ${got.value}`);
            expect([0, 2], out.stderr).toContain(got.value);
            if (got.value === 0) expect(out.stdout).toMatch(/: valid — /);
            else expect(out.stderr).toMatch(/^troupe validate: /);
            expect(out.stderr).not.toMatch(/internal error/);
          },
        ),
      );
      report('validate');
    },
    PROPERTY_LIMIT_MS,
  );

  it(
    'troupe validate in a child process: exit 0 or 2, a message, no crash',
    async () => {
      await fuzz(
        FILE,
        fc.asyncProperty(planArbOf(10), extArb, mangleArb, async (plan, ext, mangle) => {
          const { file } = writeCase(planText(plan, format(ext), mangle), ext);
          const ran = await troupeProcess(['validate', file]);
          expect([0, 2], ran.stderr).toContain(ran.code);
          expect(ran.stderr).not.toMatch(/internal error|Uncaught|FATAL/);
          if (ran.code === 2) expect(ran.stderr).toMatch(/^troupe validate: /);
        }),
        Math.min(CASES, 6),
      );
      rmSync(join(dir, 'input.json'), { force: true });
    },
    PROPERTY_LIMIT_MS,
  );
});
