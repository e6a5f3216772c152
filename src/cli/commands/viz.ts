import { writeFile } from 'node:fs/promises';
import { type Flags, parseFlags, UsageError } from '../flags.js';
import { type Command, EXIT } from '../registry.js';
import { guarded, load, readInput } from './plans.js';

const VIZ_USAGE = `Usage: troupe viz [coordinator|run|expert|<plan.json|plan.yaml>] [--format mermaid|dot|svg] [--input file|-] [--out file] [--allow-outside]

Draws troupe's machines, or a plan's subtasks, from their definitions. With no argument, all
three machines; with a machine's name, that one; with a plan file, the graph its analysis makes
of the input (each subtask grouped by stage, or one box per stage past 200 subtasks).

Options:
  --format <f>       mermaid (stateDiagram-v2 / flowchart, renders on GitHub) [default],
                     dot (Graphviz), or svg (laid out offline; needs the optional @viz-js/viz)
  --input <file|->   the plan's input, as JSON (as for troupe run); without it, inputDefaults
  --out <file>       write there instead of standard output
  --allow-outside    let the plan load modules outside its folder and packages by name
  -h, --help         show this help

Exit codes: 0 drawn, 2 bad usage or a bad plan.`;

const VIZ_FLAGS: Flags = {
  format: { type: 'string' },
  input: { type: 'string' },
  out: { type: 'string' },
  'allow-outside': { type: 'boolean' },
};

const FORMATS = ['mermaid', 'dot', 'svg'] as const;
type Format = (typeof FORMATS)[number];

export const vizCommand: Command = {
  name: 'viz',
  summary: "draw troupe's machines or a plan's subtasks (Mermaid, DOT, SVG)",
  usage: VIZ_USAGE,
  flags: VIZ_FLAGS,
  run: (argv, io) =>
    guarded('viz', VIZ_USAGE, io, async () => {
      const { values, positionals } = parseFlags(argv, VIZ_FLAGS);
      if (positionals.length > 1)
        throw new UsageError(
          `expected at most one machine or plan file, got ${positionals.join(' ')}`,
        );
      const format = (values.format ?? 'mermaid') as Format;
      if (!FORMATS.includes(format))
        throw new UsageError(
          `--format: expected mermaid, dot or svg, got ${JSON.stringify(values.format)}`,
        );
      const viz = await import('../../viz/machines.js');
      const target = positionals[0];
      let text: string;
      if (target === undefined || target in viz.MACHINES) {
        if (values.input !== undefined)
          throw new UsageError('--input is for a plan file, not a machine');
        const names = target === undefined ? Object.keys(viz.MACHINES) : [target];
        const parts: string[] = [];
        for (const name of names) {
          const graph = viz.machineGraph(viz.MACHINES[name as keyof typeof viz.MACHINES]);
          parts.push(
            format === 'mermaid'
              ? names.length === 1
                ? viz.toMermaid(graph)
                : `%% ${name}\n${viz.toMermaid(graph)}`
              : viz.toDot(graph),
          );
        }
        if (format === 'svg')
          text = (await Promise.all(parts.map((dot) => svg(viz.toSvg, dot)))).join('\n');
        else text = parts.join('\n');
      } else {
        const given = await readInput(values.input as string | undefined);
        const compiled = await load(target, values['allow-outside'] === true);
        const input = compiled.resolveInput(given?.value, given?.baseDir);
        const subtasks = await compiled.plan.analyze(input);
        const { planGraph, planToDot, planToMermaid } = await import('../../viz/plan.js');
        const graph = planGraph(
          compiled.name,
          (compiled.spec.analysis.stages ?? []).map((s) => s.name),
          subtasks,
        );
        text = format === 'mermaid' ? planToMermaid(graph) : planToDot(graph);
        if (format === 'svg') text = await svg(viz.toSvg, text);
      }
      if (values.out !== undefined) await writeFile(values.out as string, text);
      else io.stdout(text);
      return EXIT.ok;
    }),
};

/** SVG, or a usage error that says the optional renderer is missing. */
async function svg(render: (dot: string) => Promise<string>, dot: string): Promise<string> {
  try {
    return await render(dot);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND')
      throw new UsageError(
        '--format svg needs @viz-js/viz, an optional peer of troupe (npm install @viz-js/viz)',
      );
    throw error;
  }
}
