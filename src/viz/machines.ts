/**
 * The three machines as diagrams, drawn from their definitions (never by hand): the state nodes
 * and transitions `xstate/graph` finds, plus the eventless (`always`) transitions of each state
 * node, which its directed graph leaves out. A transition of the machine itself (`on` at the
 * root) is drawn from every state that can take it.
 */
import type { AnyStateMachine } from 'xstate';
import { getStateNodes, toDirectedGraph } from 'xstate/graph';
import { coordinatorMachine } from '../machines/coordinator.js';
import { expertMachine } from '../machines/expert.js';
import { runMachine } from '../machines/run.js';

/** The machines troupe draws, by the name `troupe viz` takes. */
export const MACHINES: Readonly<Record<'coordinator' | 'run' | 'expert', AnyStateMachine>> = {
  coordinator: coordinatorMachine,
  run: runMachine,
  expert: expertMachine,
};

export type MachineName = keyof typeof MACHINES;

/** A machine's states and transitions, by state key (the root is the machine's own id). */
export interface MachineGraph {
  id: string;
  initial: string | undefined;
  /** State keys, in definition order; a machine without states has its own id as its one state. */
  states: string[];
  finals: string[];
  transitions: { from: string; to: string; label: string }[];
  /** Transitions of the machine itself that change no state (run in any state). */
  anyState: string[];
}

interface NodeLike {
  id: string;
  key: string;
  type: string;
  parent?: NodeLike;
  always?: { target?: NodeLike[]; guard?: string | { type?: string } }[];
}

export function machineGraph(machine: AnyStateMachine): MachineGraph {
  const root = toDirectedGraph(machine);
  const rootNode = root.stateNode as unknown as NodeLike;
  const children = root.children.map((c) => c.stateNode as unknown as NodeLike);
  const name = (node: NodeLike): string => (node === rootNode ? machine.id : node.key);
  const states = children.length === 0 ? [machine.id] : children.map(name);
  const finals = children.filter((c) => c.type === 'final').map(name);
  const initialTarget = (rootNode as { initial?: { target?: NodeLike[] } }).initial?.target?.[0];
  const transitions: MachineGraph['transitions'] = [];
  const anyState: string[] = [];
  const add = (from: NodeLike, to: NodeLike | undefined, label: string) => {
    if (from === rootNode && children.length > 0) {
      // The machine's own transition: every state that is not final can take it.
      if (to === undefined || to === rootNode) {
        anyState.push(label);
        return;
      }
      for (const c of children)
        if (c.type !== 'final') transitions.push({ from: name(c), to: name(to), label });
      return;
    }
    transitions.push({ from: name(from), to: name(to ?? from), label });
  };
  for (const node of [root, ...root.children]) {
    const from = node.stateNode as unknown as NodeLike;
    for (const edge of node.edges) {
      const guard = (edge.transition as { guard?: string | { type?: string } }).guard;
      add(from, edge.target as unknown as NodeLike, label(edge.label.text, guardName(guard)));
    }
  }
  // Eventless transitions, which the directed graph leaves out.
  for (const node of getStateNodes(machine) as unknown as NodeLike[]) {
    for (const t of node.always ?? [])
      add(node, t.target?.[0], label('always', guardName(t.guard)));
  }
  return {
    id: machine.id,
    initial: initialTarget === undefined ? undefined : name(initialTarget),
    states,
    finals,
    transitions,
    anyState,
  };
}

/** A guard's name, whether the definition names it or gives it with params. */
function guardName(guard: string | { type?: string } | undefined): string | undefined {
  return typeof guard === 'string' ? guard : guard?.type;
}

/** An event's name as a reader knows it: XState's generated ones say what they are. */
function label(event: string, guard: string | undefined): string {
  let text = event;
  if (/^xstate\.done\.actor\./.test(event)) text = 'done (invoked)';
  else if (/^xstate\.error\.actor\.\*$/.test(event)) text = 'a child failed';
  else if (/^xstate\.error\.actor\./.test(event)) text = 'failed (invoked)';
  else {
    const after = /^xstate\.after\.([^.]+)\./.exec(event);
    if (after !== null) text = `after ${after[1]}`;
  }
  return guard === undefined ? text : `${text} [${guard}]`;
}

/** Mermaid `stateDiagram-v2` (renders on GitHub and GitLab). */
export function toMermaid(graph: MachineGraph): string {
  const lines = ['stateDiagram-v2'];
  if (graph.initial !== undefined) lines.push(`  [*] --> ${graph.initial}`);
  else lines.push(`  [*] --> ${graph.states[0]}`);
  for (const t of graph.transitions) lines.push(`  ${t.from} --> ${t.to}: ${mermaidText(t.label)}`);
  for (const f of graph.finals) lines.push(`  ${f} --> [*]`);
  if (graph.anyState.length > 0)
    lines.push(
      `  note right of ${graph.initial ?? graph.states[0]}`,
      `    in every state: ${graph.anyState.map(mermaidText).join(', ')}`,
      '  end note',
    );
  return `${lines.join('\n')}\n`;
}

/** Graphviz DOT. */
export function toDot(graph: MachineGraph): string {
  const lines = [
    `digraph ${dotId(graph.id)} {`,
    '  rankdir=LR;',
    '  node [shape=box, style=rounded, fontname="Helvetica"];',
    '  edge [fontname="Helvetica", fontsize=10];',
    '  "__start" [shape=point, label=""];',
  ];
  for (const s of graph.states)
    lines.push(`  ${dotId(s)}${graph.finals.includes(s) ? ' [peripheries=2]' : ''};`);
  lines.push(`  "__start" -> ${dotId(graph.initial ?? (graph.states[0] as string))};`);
  for (const t of graph.transitions)
    lines.push(`  ${dotId(t.from)} -> ${dotId(t.to)} [label=${dotId(t.label)}];`);
  if (graph.anyState.length > 0)
    lines.push(
      `  "__any" [shape=note, label=${dotId(`in every state: ${graph.anyState.join(', ')}`)}];`,
    );
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** SVG of a DOT graph, laid out offline by Graphviz compiled to WebAssembly (@viz-js/viz). */
export async function toSvg(dot: string): Promise<string> {
  const { instance } = await import('@viz-js/viz');
  const viz = await instance();
  return viz.renderString(dot, { format: 'svg' });
}

export function dotId(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function mermaidText(text: string): string {
  // A colon or semicolon would end Mermaid's label; `#` starts an entity code.
  return text.replace(/[:;#]/g, ' ');
}
