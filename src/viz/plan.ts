/**
 * A plan's subtasks as a diagram: the graph its analysis makes of a concrete input. Up to
 * `MAX_SUBTASKS` subtasks each is drawn, grouped by the stage it came from; past that, each
 * stage is one box with its count, and an arrow says a stage waits on another.
 */
import type { Subtask } from '../types.js';
import { dotId } from './machines.js';

/** Subtasks drawn one by one; a larger graph is drawn by stage. */
export const MAX_SUBTASKS = 200;

export interface PlanGraph {
  name: string;
  /** Stages in plan order, each with the subtasks it made. */
  stages: { name: string; subtasks: Subtask[] }[];
  subtasks: Subtask[];
}

/** Groups subtasks by stage: a stage's subtasks are named `<stage>` or `<stage>:<label>`. */
export function planGraph(name: string, stageNames: string[], subtasks: Subtask[]): PlanGraph {
  const byStage = new Map<string, Subtask[]>(stageNames.map((s) => [s, []]));
  const loose: Subtask[] = [];
  for (const s of subtasks) {
    const stage = stageOf(s.id, byStage);
    if (stage === undefined) loose.push(s);
    else byStage.get(stage)?.push(s);
  }
  const stages = [...byStage].map(([stage, list]) => ({ name: stage, subtasks: list }));
  if (loose.length > 0) stages.push({ name: 'subtasks', subtasks: loose });
  return { name, stages, subtasks };
}

function stageOf(id: string, stages: Map<string, unknown>): string | undefined {
  if (stages.has(id)) return id;
  const colon = id.indexOf(':');
  return colon > 0 && stages.has(id.slice(0, colon)) ? id.slice(0, colon) : undefined;
}

/** Which stages wait on which (an arrow per pair that has a dependency between them). */
function stageEdges(graph: PlanGraph): [string, string][] {
  const stageOfId = new Map<string, string>();
  for (const stage of graph.stages) for (const s of stage.subtasks) stageOfId.set(s.id, stage.name);
  const edges = new Set<string>();
  for (const stage of graph.stages)
    for (const s of stage.subtasks)
      for (const dep of s.after ?? []) {
        const from = stageOfId.get(dep);
        if (from !== undefined && from !== stage.name) edges.add(`${from}\u0000${stage.name}`);
      }
  return [...edges].map((e) => e.split('\u0000') as [string, string]);
}

/** Mermaid `flowchart`. */
export function planToMermaid(graph: PlanGraph): string {
  const lines = ['flowchart LR'];
  const node = new Map<string, string>();
  const idFor = (key: string) => {
    let id = node.get(key);
    if (id === undefined) {
      id = `n${node.size}`;
      node.set(key, id);
    }
    return id;
  };
  if (graph.subtasks.length <= MAX_SUBTASKS) {
    for (const stage of graph.stages) {
      if (stage.subtasks.length === 0) continue;
      lines.push(`  subgraph ${idFor(`stage:${stage.name}`)} [${quote(stage.name)}]`);
      for (const s of stage.subtasks)
        lines.push(`    ${idFor(s.id)}[${quote(`${s.id} · ${s.needs}`)}]`);
      lines.push('  end');
    }
    for (const s of graph.subtasks)
      for (const dep of s.after ?? []) lines.push(`  ${idFor(dep)} --> ${idFor(s.id)}`);
  } else {
    for (const stage of graph.stages)
      lines.push(
        `  ${idFor(stage.name)}[${quote(`${stage.name} · ${count(stage.subtasks.length)}`)}]`,
      );
    for (const [from, to] of stageEdges(graph)) lines.push(`  ${idFor(from)} --> ${idFor(to)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Graphviz DOT. */
export function planToDot(graph: PlanGraph): string {
  const lines = [
    `digraph ${dotId(graph.name)} {`,
    '  rankdir=LR;',
    '  node [shape=box, style=rounded, fontname="Helvetica"];',
  ];
  if (graph.subtasks.length <= MAX_SUBTASKS) {
    graph.stages.forEach((stage, i) => {
      if (stage.subtasks.length === 0) return;
      lines.push(`  subgraph ${dotId(`cluster_${i}`)} {`, `    label=${dotId(stage.name)};`);
      for (const s of stage.subtasks)
        lines.push(`    ${dotId(s.id)} [label=${dotId(`${s.id}\n${s.needs}`)}];`);
      lines.push('  }');
    });
    for (const s of graph.subtasks)
      for (const dep of s.after ?? []) lines.push(`  ${dotId(dep)} -> ${dotId(s.id)};`);
  } else {
    for (const stage of graph.stages)
      lines.push(
        `  ${dotId(stage.name)} [label=${dotId(`${stage.name}\n${count(stage.subtasks.length)}`)}];`,
      );
    for (const [from, to] of stageEdges(graph)) lines.push(`  ${dotId(from)} -> ${dotId(to)};`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

function count(n: number): string {
  return n === 1 ? '1 subtask' : `${n} subtasks`;
}

function quote(text: string): string {
  return `"${text.replace(/"/g, '#quot;')}"`;
}
