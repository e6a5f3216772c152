/**
 * Plan files (JSON or YAML): read, checked against the schema (every error names its path in the
 * file), kept inside their folder, and compiled to exactly what the library takes —
 * `createTroupe(options)` and `troupe.run(plan, input, runOptions)`. One code path, not two.
 *
 * @module troupe/templates
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { glob } from 'tinyglobby';
import { parse as parseYaml, Parser as YamlParser } from 'yaml';
import type { z } from 'zod';
import { describe, invalidOption, isTroupeError, messageOf, TroupeError } from '../errors.js';
import { defined, readFields, setOwn } from '../fields.js';
import { checkGraph } from '../runs/graph.js';
import type {
  Contribution,
  ExpertDefinition,
  Plan,
  RunOptions,
  Subtask,
  TroupeOptions,
} from '../types.js';
import { lineAndColumn, parseJson } from './json.js';
import { type ExpertEntry, type PlanFile, PlanFileSchema, type StageEntry } from './schema.js';

export interface LoadOptions {
  /** Allow modules outside the plan's folder and bare package names. @default false */
  allowOutside?: boolean;
}

/** A plan file compiled to the library's objects. */
export interface CompiledPlan {
  file: string;
  dir: string;
  name: string;
  spec: PlanFile;
  troupeOptions: TroupeOptions;
  plan: Plan;
  runOptions: Pick<RunOptions, 'deadlineMs'>;
  /**
   * The run's input as the plan takes it: the plan's `inputDefaults` under it, and each
   * `"$input.<field>"` a glob takes as its `cwd` made absolute against `baseDir` — the folder of
   * the file the input came from (`troupe run --input in.json`). `plan` does the same against
   * the working directory, so an input it gets from here passes through unchanged.
   * @default baseDir the working directory
   */
  resolveInput(input: unknown, baseDir?: string): unknown;
  /**
   * Expands the analysis without running it (what `troupe validate` checks): fan-outs, globs
   * that match nothing, `"$input.<field>"` lookups. Given no input, the parts that need a field
   * neither the defaults nor anything else provide are listed in `unchecked` instead of failing.
   */
  checkAnalysis(input?: { value: unknown; baseDir?: string }): Promise<AnalysisCheck>;
}

/** What {@link CompiledPlan.checkAnalysis} found. */
export interface AnalysisCheck {
  /** Subtasks the analysis made (those of stages it could expand). */
  subtasks: number;
  /** Paths in the plan it could not check without an input, e.g. `analysis.stages[0].forEach.cwd ("$input.dir")`. */
  unchecked: string[];
}

function invalid(
  file: string,
  path: string,
  message: string,
  details?: Record<string, unknown>,
): TroupeError {
  return new TroupeError('E_PLAN_INVALID', `${file}: ${path === '' ? '' : `${path}: `}${message}`, {
    details: { file, path, ...details },
  });
}

/** `experts[2].skills.integrity` from a zod path. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key))
      out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): { found: boolean; value: unknown } {
  let value = root;
  for (const key of path) {
    if (value === null || typeof value !== 'object' || !(key in (value as object)))
      return { found: false, value: undefined };
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return { found: true, value };
}

/** One line per schema problem: `path: expected …, got …`. */
function describeIssues(raw: unknown, issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const at = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as { keys: string[] }).keys.map((k) => `"${k}"`).join(', ');
      return `${at === '' ? '' : `${at}: `}unknown field${keys.includes(',') ? 's' : ''} ${keys}`;
    }
    const { found, value } = valueAt(raw, issue.path);
    const got = found
      ? `, got ${describe(value)}`
      : issue.code === 'invalid_type'
        ? ', got nothing'
        : '';
    return `${at === '' ? '(the plan)' : at}: ${issue.message}${got}`;
  });
}

/** A syntax error of the plan file, placed as editors and compilers do: `plan.json:7:12: ...`. */
function malformed(file: string, kind: string, line: number, column: number, message: string) {
  return new TroupeError(
    'E_PLAN_INVALID',
    `${file}:${line}:${column}: malformed ${kind}: ${message}`,
    {
      details: { file, line, column },
    },
  );
}

/**
 * How deep a plan file may nest objects and lists: far past any plan. It keeps the YAML library,
 * which composes a document recursively, away from the end of the stack, where Node 20 can crash
 * the process instead of throwing (V8 fails to compile a regular expression there), and keeps the
 * plan's own recursive steps (merging inputDefaults, a stage's input) within the stack too.
 */
const MAX_NESTING = 256;

/**
 * The first node of a tree nested more than {@link MAX_NESTING} levels of `isLevel` deep, or
 * undefined. Iterative, each object once (a YAML alias may share one).
 */
function tooDeep(root: unknown, isLevel: (node: object) => boolean): object | undefined {
  const seen = new Set<object>();
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [node, above] = stack.pop() as [unknown, number];
    if (node === null || typeof node !== 'object' || seen.has(node)) continue;
    seen.add(node);
    const depth = isLevel(node) ? above + 1 : above;
    if (depth > MAX_NESTING) return node;
    for (const child of Object.values(node)) stack.push([child, depth]);
  }
  return undefined;
}

const nestedTooDeep = `nested more than ${MAX_NESTING} levels deep (the most a plan file may)`;

async function readPlanFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw invalid(file, '', `cannot read the plan file: ${(error as Error).message}`);
  }
  const ext = extname(file).toLowerCase();
  if (ext === '.json') {
    const parsed = parseJson(text);
    if (!parsed.ok) {
      const { line, column, message } = parsed.error;
      throw malformed(file, 'JSON', line, column, message);
    }
    if (tooDeep(parsed.value, () => true) !== undefined) throw invalid(file, '', nestedTooDeep);
    return parsed.value;
  }
  if (ext === '.yaml' || ext === '.yml') {
    // Its syntax tree first (built without recursion): collections past the bound are refused
    // before the document is composed.
    const deep = tooDeep([...new YamlParser().parse(text)], (node) =>
      ['block-map', 'block-seq', 'flow-collection'].includes(
        (node as { type?: string }).type ?? '',
      ),
    ) as { offset?: number } | undefined;
    if (deep !== undefined) {
      const { line, column } = lineAndColumn(text, deep.offset ?? 0);
      throw new TroupeError('E_PLAN_INVALID', `${file}:${line}:${column}: ${nestedTooDeep}`, {
        details: { file, line, column },
      });
    }
    try {
      const value: unknown = parseYaml(text, { prettyErrors: true });
      if (tooDeep(value, () => true) !== undefined) throw invalid(file, '', nestedTooDeep);
      return value;
    } catch (error) {
      if (isTroupeError(error)) throw error;
      const at = (error as { linePos?: { line: number; col: number }[] }).linePos?.[0];
      // Its message ends in "at line L, column C:" and a snippet: the position goes first instead.
      const message = ((error as Error).message.split('\n')[0] as string).replace(
        / at line \d+, column \d+:?$/,
        '',
      );
      if (at !== undefined) throw malformed(file, 'YAML', at.line, at.col, message);
      throw invalid(file, '', `malformed YAML: ${message}`);
    }
  }
  throw invalid(file, '', `expected a .json, .yaml or .yml file, got "${ext || 'no extension'}"`);
}

/**
 * Resolves a module named in the plan: relative to the plan's folder, after resolving symlinks,
 * and inside that folder unless `allowOutside`. A bare package name needs `allowOutside` too.
 */
async function resolveModule(
  file: string,
  dir: string,
  realDir: string,
  spec: string,
  field: string,
  allowOutside: boolean,
): Promise<string> {
  const bare = !(
    spec.startsWith('./') ||
    spec.startsWith('../') ||
    isAbsolute(spec) ||
    spec.startsWith('file:')
  );
  if (bare) {
    if (!allowOutside) {
      throw new TroupeError(
        'E_OUTSIDE_PLAN',
        `${file}: ${field}: "${spec}" is a package name; a plan loads modules only from its own folder (pass --allow-outside to allow packages)`,
        { details: { file, path: field, module: spec } },
      );
    }
    try {
      return createRequire(resolve(dir, 'plan')).resolve(spec);
    } catch (error) {
      throw invalid(
        file,
        field,
        `cannot resolve the package "${spec}": ${(error as Error).message}`,
      );
    }
  }
  let path: string;
  let real: string;
  try {
    path = spec.startsWith('file:') ? fileURLToPath(spec) : resolve(dir, spec);
  } catch (error) {
    throw invalid(file, field, `"${spec}" is not a valid file: URL (${(error as Error).message})`);
  }
  try {
    real = await realpath(path);
    if (!(await stat(real)).isFile()) throw new Error('not a file');
  } catch (error) {
    throw invalid(file, field, `module not found: ${path} (${(error as Error).message})`, {
      module: spec,
    });
  }
  const inside = real === realDir || real.startsWith(realDir + sep);
  if (!inside && !allowOutside) {
    throw new TroupeError(
      'E_OUTSIDE_PLAN',
      `${file}: ${field}: "${spec}" resolves to ${real}, outside the plan's folder ${realDir} (pass --allow-outside to allow it)`,
      { details: { file, path: field, module: spec, resolved: real } },
    );
  }
  return real;
}

/** Loads a main-thread export named in the plan and checks that it is a function. */
async function loadExport(
  file: string,
  path: string,
  field: string,
  name: string,
): Promise<(...args: never[]) => unknown> {
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    throw invalid(file, field, `module ${path} failed to load: ${(error as Error).message}`);
  }
  const value = namespace[name];
  if (typeof value !== 'function') {
    const exports = Object.keys(namespace)
      .filter((k) => typeof namespace[k] === 'function')
      .sort();
    throw invalid(
      file,
      `${field}.export`,
      `module ${path} has no function export "${name}" (its function exports: ${exports.join(', ') || 'none'})`,
    );
  }
  return value as (...args: never[]) => unknown;
}

/**
 * Reads, checks and compiles a plan file. Every problem of the file is `E_PLAN_INVALID` or
 * `E_OUTSIDE_PLAN`; a file argument that is not a string, or bad options, `E_INVALID_OPTION`.
 */
export async function loadPlan(fileArg: string, options: LoadOptions = {}): Promise<CompiledPlan> {
  if (typeof fileArg !== 'string')
    throw invalidOption('loadPlan(file)', 'the path of a plan file (a string)', fileArg);
  const given = readFields(options, 'loadPlan(options)', ['allowOutside']);
  if (given.allowOutside !== undefined && typeof given.allowOutside !== 'boolean')
    throw invalidOption('loadPlan(options).allowOutside', 'a boolean', given.allowOutside);
  const file = resolve(fileArg);
  const raw = await readPlanFile(file);
  let parsed: ReturnType<typeof PlanFileSchema.safeParse>;
  try {
    parsed = PlanFileSchema.safeParse(raw);
  } catch (error) {
    // zod 4 can throw on data it does not expect (a length check on `{ "length": {} }`).
    throw invalid(file, '', `the plan cannot be checked against the schema: ${messageOf(error)}`);
  }
  if (!parsed.success) {
    const lines = describeIssues(raw, parsed.error.issues);
    throw new TroupeError('E_PLAN_INVALID', `${file}: ${lines.join('; ')}`, {
      details: { file, problems: lines },
    });
  }
  const spec = parsed.data;
  const dir = dirname(file);
  const realDir = await realpath(dir);
  const allowOutside = given.allowOutside === true;
  const mod = (value: string, field: string) =>
    resolveModule(file, dir, realDir, value, field, allowOutside);

  const names = new Set<string>();
  spec.experts.forEach((e, i) => {
    if (names.has(e.name))
      throw invalid(file, `experts[${i}].name`, `"${e.name}" is used by two experts`);
    names.add(e.name);
  });
  const stages = spec.analysis.stages ?? [];
  const seenStages = new Set<string>();
  stages.forEach((stage, i) => {
    if (seenStages.has(stage.name))
      throw invalid(file, `analysis.stages[${i}].name`, `"${stage.name}" names two stages`);
    for (const key of ['after', 'afterEach'] as const) {
      (stage[key] ?? []).forEach((name, k) => {
        if (!seenStages.has(name)) {
          throw invalid(
            file,
            `analysis.stages[${i}].${key}[${k}]`,
            `expected the name of an earlier stage (${[...seenStages].join(', ') || 'none'}), got "${name}"`,
          );
        }
      });
    }
    if (stage.afterEach !== undefined && stage.forEach === undefined) {
      throw invalid(file, `analysis.stages[${i}].afterEach`, 'afterEach goes with forEach');
    }
    seenStages.add(stage.name);
  });

  checkNeeds(file, spec);
  if (spec.analysis.subtasks !== undefined) {
    try {
      checkGraph(spec.analysis.subtasks);
    } catch (error) {
      if (!isTroupeError(error)) throw error;
      // The graph check names its own path (`subtasks[3].after: ...`): named once, in the file.
      const named = /^subtasks(\[\d+\](?:\.\w+)?): ([\s\S]*)$/.exec(error.message);
      const inFile = (text: string) => text.replace(/\bsubtasks\[/g, 'analysis.subtasks[');
      throw named === null
        ? invalid(file, 'analysis.subtasks', inFile(error.message))
        : invalid(file, `analysis.subtasks${named[1]}`, inFile(named[2] as string));
    }
  }
  const limits: FanOutLimits = {
    maxItems: spec.policies?.maxQueuedSubtasks ?? 100_000,
    realDir,
    allowOutside,
  };

  const experts: ExpertDefinition[] = [];
  for (const [i, entry] of spec.experts.entries())
    experts.push(await compileExpert(entry, i, mod, file));

  let integrate: Plan['integrate'];
  const integration = spec.integration;
  if (integration?.builtin !== undefined) integrate = BUILTIN_INTEGRATIONS[integration.builtin];
  else if (integration?.module !== undefined) {
    const path = await mod(integration.module, 'integration.module');
    integrate = (await loadExport(
      file,
      path,
      'integration',
      integration.export ?? 'default',
    )) as Plan['integrate'];
  }
  let validate: Plan['validate'];
  if (spec.validation !== undefined) {
    const path = await mod(spec.validation.module, 'validation.module');
    validate = (await loadExport(
      file,
      path,
      'validation',
      spec.validation.export ?? 'default',
    )) as Plan['validate'];
  }

  const name = spec.name ?? relative(process.cwd(), file);
  const rewrite = inputResolver(dir, stages, spec.inputDefaults);
  const resolveInput = rewrite ?? ((input: unknown) => input);
  // Only a plan that rewrites its input wraps its functions; others get them as written.
  const resolved = <F extends (first: never, input: unknown) => unknown>(fn: F): F =>
    rewrite === undefined
      ? fn
      : (((first: never, input: unknown) => fn(first, rewrite(input))) as F);
  const plan: Plan = {
    name,
    analyze:
      spec.analysis.subtasks !== undefined
        ? () => spec.analysis.subtasks as Subtask[]
        : (input: unknown) => expandStages(file, dir, stages, resolveInput(input), limits),
    ...defined({
      integrate: integrate === undefined ? undefined : resolved(integrate),
      validate: validate === undefined ? undefined : resolved(validate),
    }),
  };
  const p = spec.policies ?? {};
  const troupeOptions: TroupeOptions = {
    experts,
    ...defined({
      threads: p.threads,
      maxQueuedSubtasks: p.maxQueuedSubtasks,
      timeoutMs: p.timeoutMs,
      attempts: p.attempts,
      retryBackoffMs: p.retryBackoffMs,
      maxRetryBackoffMs: p.maxRetryBackoffMs,
      askTimeoutMs: p.askTimeoutMs,
      cancelGraceMs: p.cancelGraceMs,
      supervision: p.supervision,
    }),
  };
  return {
    file,
    dir,
    name,
    spec,
    troupeOptions,
    plan,
    runOptions: defined({ deadlineMs: p.deadlineMs }),
    resolveInput,
    async checkAnalysis(given) {
      const subtasks = spec.analysis.subtasks;
      if (subtasks !== undefined) return { subtasks: subtasks.length, unchecked: [] };
      const unchecked: string[] = [];
      const input = resolveInput(given?.value, given?.baseDir);
      const expanded = await expandStages(
        file,
        dir,
        stages,
        input,
        limits,
        given === undefined ? unchecked : undefined,
      );
      return { subtasks: expanded.length, unchecked };
    },
  };
}

async function compileExpert(
  entry: ExpertEntry,
  i: number,
  mod: (value: string, field: string) => Promise<string>,
  file: string,
): Promise<ExpertDefinition> {
  const at = `experts[${i}]`;
  const module = pathToFileURL(await mod(entry.module, `${at}.module`));
  const definition: ExpertDefinition = {
    name: entry.name,
    skills: entry.skills as ExpertDefinition['skills'],
    module,
    ...defined({
      concurrency: entry.concurrency,
      lookahead: entry.lookahead,
      timeoutMs: entry.timeoutMs,
      attempts: entry.attempts,
      batch: entry.batch,
      messages: entry.messages,
      resourceLimits: entry.resourceLimits,
    }),
  };
  if (entry.onMessage !== undefined) {
    const path = await mod(entry.onMessage.module, `${at}.onMessage.module`);
    definition.onMessage = (await loadExport(
      file,
      path,
      `${at}.onMessage`,
      entry.onMessage.export ?? 'default',
    )) as ExpertDefinition['onMessage'];
  }
  if (entry.validate !== undefined) {
    const path = await mod(entry.validate.module, `${at}.validate.module`);
    definition.validate = (await loadExport(
      file,
      path,
      `${at}.validate`,
      entry.validate.export ?? 'default',
    )) as ExpertDefinition['validate'];
  }
  return definition;
}

// ---------------------------------------------------------------------------------------------
// Analysis: stages and their fan-outs

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Every need of the analysis has an expert with that skill at that level: checked at load. */
function checkNeeds(file: string, spec: PlanFile): void {
  const needs: { at: string; needs: string; complexity: number }[] = [
    ...(spec.analysis.subtasks ?? []).map((t, i) => ({
      at: `analysis.subtasks[${i}].needs`,
      needs: t.needs,
      complexity: t.complexity ?? 1,
    })),
    ...(spec.analysis.stages ?? []).map((t, i) => ({
      at: `analysis.stages[${i}].needs`,
      needs: t.needs,
      complexity: t.complexity ?? 1,
    })),
  ];
  for (const need of needs) {
    if (spec.experts.some((e) => (e.skills[need.needs] ?? 0) >= need.complexity)) continue;
    const offer = [...new Set(spec.experts.flatMap((e) => Object.keys(e.skills)))].join(', ');
    throw invalid(
      file,
      need.at,
      `no expert has the skill "${need.needs}" at level ${need.complexity} or above (skills on offer: ${offer})`,
    );
  }
}

/** Where fan-outs may reach, and how many subtasks they may make. */
interface FanOutLimits {
  /** Subtasks one fan-out may make (the plan's `policies.maxQueuedSubtasks`, else 100 000). */
  maxItems: number;
  realDir: string;
  allowOutside: boolean;
}

/**
 * A dotted path into the run's input: `"a.b"`, or `"."` for the input itself. Own fields only:
 * `"$input.constructor"` is a field the input lacks, not the Object function.
 */
function inputAt(input: unknown, path: string): unknown {
  if (path === '.') return input;
  let value = input;
  for (const key of path.split('.'))
    value = isPlainObject(value) && Object.hasOwn(value, key) ? value[key] : undefined;
  return value;
}

/** A copy of `root` with `value` at the dotted `path` (objects along it copied, not changed). */
function withAt(root: unknown, path: string, value: unknown): unknown {
  if (path === '.') return value;
  const [key, ...rest] = path.split('.') as [string, ...string[]];
  if (!isPlainObject(root)) return root;
  return { ...root, [key]: rest.length === 0 ? value : withAt(root[key], rest.join('.'), value) };
}

/** `over` on top of `base`, plain objects merged key by key (anything else replaces). */
function merged(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    // Own fields, "__proto__" too: the input's field, never the merged object's prototype.
    const under = Object.hasOwn(out, key) ? out[key] : undefined;
    setOwn(out, key, isPlainObject(under) && isPlainObject(value) ? merged(under, value) : value);
  }
  return out;
}

/**
 * How a plan takes its run's input, or undefined if it takes it as given: `defaults` (the
 * plan's `inputDefaults`) under it, and each field a glob takes as its folder (`cwd:
 * "$input.<field>"`) resolved against a base folder. A relative folder means: relative to
 * where it was written — the plan file for a default, the input file for an input from a
 * file, else the working directory. Applying it twice changes nothing.
 */
function inputResolver(
  dir: string,
  stages: StageEntry[],
  defaults: Record<string, unknown> | undefined,
): ((input: unknown, baseDir?: string) => unknown) | undefined {
  const folders = [
    ...new Set(
      stages.flatMap((stage) => {
        const cwd = stage.forEach?.cwd;
        return cwd?.startsWith('$input.') ? [cwd.slice('$input.'.length)] : [];
      }),
    ),
  ];
  if (defaults === undefined && folders.length === 0) return undefined;
  const absolute = (input: unknown, base: string): unknown => {
    let out = input;
    for (const field of folders) {
      const value = inputAt(out, field);
      if (typeof value === 'string' && value !== '' && !isAbsolute(value))
        out = withAt(out, field, resolve(base, value));
    }
    return out;
  };
  const base = defaults === undefined ? undefined : (absolute(defaults, dir) as typeof defaults);
  return (input, baseDir = process.cwd()) => {
    let out = input;
    if (base !== undefined) {
      if (input === undefined || input === null) out = merged({}, base);
      else if (isPlainObject(input)) out = merged(base, input);
    }
    return absolute(out, baseDir);
  };
}

/**
 * `"$input.<field>"` strings in a stage's input take that field of the run's input. With
 * `unchecked` (a check without an input), a field the input lacks is noted there, not an error.
 */
function fromInput(
  file: string,
  at: string,
  value: unknown,
  input: unknown,
  unchecked?: string[],
): unknown {
  if (typeof value === 'string' && value.startsWith('$input.')) {
    const field = value.slice('$input.'.length);
    const found = inputAt(input, field);
    if (found === undefined) {
      if (unchecked !== undefined) {
        unchecked.push(`${at} ("${value}")`);
        return undefined;
      }
      throw invalid(file, at, `"${value}": the run's input has no field "${field}"`);
    }
    return found;
  }
  if (isPlainObject(value)) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        fromInput(file, `${at}.${k}`, v, input, unchecked),
      ]),
    );
  }
  return value;
}

/**
 * Expands the stages for one input: one subtask per item of each fan-out. With `unchecked` (a
 * check without an input), a fan-out or `"$input"` lookup that needs a field the input lacks
 * is noted there and skipped, with what depends on it item by item.
 */
async function expandStages(
  file: string,
  dir: string,
  stages: StageEntry[],
  input: unknown,
  limits: FanOutLimits = { maxItems: 100_000, realDir: dir, allowOutside: false },
  unchecked?: string[],
): Promise<Subtask[]> {
  const subtasks: Subtask[] = [];
  const idsByStage = new Map<string, string[]>();
  const skipped = new Set<string>();
  for (const [i, stage] of stages.entries()) {
    const at = `analysis.stages[${i}]`;
    const items =
      stage.forEach === undefined
        ? undefined
        : await fanOut(file, dir, `${at}.forEach`, stage.forEach, input, limits, unchecked);
    if (items === 'unchecked' || (stage.afterEach ?? []).some((name) => skipped.has(name))) {
      skipped.add(stage.name);
      idsByStage.set(stage.name, []);
      continue;
    }
    const after = (stage.after ?? []).flatMap((name) => idsByStage.get(name) ?? []);
    const ids: string[] = [];
    const base: Omit<Subtask, 'id' | 'input' | 'after'> = {
      needs: stage.needs,
      ...defined({
        complexity: stage.complexity as Subtask['complexity'] | undefined,
        timeoutMs: stage.timeoutMs,
        attempts: stage.attempts,
      }),
    };
    const stageInput = fromInput(file, `${at}.input`, stage.input, input, unchecked);
    if (items === undefined) {
      subtasks.push({
        id: stage.name,
        ...base,
        ...defined({ after: after.length === 0 ? undefined : after, input: stageInput }),
      });
      ids.push(stage.name);
    } else {
      const extra = isPlainObject(stageInput)
        ? stageInput
        : stageInput === undefined
          ? {}
          : { with: stageInput };
      for (const { label, item } of items) {
        const id = `${stage.name}:${label}`;
        const same = (stage.afterEach ?? []).map((name) => {
          const dep = `${name}:${label}`;
          if (!(idsByStage.get(name) ?? []).includes(dep)) {
            throw invalid(
              file,
              `${at}.afterEach`,
              `"${id}" has no counterpart "${dep}" in stage ${name} (its items differ)`,
            );
          }
          return dep;
        });
        const deps = [...after, ...same];
        subtasks.push({
          id,
          ...base,
          ...(deps.length === 0 ? {} : { after: deps }),
          input: { ...extra, item },
        });
        ids.push(id);
      }
    }
    idsByStage.set(stage.name, ids);
  }
  return subtasks;
}

async function fanOut(
  file: string,
  dir: string,
  at: string,
  forEach: NonNullable<StageEntry['forEach']>,
  input: unknown,
  limits: FanOutLimits,
  unchecked?: string[],
): Promise<{ label: string; item: unknown }[] | 'unchecked'> {
  const tooMany = (field: string, count: number) =>
    invalid(
      file,
      `${at}.${field}`,
      `${count} subtasks is more than the plan allows (${limits.maxItems}: policies.maxQueuedSubtasks)`,
    );
  if (forEach.range !== undefined) {
    const { from, to, step = 1 } = forEach.range;
    const count = Math.max(0, Math.ceil((to - from) / step));
    if (count === 0)
      throw invalid(file, `${at}.range`, `the range [${from}, ${to}) holds no number`);
    if (count > limits.maxItems) throw tooMany('range', count);
    const out: { label: string; item: unknown }[] = [];
    for (let n = from; n < to; n += step) out.push({ label: String(n), item: n });
    return out;
  }
  if (forEach.items !== undefined) {
    const value = inputAt(input, forEach.items);
    if (value === undefined && unchecked !== undefined) {
      unchecked.push(`${at}.items ("${forEach.items}")`);
      return 'unchecked';
    }
    if (!Array.isArray(value)) {
      throw invalid(
        file,
        `${at}.items`,
        `expected "${forEach.items}" to be an array in the input, got ${describe(value)}`,
      );
    }
    if (value.length > limits.maxItems) throw tooMany('items', value.length);
    return value.map((item, k) => ({ label: String(k), item }));
  }
  const pattern = forEach.glob as string;
  // A pattern stays within its folder: no absolute patterns, no "..".
  if (isAbsolute(pattern) || pattern.split(/[\\/]/).includes('..')) {
    throw invalid(file, `${at}.glob`, `"${pattern}" leaves its folder; set cwd instead`);
  }
  let cwd = dir;
  if (forEach.cwd !== undefined) {
    if (forEach.cwd.startsWith('$input.')) {
      // The run's input names the folder: whoever runs the plan chose it.
      const field = forEach.cwd.slice('$input.'.length);
      const value = inputAt(input, field);
      if (value === undefined && unchecked !== undefined) {
        unchecked.push(`${at}.cwd ("${forEach.cwd}")`);
        return 'unchecked';
      }
      if (typeof value !== 'string' || value.length === 0)
        throw invalid(
          file,
          `${at}.cwd`,
          `expected the input to have a folder in "${field}", got ${describe(value)}${value === undefined ? " (give it in the run's input, or a default in the plan's inputDefaults)" : ''}`,
        );
      cwd = resolve(value);
      // A folder from the input is the user's to get right: say plainly when it is not one.
      const folder = await stat(cwd).catch(() => undefined);
      if (folder === undefined || !folder.isDirectory())
        throw invalid(
          file,
          `${at}.cwd`,
          `"${forEach.cwd}" is ${cwd}, which ${folder === undefined ? 'does not exist' : 'is not a folder'}`,
        );
    } else {
      // A folder the plan names stays inside the plan's folder, like its modules.
      cwd = resolve(dir, forEach.cwd);
      let real: string;
      try {
        real = await realpath(cwd);
      } catch (error) {
        throw invalid(file, `${at}.cwd`, `no folder ${cwd} (${(error as Error).message})`);
      }
      if (
        !(real === limits.realDir || real.startsWith(limits.realDir + sep)) &&
        !limits.allowOutside
      ) {
        throw new TroupeError(
          'E_OUTSIDE_PLAN',
          `${file}: ${at}.cwd: "${forEach.cwd}" resolves to ${real}, outside the plan's folder ${limits.realDir} (pass --allow-outside to allow it)`,
          { details: { file, path: `${at}.cwd` } },
        );
      }
    }
  }
  let files: string[];
  try {
    files = (
      await glob(pattern, { cwd, onlyFiles: true, dot: false, followSymbolicLinks: false })
    ).sort();
  } catch (error) {
    throw invalid(file, `${at}.glob`, `"${pattern}" failed in ${cwd}: ${(error as Error).message}`);
  }
  if (forEach.maxFiles !== undefined) files = files.slice(0, forEach.maxFiles);
  if (forEach.maxBytes !== undefined) {
    // In name order, every file that still fits; a larger one is skipped, not a stop.
    const kept: string[] = [];
    let total = 0;
    for (const name of files) {
      const size = (await stat(resolve(cwd, name))).size;
      if (total + size > forEach.maxBytes) continue;
      total += size;
      kept.push(name);
    }
    files = kept;
  }
  if (files.length === 0)
    throw invalid(file, `${at}.glob`, `"${pattern}" matched no file in ${cwd}`);
  if (files.length > limits.maxItems) throw tooMany('glob', files.length);
  return files.map((name) => ({ label: name, item: { path: resolve(cwd, name), file: name } }));
}

// ---------------------------------------------------------------------------------------------
// Built-in integrations

const BUILTIN_INTEGRATIONS: Record<string, Plan['integrate']> = {
  /** `{ [subtaskId]: output }` (what troupe does without an integrate). */
  collect: (contributions: Contribution[]) =>
    Object.fromEntries(contributions.map((c) => [c.subtask, c.output])),
  /** Every output (objects) merged into one, in subtask order; later keys win. */
  'merge-objects': (contributions: Contribution[]) => {
    // Field by field as own fields: an output's own "__proto__" stays a field, never a prototype.
    const merged: Record<string, unknown> = {};
    for (const c of contributions) {
      if (!isPlainObject(c.output)) continue;
      for (const [key, value] of Object.entries(c.output)) setOwn(merged, key, value);
    }
    return merged;
  },
  /** Every output in one array, in subtask order (arrays are spread). */
  concat: (contributions: Contribution[]) =>
    contributions.flatMap((c) => (Array.isArray(c.output) ? c.output : [c.output])),
};
