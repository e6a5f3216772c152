// Plan files and the plan commands: every schema rule names its path, modules stay inside the
// plan's folder, and `troupe run|validate|experts|schema` behave as a user runs them (child
// processes, exit codes, stdout holding nothing but the result).
import { execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPlan } from '../../dist/src/plans/plan.js';
import { RunReportSchema } from '../../dist/src/plans/schema.js';
import { settle, until } from '../helpers.js';

const exec = promisify(execFile);
const bin = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));
const auditPlan = fileURLToPath(
  new URL('../../examples/folder-audit/audit.plan.yaml', import.meta.url),
);
const fixturesDir = fileURLToPath(new URL('../fixtures/', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'troupe-plans-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** A fresh folder with a worker module, a main-thread module and a plan file. */
function planDir(plan: unknown, ext = 'json'): { dir: string; file: string } {
  const dir = join(root, `p${++counter}`);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'work.mjs'),
    `export default (input) => ({ doubled: (input?.item ?? input?.n ?? 0) * 2 });\n`,
  );
  writeFileSync(
    join(dir, 'slow.mjs'),
    `import { writeFileSync } from 'node:fs';\nexport default async (input) => { if (input.marker !== undefined) { writeFileSync(input.marker, 'started'); await new Promise((r) => setTimeout(r, 60_000)); } return input.item; };\n`,
  );
  writeFileSync(join(dir, 'throws.mjs'), `export default () => { throw new Error('nope'); };\n`);
  writeFileSync(
    join(dir, 'main.mjs'),
    `export const sum = (contributions) => contributions.reduce((s, c) => s + c.output.doubled, 0);\nexport const check = (result) => ({ positive: result > 0 });\nexport const accept = () => true;\n`,
  );
  const file = join(dir, `plan.${ext}`);
  writeFileSync(file, typeof plan === 'string' ? plan : JSON.stringify(plan));
  return { dir, file };
}

const valid = () => ({
  name: 'doubling',
  experts: [{ name: 'worker', module: './work.mjs', skills: { math: 3 }, concurrency: 4 }],
  analysis: { stages: [{ name: 'double', needs: 'math', forEach: { range: { from: 1, to: 5 } } }] },
  integration: { module: './main.mjs', export: 'sum' },
  validation: { module: './main.mjs', export: 'check' },
  policies: { threads: 2 },
});

/** `troupe run <file> --json` in a child process, sent SIGINT once `marker` exists: exit 130 and its stdout. */
async function interruptedRun(file: string, marker: string): Promise<string> {
  const child = spawn(process.execPath, [bin, 'run', file, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await until(() => existsSync(marker), 30_000);
  child.kill('SIGINT');
  expect(await exited).toBe(130);
  return stdout;
}

type Mutate = (plan: ReturnType<typeof valid>) => void;
const set =
  (path: (string | number)[], value: unknown): Mutate =>
  (plan) => {
    let at: Record<string | number, unknown> = plan as never;
    for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
    const last = path.at(-1) as string | number;
    if (value === undefined) delete at[last];
    else at[last] = value;
  };

describe('plan schema: each rule names its path in the file', () => {
  const cases: [string, Mutate, RegExp][] = [
    [
      'a level out of range',
      set(['experts', 0, 'skills', 'math'], 7),
      /experts\[0\]\.skills\.math: expected a level from 1 to 5, got number 7/,
    ],
    ['no experts', set(['experts'], undefined), /experts: expected a list of experts/],
    ['an empty expert list', set(['experts'], []), /experts: expected at least one expert/],
    [
      'a bad expert name',
      set(['experts', 0, 'name'], '9lives'),
      /experts\[0\]\.name: expected a name of letters/,
    ],
    [
      'no skills',
      set(['experts', 0, 'skills'], {}),
      /experts\[0\]\.skills: expected at least one skill/,
    ],
    [
      'concurrency 0',
      set(['experts', 0, 'concurrency'], 0),
      /experts\[0\]\.concurrency: expected an integer from 1 to 2147483647 \(a 32-bit count\), got number 0/,
    ],
    [
      'lookahead not a boolean',
      set(['experts', 0, 'lookahead'], 'yes'),
      /experts\[0\]\.lookahead: expected true or false/,
    ],
    [
      'a negative timeout',
      set(['experts', 0, 'timeoutMs'], -1),
      /experts\[0\]\.timeoutMs: expected a duration in ms/,
    ],
    [
      'a batch too large',
      set(['experts', 0, 'batch'], 999),
      /experts\[0\]\.batch: expected 'auto' or an integer from 1 to 252/,
    ],
    [
      'messages not heavy',
      set(['experts', 0, 'messages'], 'light'),
      /experts\[0\]\.messages: expected 'heavy'/,
    ],
    [
      'heavy and inline',
      (p) =>
        Object.assign(p.experts[0] as object, {
          messages: 'heavy',
          onMessage: { module: './main.mjs' },
        }),
      /experts\[0\]\.onMessage: either messages: 'heavy'/,
    ],
    [
      'a heap limit too small to boot a thread',
      set(['experts', 0, 'resourceLimits'], { maxOldGenerationSizeMb: 4 }),
      /experts\[0\]\.resourceLimits\.maxOldGenerationSizeMb: expected a size in MB of 16 or more/,
    ],
    [
      'an unknown resource limit',
      set(['experts', 0, 'resourceLimits'], { heapMb: 64 }),
      /experts\[0\]\.resourceLimits: unknown field "heapMb"/,
    ],
    [
      'an unknown field',
      set(['experts', 0, 'colour'], 'red'),
      /experts\[0\]: unknown field "colour"/,
    ],
    [
      'neither subtasks nor stages',
      set(['analysis'], {}),
      /analysis: expected either subtasks or stages/,
    ],
    [
      'two kinds of fan-out',
      set(['analysis', 'stages', 0, 'forEach'], { range: { from: 0, to: 2 }, items: '.' }),
      /analysis\.stages\[0\]\.forEach: expected exactly one of glob, items or range/,
    ],
    [
      'a range step of 0',
      set(['analysis', 'stages', 0, 'forEach', 'range', 'step'], 0),
      /analysis\.stages\[0\]\.forEach\.range\.step: expected a positive integer/,
    ],
    [
      'after an unknown stage',
      set(['analysis', 'stages', 0, 'after'], ['nowhere']),
      /analysis\.stages\[0\]\.after\[0\]: expected the name of an earlier stage/,
    ],
    [
      'an unknown builtin',
      set(['integration'], { builtin: 'average' }),
      /integration\.builtin: expected one of collect, merge-objects, concat/,
    ],
    [
      'a deadline of 0',
      set(['policies', 'deadlineMs'], 0),
      /policies\.deadlineMs: expected a duration in ms above 0/,
    ],
    [
      'two experts with one name',
      (p) => p.experts.push({ ...(p.experts[0] as object) } as never),
      /experts\[1\]\.name: "worker" is used by two experts/,
    ],
    [
      'a missing module',
      set(['experts', 0, 'module'], './gone.mjs'),
      /experts\[0\]\.module: module not found/,
    ],
    [
      'cwd without glob',
      set(['analysis', 'stages', 0, 'forEach'], { range: { from: 0, to: 2 }, cwd: 'x' }),
      /analysis\.stages\[0\]\.forEach: cwd, maxFiles and maxBytes go with glob/,
    ],
    [
      'an export with a builtin',
      set(['integration'], { builtin: 'collect', export: 'x' }),
      /integration: export goes with module/,
    ],
    [
      'afterEach without forEach',
      (p) =>
        p.analysis.stages.push({ name: 'again', needs: 'math', afterEach: ['double'] } as never),
      /analysis\.stages\[1\]\.afterEach: afterEach goes with forEach/,
    ],
    [
      'two stages with one name',
      (p) => p.analysis.stages.push({ ...(p.analysis.stages[0] as object) } as never),
      /analysis\.stages\[1\]\.name: "double" names two stages/,
    ],
    [
      'a need no expert meets',
      set(['analysis', 'stages', 0, 'complexity'], 5),
      /analysis\.stages\[0\]\.needs: no expert has the skill "math" at level 5 or above \(skills on offer: math\)/,
    ],
    [
      'duplicate subtask ids',
      set(['analysis'], {
        subtasks: [
          { id: 'a', needs: 'math' },
          { id: 'a', needs: 'math' },
        ],
      }),
      /analysis\.subtasks/,
    ],
    [
      'an unknown dependency',
      set(['analysis'], { subtasks: [{ id: 'a', needs: 'math', after: ['zz'] }] }),
      /analysis\.subtasks.*zz/,
    ],
    [
      'a file: URL that is not one',
      set(['experts', 0, 'module'], 'file://[bad/x.mjs'),
      /experts\[0\]\.module: "file:\/\/\[bad\/x\.mjs" is not a valid file: URL/,
    ],
    [
      'a missing export',
      set(['integration', 'export'], 'total'),
      /integration\.export: module .*main\.mjs has no function export "total" \(its function exports: accept, check, sum\)/,
    ],
  ];
  for (const [what, mutate, message] of cases) {
    it(what, async () => {
      const plan = valid();
      mutate(plan);
      const { file } = planDir(plan);
      const result = await settle(loadPlan(file));
      expect(result).toMatchObject({ ok: false, code: 'E_PLAN_INVALID' });
      expect(String((result as { error: Error }).error.message)).toMatch(message);
    });
  }

  it('a valid plan compiles to the library objects and runs: stages, fan-out, integration, validation', async () => {
    const { file } = planDir(valid());
    const compiled = await loadPlan(file);
    expect(compiled.troupeOptions.threads).toBe(2);
    const subtasks = await compiled.plan.analyze(null);
    expect(subtasks.map((s) => s.id)).toEqual(['double:1', 'double:2', 'double:3', 'double:4']);
    expect(subtasks[0]?.input).toEqual({ item: 1 });
  });

  it("an expert's resourceLimits reach its definition (threads of its own)", async () => {
    const plan = valid();
    set(['experts', 0, 'resourceLimits'], { maxOldGenerationSizeMb: 64 })(plan);
    const compiled = await loadPlan(planDir(plan).file);
    expect(compiled.troupeOptions.experts?.[0]?.resourceLimits).toEqual({
      maxOldGenerationSizeMb: 64,
    });
  });

  it('malformed JSON and YAML are refused with the parser’s message', async () => {
    const json = planDir('{ "experts": [', 'json');
    await expect(loadPlan(json.file)).rejects.toThrow(/malformed JSON/);
    const yaml = planDir('experts:\n  - name: [unclosed\n', 'yaml');
    await expect(loadPlan(yaml.file)).rejects.toThrow(/malformed YAML/);
  });
});

describe('plan safety: modules come from the plan’s own folder', () => {
  it('a path outside the folder is E_OUTSIDE_PLAN, unless allowed', async () => {
    const outside = join(root, 'outside.mjs');
    writeFileSync(outside, 'export default () => 1;\n');
    const plan = valid();
    plan.experts[0] = { ...plan.experts[0], module: '../outside.mjs' } as never;
    const { file } = planDir(plan);
    await expect(loadPlan(file)).rejects.toMatchObject({
      code: 'E_OUTSIDE_PLAN',
      message: expect.stringMatching(/outside the plan's folder/),
    });
    await expect(loadPlan(file, { allowOutside: true })).resolves.toMatchObject({
      name: 'doubling',
    });
  });

  it('a symlink inside the folder that points outside is refused', async () => {
    const outside = join(root, 'target.mjs');
    writeFileSync(outside, 'export default () => 1;\n');
    const plan = valid();
    plan.experts[0] = { ...plan.experts[0], module: './link.mjs' } as never;
    const { dir, file } = planDir(plan);
    symlinkSync(outside, join(dir, 'link.mjs'));
    await expect(loadPlan(file)).rejects.toMatchObject({ code: 'E_OUTSIDE_PLAN' });
  });

  it('a bare package name is refused unless allowed', async () => {
    const plan = valid();
    plan.integration = { module: 'piscina', export: 'default' } as never;
    const { file } = planDir(plan);
    await expect(loadPlan(file)).rejects.toMatchObject({
      code: 'E_OUTSIDE_PLAN',
      message: expect.stringMatching(/package name/),
    });
  });
});

describe('fan-outs at analysis: checked against the run input, bounded, inside the folder', () => {
  const analyzeWith = async (stages: unknown[], input: unknown) => {
    const { file } = planDir({ ...valid(), analysis: { stages } });
    const compiled = await loadPlan(file);
    return settle(Promise.resolve().then(() => compiled.plan.analyze(input)));
  };
  const cases: [string, unknown[], unknown, RegExp, string?][] = [
    [
      'an empty range',
      [{ name: 's', needs: 'math', forEach: { range: { from: 3, to: 3 } } }],
      null,
      /analysis\.stages\[0\]\.forEach\.range: the range \[3, 3\) holds no number/,
    ],
    [
      'a range past the bound',
      [{ name: 's', needs: 'math', forEach: { range: { from: 0, to: 1e9 } } }],
      null,
      /analysis\.stages\[0\]\.forEach\.range: 1000000000 subtasks is more than the plan allows \(100000: policies\.maxQueuedSubtasks\)/,
    ],
    [
      'items that are not an array',
      [{ name: 's', needs: 'math', forEach: { items: 'files' } }],
      { files: 'x' },
      /analysis\.stages\[0\]\.forEach\.items: expected "files" to be an array in the input, got "x"/,
    ],
    [
      'a missing input field',
      [{ name: 's', needs: 'math', input: { n: '$input.n.deep' } }],
      { n: {} },
      /analysis\.stages\[0\]\.input\.n: "\$input\.n\.deep": the run's input has no field "n\.deep"/,
    ],
    [
      'afterEach items that differ',
      [
        { name: 'a', needs: 'math', forEach: { range: { from: 0, to: 2 } } },
        { name: 'b', needs: 'math', forEach: { range: { from: 5, to: 6 } }, afterEach: ['a'] },
      ],
      null,
      /analysis\.stages\[1\]\.afterEach: "b:5" has no counterpart "a:5" in stage a/,
    ],
    [
      'a glob that climbs out',
      [{ name: 's', needs: 'math', forEach: { glob: '../**/*.mjs' } }],
      null,
      /analysis\.stages\[0\]\.forEach\.glob: "\.\.\/\*\*\/\*\.mjs" leaves its folder/,
    ],
    [
      'a glob folder outside the plan',
      [{ name: 's', needs: 'math', forEach: { glob: '*', cwd: '..' } }],
      null,
      /analysis\.stages\[0\]\.forEach\.cwd: "\.\." resolves to .*, outside the plan's folder/,
      'E_OUTSIDE_PLAN',
    ],
  ];
  for (const [what, stages, input, message, code = 'E_PLAN_INVALID'] of cases) {
    it(what, async () => {
      const result = await analyzeWith(stages, input);
      expect(result).toMatchObject({ ok: false, code });
      expect(String((result as { error: Error }).error.message)).toMatch(message);
    });
  }

  it('a dotted "$input" path and an items path reach into the input', async () => {
    const result = await analyzeWith(
      [
        {
          name: 's',
          needs: 'math',
          forEach: { items: 'job.values' },
          input: { scale: '$input.job.scale' },
        },
      ],
      { job: { values: [4, 5], scale: 3 } },
    );
    expect(result).toMatchObject({ ok: true });
    const subtasks = (result as { value: { id: string; input: unknown }[] }).value;
    expect(subtasks.map((t) => [t.id, t.input])).toEqual([
      ['s:0', { scale: 3, item: 4 }],
      ['s:1', { scale: 3, item: 5 }],
    ]);
  });

  it('maxBytes keeps files in name order while their total size fits', async () => {
    const plan = valid();
    const { dir, file } = planDir(plan);
    mkdirSync(join(dir, 'data'));
    for (const [name, size] of [
      ['a.txt', 100],
      ['b.txt', 300],
      ['c.txt', 100],
      ['d.txt', 100],
    ] as const)
      writeFileSync(join(dir, 'data', name), 'x'.repeat(size));
    writeFileSync(
      file,
      JSON.stringify({
        ...plan,
        analysis: {
          stages: [
            { name: 's', needs: 'math', forEach: { glob: '*.txt', cwd: 'data', maxBytes: 250 } },
          ],
        },
      }),
    );
    const subtasks = await (await loadPlan(file)).plan.analyze(null);
    expect(subtasks.map((t) => t.id)).toEqual(['s:a.txt', 's:c.txt']);
  });

  it('a file: URL with an escaped character resolves', async () => {
    const plan = valid();
    const { dir, file } = planDir(plan);
    writeFileSync(join(dir, 'my work.mjs'), 'export default () => 1;\n');
    const module = pathToFileURL(join(dir, 'my work.mjs')).href;
    writeFileSync(file, JSON.stringify({ ...plan, experts: [{ ...plan.experts[0], module }] }));
    await expect(loadPlan(file)).resolves.toMatchObject({ name: 'doubling' });
  });
});

describe('the plan commands', () => {
  it('troupe run --json: the folder audit plan on a committed folder; stdout is one document matching its schema', async () => {
    const input = join(root, 'audit-input.json');
    writeFileSync(input, JSON.stringify({ dir: fixturesDir }));
    const { stdout, stderr } = await exec(
      process.execPath,
      [bin, 'run', auditPlan, '--input', input, '--threads', '2', '--json'],
      {
        timeout: 60_000,
      },
    );
    const report = RunReportSchema.parse(JSON.parse(stdout));
    expect(report.status).toBe('done');
    expect(report.quality).toEqual({ complete: true });
    const result = report.result as {
      totals: { files: number };
      whoDidWhat: Record<string, unknown>;
    };
    expect(result.totals.files).toBeGreaterThan(5);
    expect(Object.keys(result.whoDidWhat).sort()).toEqual(['analyst', 'compressor', 'hasher']);
    expect(report.records ?? []).toHaveLength(3 * result.totals.files);
    expect(stderr).toMatch(/folder-audit: done/);
  });

  it('the fractal plan renders, filters and stitches tiles into a PNG a person can open', async () => {
    const plan = fileURLToPath(
      new URL('../../examples/fractal/fractal.plan.yaml', import.meta.url),
    );
    const out = join(root, 'fractal.png');
    const input = join(root, 'fractal-input.json');
    writeFileSync(input, JSON.stringify({ out }));
    const { stdout } = await exec(
      process.execPath,
      [bin, 'run', plan, '--input', input, '--json'],
      {
        timeout: 60_000,
      },
    );
    const report = RunReportSchema.parse(JSON.parse(stdout));
    expect(report.status).toBe('done');
    expect(report.result).toMatchObject({ path: out, width: 640, height: 640, tiles: 16 });
    // each filter waited for its own tile only; the stitch for every filter
    expect((report.records ?? []).map((r) => r.id)).toContain('filter:15');
    const png = readFileSync(out);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.readUInt32BE(16)).toBe(640);
    expect(png.readUInt32BE(20)).toBe(640);
    expect(png.subarray(png.length - 8, png.length - 4).toString('ascii')).toBe('IEND');
  });

  it('the primes plan: experts cooperate through ask (an inline referee) and the blackboard; input from stdin', async () => {
    const plan = fileURLToPath(new URL('../../examples/primes/primes.plan.json', import.meta.url));
    const child = execFile(process.execPath, [bin, 'run', plan, '--input', '-', '--json']);
    child.stdin?.end(JSON.stringify({ limit: 2_000_000 }));
    const stdout = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stdout?.on('data', (chunk) => {
        text += chunk;
      });
      child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}`))));
    });
    const report = RunReportSchema.parse(JSON.parse(stdout));
    expect(report.result).toMatchObject({ limit: 2_000_000, primes: 148_933 });
    expect(report.quality).toEqual({ agreed: true });
    expect(report.metrics?.messages).toBeGreaterThan(2);
  });

  it('afterEach: a subtask of a stage waits for the same item of an earlier stage only', async () => {
    const plan = valid();
    plan.analysis = {
      stages: [
        { name: 'double', needs: 'math', forEach: { range: { from: 1, to: 3 } } },
        {
          name: 'again',
          needs: 'math',
          forEach: { range: { from: 1, to: 3 } },
          afterEach: ['double'],
        } as never,
      ],
    };
    const { file } = planDir(plan);
    const subtasks = await (await loadPlan(file)).plan.analyze(null);
    expect(subtasks.map((s) => [s.id, s.after ?? []])).toEqual([
      ['double:1', []],
      ['double:2', []],
      ['again:1', ['double:1']],
      ['again:2', ['double:2']],
    ]);
  });

  it('troupe run prints the result; a failed run exits 1 and reports on stderr', async () => {
    const { file } = planDir(valid());
    const { stdout } = await exec(process.execPath, [bin, 'run', file]);
    expect(stdout).toMatch(/^20\n\nquality: \{"positive":true\}\n$/);
    const failing = valid();
    (failing.experts[0] as { module: string }).module = './throws.mjs';
    (failing.experts[0] as { attempts?: number }).attempts = 1;
    const bad = planDir(failing);
    const result = await settle(exec(process.execPath, [bin, 'run', bad.file]));
    expect(result).toMatchObject({ ok: false });
    const error = (result as { error: { code: number; stdout: string; stderr: string } }).error;
    expect(error.code).toBe(1);
    expect(error.stdout).toBe('');
    expect(error.stderr).toMatch(/failed while coordinating: E_TASK_FAILED: .*nope/);
  });

  const badPlans: [string, (dir: string) => string, RegExp][] = [
    [
      'a missing module',
      () =>
        JSON.stringify({
          ...valid(),
          experts: [{ name: 'w', module: './gone.mjs', skills: { math: 1 } }],
        }),
      /experts\[0\]\.module: module not found/,
    ],
    [
      'a missing export',
      () => JSON.stringify({ ...valid(), validation: { module: './main.mjs', export: 'nothing' } }),
      /validation\.export: .*no function export "nothing"/,
    ],
    [
      'a worker module without a default export',
      () =>
        JSON.stringify({
          ...valid(),
          experts: [{ name: 'w', module: './main.mjs', skills: { math: 1 } }],
        }),
      /E_MODULE_LOAD: .*experts\[0\] \(w\): .*default/,
    ],
    ['malformed JSON', () => '{ "experts": [', /malformed JSON/],
  ];
  for (const [what, text, message] of badPlans) {
    it(`${what} exits 2 with a clear message`, async () => {
      const { file } = planDir(text(''));
      await expect(exec(process.execPath, [bin, 'run', file])).rejects.toMatchObject({
        code: 2,
        stdout: '',
        stderr: expect.stringMatching(message),
      });
    });
  }

  it('malformed YAML exits 2 with a clear message', async () => {
    const { file } = planDir('experts:\n  - name: [unclosed\n', 'yaml');
    await expect(exec(process.execPath, [bin, 'validate', file])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/malformed YAML/),
    });
  });

  it('a glob that matches nothing exits 2 with a clear message', async () => {
    const plan = valid();
    plan.analysis = {
      stages: [{ name: 'double', needs: 'math', forEach: { glob: '*.nothing' } as never }],
    };
    const { file } = planDir(plan);
    await expect(exec(process.execPath, [bin, 'run', file])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(
        /analysis\.stages\[0\]\.forEach\.glob: "\*\.nothing" matched no file/,
      ),
    });
  });

  it('a bad plan exits 2 naming the path; bad usage exits 2', async () => {
    const plan = valid();
    plan.experts[0] = { ...plan.experts[0], skills: { math: 9 } } as never;
    const { file } = planDir(plan);
    await expect(exec(process.execPath, [bin, 'validate', file])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(
        /E_PLAN_INVALID: .*experts\[0\]\.skills\.math: expected a level from 1 to 5, got number 9/,
      ),
    });
    await expect(exec(process.execPath, [bin, 'run'])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/expected one plan file/),
    });
  });

  it('--json keeps stdout for the document: what the plan modules print goes to stderr', async () => {
    const plan = valid();
    const { dir, file } = planDir(plan);
    writeFileSync(
      join(dir, 'work.mjs'),
      "export default (input) => { console.log('worker says', input.item); return { doubled: input.item * 2 }; };\n",
    );
    writeFileSync(
      join(dir, 'main.mjs'),
      "export const sum = (cs) => { console.log('integrating'); process.stdout.write('raw write\\n'); return cs.reduce((s, c) => s + c.output.doubled, 0); };\nexport const check = () => true;\n",
    );
    const { stdout, stderr } = await exec(process.execPath, [bin, 'run', file, '--json']);
    const report = RunReportSchema.parse(JSON.parse(stdout));
    expect(report.result).toBe(20);
    expect(stderr).toMatch(/integrating/);
    expect(stderr).toMatch(/raw write/);
    expect(stderr).toMatch(/worker says 4/);
  });

  it('Ctrl-C before the run starts (experts still probing) exits 130 with a cancelled document', async () => {
    const marker = join(root, `probe-marker-${Date.now()}`);
    const plan = valid();
    const { dir, file } = planDir(plan);
    writeFileSync(
      join(dir, 'work.mjs'),
      `import { writeFileSync } from 'node:fs';\nexport default () => 1;\nexport async function probe() { writeFileSync(${JSON.stringify(marker)}, '1'); await new Promise((r) => setTimeout(r, 60_000)); }\n`,
    );
    const stdout = await interruptedRun(file, marker);
    expect(RunReportSchema.parse(JSON.parse(stdout))).toMatchObject({
      status: 'cancelled',
      error: { code: 'E_CANCELLED' },
    });
  });

  it('troupe validate and troupe experts probe the experts without running', async () => {
    const { file } = planDir(valid());
    const { stdout } = await exec(process.execPath, [bin, 'validate', file]);
    expect(stdout).toMatch(/valid — 1 expert probed, analysis: 1 stage \(double\)/);
    const { stdout: listed } = await exec(process.execPath, [bin, 'experts', file, '--json']);
    expect(JSON.parse(listed)).toEqual([
      { name: 'worker', skills: { math: 3 }, concurrency: 4, messages: 'none', probe: 'ok' },
    ]);
  });

  it('on a terminal, troupe run draws progress on stderr (done/total, experts at work, elapsed); NO_COLOR turns bold off', async () => {
    // `script` (util-linux) gives the child a pseudo-terminal, as a user's shell would.
    const { file } = planDir(valid());
    const command = `${process.execPath} ${bin} run ${file}`;
    const ESC = String.fromCharCode(27);
    const { stdout: colored } = await exec('script', ['-qec', command, '/dev/null'], {
      timeout: 60_000,
    });
    expect(colored).toContain(`${ESC}[2K${ESC}[1m`);
    expect(colored).toMatch(/\d+\/4.* · \d+\.\d s/);
    const { stdout: plain } = await exec('script', ['-qec', command, '/dev/null'], {
      timeout: 60_000,
      env: { ...process.env, NO_COLOR: '1' },
    });
    expect(plain).toMatch(/\d+\/4 · /);
    expect(plain).not.toContain(`${ESC}[1m`);
    expect(plain).toMatch(/20\r?\n/);
  });

  it('troupe schema prints the JSON Schema of plan files', async () => {
    const { stdout } = await exec(process.execPath, [bin, 'schema']);
    const schema = JSON.parse(stdout);
    expect(schema.$schema).toMatch(/json-schema\.org/);
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['experts', 'analysis', 'integration', 'validation', 'policies']),
    );
  });

  it('SIGINT cancels the run: exit 130 and a report of what finished', async () => {
    const marker = join(root, `marker-${Date.now()}`);
    const plan = valid();
    plan.experts[0] = { ...plan.experts[0], module: './slow.mjs' } as never;
    // The block stage starts only once first:0 is done and recorded: the marker proves it.
    plan.analysis = {
      stages: [
        { name: 'first', needs: 'math', forEach: { range: { from: 0, to: 1 } } },
        {
          name: 'block',
          needs: 'math',
          after: ['first'],
          forEach: { range: { from: 0, to: 2 } },
          input: { marker },
        } as never,
      ],
    };
    delete (plan as { integration?: unknown }).integration;
    delete (plan as { validation?: unknown }).validation;
    const { file } = planDir(plan);
    const stdout = await interruptedRun(file, marker);
    const report = RunReportSchema.parse(JSON.parse(stdout));
    expect(report.status).toBe('cancelled');
    expect((report.records ?? []).filter((r) => r.status === 'done').map((r) => r.id)).toEqual([
      'first:0',
    ]);
    expect((report.records ?? []).filter((r) => r.status === 'cancelled')).toHaveLength(2);
  });
});
