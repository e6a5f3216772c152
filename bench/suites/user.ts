/**
 * A user's own suite (`troupe bench --suite ./my-suite.js`): a module exporting `experts` (expert
 * definitions), `plan` and `input` (and optionally `name`). Baselines in the same rounds: the same
 * handlers called inline on the main thread, one subtask after another in dependency order (there
 * `ctx.send` and `ctx.ask` throw: there is no one to talk to), and troupe with 1 thread.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { resolveExpert } from '../../src/actors/experts.js';
import { TroupeError } from '../../src/errors.js';
import { checkGraph, type Graph } from '../../src/runs/graph.js';
import { createTroupe, type Troupe } from '../../src/troupe.js';
import type { Contribution, ExpertDefinition, Plan } from '../../src/types.js';
import { interleaved, perRound, spread } from '../harness.js';
import type { CaseResult, FactorPoint, SuiteOptions } from '../types.js';

export interface UserSuite {
  name?: string;
  experts: ExpertDefinition[];
  plan: Plan;
  input: unknown;
}

/** Loads and checks a suite module; every problem is a TroupeError naming the export. */
export async function loadUserSuite(file: string): Promise<UserSuite> {
  const url = pathToFileURL(resolve(file)).href;
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new TroupeError(
      'E_INVALID_OPTION',
      `--suite: cannot load ${file}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  const suite = (namespace.default ?? namespace) as Partial<UserSuite>;
  if (!Array.isArray(suite.experts) || suite.experts.length === 0)
    throw new TroupeError(
      'E_INVALID_OPTION',
      `--suite ${file}: export "experts": expected a non-empty array of expert definitions`,
    );
  suite.experts.forEach((e, i) => {
    resolveExpert(e, `experts[${i}]`);
  });

  if (
    suite.plan === null ||
    typeof suite.plan !== 'object' ||
    typeof suite.plan.analyze !== 'function'
  )
    throw new TroupeError(
      'E_INVALID_OPTION',
      `--suite ${file}: export "plan": expected { analyze, integrate?, validate? }`,
    );
  return {
    name: typeof suite.name === 'string' ? suite.name : file,
    experts: suite.experts,
    plan: suite.plan,
    input: suite.input,
  };
}

type Handler = (input: unknown, ctx: unknown) => unknown;

function noMessages(op: string): never {
  throw new TroupeError(
    'E_NO_RECIPIENT',
    `ctx.${op}: the inline baseline runs every handler on the main thread, one after another; there is no one to message`,
  );
}

/**
 * The inline baseline: the plan's subtasks in dependency order on the main thread, each by the
 * qualified expert troupe would prefer when all are idle (highest level, then name).
 */
export async function runInline(
  suite: UserSuite,
  handlers: Map<string, Handler>,
): Promise<unknown> {
  const graph: Graph = checkGraph(await suite.plan.analyze(suite.input));
  const n = graph.ids.length;
  const remaining = graph.deps.map((d) => d.length);
  const ready: number[] = [];
  for (let i = 0; i < n; i++) if (remaining[i] === 0) ready.push(i);
  const outputs = new Array<unknown>(n);
  const board = new Map<string, unknown>();
  const contributions: Contribution[] = [];
  for (let head = 0; head < ready.length; head++) {
    const i = ready[head] as number;
    const subtask = graph.subtasks[i] as Graph['subtasks'][number];
    const complexity = graph.complexity[i] as number;
    const expert = suite.experts
      .filter((e) => (e.skills[subtask.needs] ?? 0) >= complexity)
      .sort(
        (a, b) =>
          (b.skills[subtask.needs] ?? 0) - (a.skills[subtask.needs] ?? 0) ||
          a.name.localeCompare(b.name),
      )[0];
    if (expert === undefined)
      throw new TroupeError(
        'E_NO_EXPERT',
        `inline baseline: no expert has "${subtask.needs}" at level ${complexity}`,
      );
    const deps: Record<string, unknown> = {};
    for (const d of graph.deps[i] as number[]) deps[graph.ids[d] as string] = outputs[d];
    const ctx = {
      task: { id: subtask.id, needs: subtask.needs, attempt: 1, runId: 'inline' },
      deps,
      signal: {
        aborted: false,
        reason: undefined,
        throwIfAborted: () => {},
        addEventListener: () => {},
        removeEventListener: () => {},
      },
      throwIfAborted: () => {},
      progress: () => {},
      send: () => noMessages('send'),
      ask: () => noMessages('ask'),
      share: async (key: string, value: unknown) => {
        board.set(key, structuredClone(value));
      },
      lookup: async (key: string) => structuredClone(board.get(key)),
    };
    const started = performance.now();
    const input = structuredClone(subtask.input);
    outputs[i] = await (handlers.get(expert.name) as Handler)(input, ctx);
    // The same checks troupe makes: the expert's validate on each output.
    const verdict = expert.validate?.(outputs[i], input);
    if (verdict === false || typeof verdict === 'string') {
      throw new TroupeError(
        'E_QUALITY',
        `inline baseline: ${expert.name} rejected ${subtask.id}: ${verdict}`,
      );
    }
    contributions.push({
      subtask: subtask.id,
      needs: subtask.needs,
      expert: expert.name,
      level: expert.skills[subtask.needs] ?? 0,
      attempt: 1,
      queuedMs: 0,
      runMs: performance.now() - started,
      output: outputs[i],
    });
    for (const j of graph.dependents[i] as number[]) {
      remaining[j] = (remaining[j] as number) - 1;
      if (remaining[j] === 0) ready.push(j);
    }
  }
  const result =
    suite.plan.integrate !== undefined
      ? await suite.plan.integrate(contributions, suite.input)
      : Object.fromEntries(contributions.map((c) => [c.subtask, c.output]));
  // …and the plan's validate on the result.
  suite.plan.validate?.(result, suite.input);
  return result;
}

export async function userSuite(options: SuiteOptions): Promise<CaseResult[]> {
  if (options.suite === undefined) throw new Error('the user suite needs --suite <file>');
  const suite = await loadUserSuite(options.suite);
  const handlers = new Map<string, Handler>();
  for (const e of suite.experts) {
    const href = resolveExpert(e, 'experts').href;
    const run = ((await import(href)) as { default?: unknown }).default;
    if (typeof run !== 'function')
      throw new TroupeError(
        'E_MODULE_LOAD',
        `expert "${e.name}": its module has no default export function`,
      );
    handlers.set(e.name, run as Handler);
  }
  const { threads, rounds } = options;
  const troupes = new Map<number, Troupe>();
  for (const t of new Set([1, threads]))
    troupes.set(t, createTroupe({ threads: t, experts: suite.experts }));
  try {
    const runTroupe = (t: number) => async () => {
      const outcome = await (troupes.get(t) as Troupe).run(suite.plan, suite.input);
      if (outcome.status !== 'done')
        throw new Error(`bench: the suite's run ended ${outcome.status}: ${outcome.error.message}`);
    };
    const variants = [
      { name: 'inline (main thread)', run: async () => void (await runInline(suite, handlers)) },
      { name: 'troupe 1 thread', run: runTroupe(1) },
      ...(threads === 1 ? [] : [{ name: `troupe ${threads} threads`, run: runTroupe(threads) }]),
    ];
    const samples = await interleaved(variants, rounds);
    const inline = samples['inline (main thread)'] as number[];
    const top = `troupe ${threads === 1 ? '1 thread' : `${threads} threads`}`;
    const factor = perRound(inline, samples[top] as number[], (s, p) => s / p);
    const oneThread = perRound(inline, samples['troupe 1 thread'] as number[], (s, p) => s / p);
    const points: FactorPoint[] = [
      { variant: 'troupe', threads: 1, factor: oneThread },
      ...(threads === 1 ? [] : [{ variant: 'troupe', threads, factor }]),
    ];
    return [
      {
        name: `your suite: ${suite.name}, ${threads} threads`,
        medians: Object.fromEntries(
          Object.entries(samples).map(([k, v]) => [`${k} (ms)`, spread(v).median]),
        ),
        comparisons: [
          { label: `factor: ${top} (inline ÷ troupe)`, spread: factor },
          {
            label: 'factor: troupe 1 thread (inline ÷ troupe: the cost of going through a thread)',
            spread: oneThread,
          },
        ],
        samples,
        points,
      },
    ];
  } finally {
    await Promise.all([...troupes.values()].map((t) => t.close()));
  }
}
