// troupe viz: the machines drawn from their definitions — every state and every transition that
// xstate/graph finds (and the eventless ones) is in the Mermaid and the DOT, and the SVG is
// well-formed XML with a node per state — and a plan's subtasks drawn from its analysis.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { AnyStateMachine } from 'xstate';
import { getStateNodes, toDirectedGraph } from 'xstate/graph';
import { MACHINES, machineGraph, toDot, toMermaid, toSvg } from '../../dist/src/viz/machines.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'dist/src/cli/bin.js');
const run = promisify(execFile);

async function troupe(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { cwd: root });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The state keys and (from → to) pairs the machine defines, read by xstate/graph itself. */
function defined(machine: AnyStateMachine) {
  const nodes = getStateNodes(machine) as unknown as {
    key: string;
    always?: { target?: { key: string }[] }[];
  }[];
  const states = nodes.length === 0 ? [machine.id] : nodes.map((n) => n.key);
  const pairs = new Set<string>();
  const rootGraph = toDirectedGraph(machine);
  const keyOf = (node: { key: string }) =>
    node === (rootGraph.stateNode as never) ? machine.id : node.key;
  for (const node of [rootGraph, ...rootGraph.children])
    for (const edge of node.edges) {
      if (node === rootGraph && rootGraph.children.length > 0) continue; // drawn from each state
      pairs.add(`${keyOf(edge.source as never)} -> ${keyOf(edge.target as never)}`);
    }
  for (const n of nodes)
    for (const t of n.always ?? []) pairs.add(`${n.key} -> ${t.target?.[0]?.key}`);
  return { states, pairs };
}

/** A small check that a document is well-formed XML: every tag closed, in order. */
function wellFormed(xml: string): boolean {
  const body = xml
    .replace(/<\?[\s\S]*?\?>/g, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<!DOCTYPE[^>]*>/g, '');
  const stack: string[] = [];
  for (const match of body.matchAll(
    /<(\/?)([A-Za-z][\w:.-]*)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g,
  )) {
    const [, closing, name, , selfClosing] = match;
    if (selfClosing === '/') continue;
    if (closing === '/') {
      if (stack.pop() !== name) return false;
    } else stack.push(name as string);
  }
  return stack.length === 0 && body.includes('<svg');
}

describe('troupe viz: the machines', () => {
  for (const [name, machine] of Object.entries(MACHINES)) {
    it(`${name}: every state and transition of its definition is drawn`, async () => {
      const { states, pairs } = defined(machine);
      const graph = machineGraph(machine);
      expect(graph.states.sort()).toEqual([...states].sort());
      const drawn = new Set(graph.transitions.map((t) => `${t.from} -> ${t.to}`));
      for (const pair of pairs) expect(drawn, pair).toContain(pair);
      const mermaid = toMermaid(graph);
      expect(mermaid.startsWith('stateDiagram-v2\n')).toBe(true);
      for (const t of graph.transitions) expect(mermaid).toContain(`${t.from} --> ${t.to}`);
      for (const s of states) expect(mermaid).toMatch(new RegExp(`\\b${s}\\b`));
      const dot = toDot(graph);
      for (const s of states) expect(dot).toContain(`"${s}"`);
      for (const t of graph.transitions) expect(dot).toContain(`"${t.from}" -> "${t.to}"`);
      const svg = await toSvg(dot);
      expect(wellFormed(svg)).toBe(true);
      for (const s of states) expect(svg).toContain(`<title>${s}</title>`);
    });
  }

  it('the run machine: its machine-wide cancel and abort are drawn from every state that is not final', () => {
    const graph = machineGraph(MACHINES.run);
    for (const s of ['analyzing', 'identifying', 'coordinating', 'integrating', 'validating'])
      expect(graph.transitions).toContainEqual({ from: s, to: 'cancelled', label: 'cancel' });
    expect(graph.transitions.filter((t) => t.from === 'done')).toEqual([]);
  });

  it('troupe viz draws all three; a machine by name; svg; a bad format is a usage error', async () => {
    const all = await troupe(['viz']);
    expect(all.code).toBe(0);
    expect(all.stdout.match(/stateDiagram-v2/g)).toHaveLength(3);
    const one = await troupe(['viz', 'expert', '--format', 'dot']);
    expect(one.code).toBe(0);
    expect(one.stdout.startsWith('digraph "expert"')).toBe(true);
    const svg = await troupe(['viz', 'run', '--format', 'svg']);
    expect(svg.code).toBe(0);
    expect(wellFormed(svg.stdout)).toBe(true);
    const bad = await troupe(['viz', '--format', 'gif']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--format: expected mermaid, dot or svg, got "gif"');
  });

  it("README's diagram of the run machine is what troupe viz run draws", async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const drawn = (await troupe(['viz', 'run'])).stdout;
    expect(readme).toContain(`\`\`\`mermaid\n${drawn}\`\`\``);
  });
});

describe('troupe viz: a plan', () => {
  it("draws each subtask of the input's graph, grouped by stage, with its dependencies", async () => {
    const out = await troupe([
      'viz',
      'examples/fractal/fractal.plan.yaml',
      '--input',
      'examples/fractal/input.json',
    ]);
    expect(out.code, out.stderr).toBe(0);
    const validate = await troupe([
      'run',
      'examples/fractal/fractal.plan.yaml',
      '--input',
      'examples/fractal/input.json',
      '--json',
    ]);
    const records = JSON.parse(validate.stdout).records as { id: string }[];
    for (const r of records) expect(out.stdout).toContain(`["${r.id} · `);
    expect(out.stdout).toMatch(/subgraph n\d+ \["render"\]/);
    expect(out.stdout).toContain('-->');
  });

  it('past 200 subtasks, one box per stage with its count', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-viz-'));
    const file = join(dir, 'big.plan.json');
    writeFileSync(join(dir, 'echo.mjs'), 'export default (input) => input;\n');
    writeFileSync(
      file,
      JSON.stringify({
        name: 'big',
        experts: [{ name: 'e', skills: { s: 1 }, module: './echo.mjs' }],
        analysis: {
          subtasks: Array.from({ length: 250 }, (_, i) => ({ id: `t${i}`, needs: 's', input: i })),
        },
      }),
    );
    const out = await troupe(['viz', file]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain('["subtasks · 250 subtasks"]');
    const dot = await troupe(['viz', file, '--format', 'dot']);
    expect(dot.stdout).toContain('label="subtasks\\n250 subtasks"');
  });

  it('a plan that does not exist is a usage error', async () => {
    const out = await troupe(['viz', 'no-such.plan.yaml']);
    expect(out.code).toBe(2);
  });
});
